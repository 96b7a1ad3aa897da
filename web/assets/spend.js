// The spend-over-time card: this period's cost by hour or day from `/v1/usage` as a
// bar chart (total, or one sprite's, deleted sprites included), with the cost of each
// sprite in the table under it; amounts rounded for people, exact on hover.

import { api } from "./api.js";
import * as chart from "./chart.js";
import { $, amount, el, loadList, row } from "./dom.js";
import { formatUsd, roughUsd, toJson } from "./money.js";

let shown = "";

function render(usage) {
  const by = $("spend-by").value;
  const only = $("spend-sprite").value;
  const signature = toJson([usage.rows, by, only]);
  if (signature === shown) return;
  shown = signature;
  // Every sprite with spend this period is a choice, deleted ones too.
  const names = [...new Set(usage.rows.map((r) => r.sprite))].sort();
  const select = $("spend-sprite");
  const have = [...select.options].map((o) => o.value).slice(1);
  if (toJson(have) !== toJson(names)) {
    select.replaceChildren(el("option", "all sprites"), ...names.map((n) => {
      const option = el("option", n);
      option.value = n;
      return option;
    }));
    select.options[0].value = "";
    select.value = names.includes(only) ? only : "";
  }
  const rows = only ? usage.rows.filter((r) => r.sprite === only) : usage.rows;
  const title = `Cost by ${by}${only ? ` of ${only}` : ""}, this period`;
  chart.draw($("spend-chart"), chart.byBucket(rows), by, title);
  const perSprite = new Map();
  for (const r of rows) perSprite.set(r.sprite, (perSprite.get(r.sprite) || 0n) + BigInt(r.cost_nanos));
  $("spend-rows").replaceChildren(
    ...[...perSprite.entries()].map(([name, nanos]) => {
      const tr = row([name, amount(nanos, roughUsd, formatUsd)]);
      tr.children[1].className = "num";
      return tr;
    }),
  );
  $("spend-empty").hidden = rows.length > 0;
}

/** Loads and shows this period's spend. */
export async function load() {
  const by = $("spend-by").value;
  await loadList("spend", () => api("GET", `/v1/usage?by=${by}`), render);
}

$("spend-by").addEventListener("change", load);
$("spend-sprite").addEventListener("change", load);
