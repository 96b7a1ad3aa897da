// The network card of one sprite: its rules (JSON, one rule per line is easiest), the
// tenant's and the operator's defaults under them, and its recent connections with the
// rule that decided each and the bytes that flowed.

import { api } from "./api.js";
import { $, clearError, el, onSubmit, row, showError, when } from "./dom.js";

let current = null;

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function rulesText(rules) {
  return rules.length === 0 ? "" : `[\n${rules.map((r) => `  ${JSON.stringify(r)}`).join(",\n")}\n]`;
}

function describe(view) {
  const own = view.effective.length;
  const tenant = (view.tenant || []).length;
  return `${own} rule(s) of this sprite, then ${tenant} of your account's default, then the server's default: ${view.default}.`;
}

/** Loads the sprite's policy and log into the card. */
async function load() {
  if (!current) return;
  const path = `/v1/sprites/${encodeURIComponent(current)}`;
  try {
    const [policy, log] = await Promise.all([
      api("GET", `${path}/policy/network`),
      api("GET", `${path}/network/log`),
    ]);
    $("network-summary").textContent = describe(policy);
    if (document.activeElement !== $("network-rules")) {
      $("network-rules").value = rulesText(policy.rules);
    }
    $("network-log").replaceChildren(
      ...log.entries.map((e) => {
        const verdict = e.allowed ? (e.open ? "open" : "allowed") : "refused";
        const tr = row([
          when(e.at),
          el("span", `${e.host}:${e.port}`, "mono"),
          el("span", verdict, `badge ${e.allowed ? "running" : "paused"}`),
          bytes(e.bytes_out),
          bytes(e.bytes_in),
          e.rule,
        ]);
        return tr;
      }),
    );
    $("network-empty").hidden = log.entries.length > 0;
    clearError("network-list-error");
  } catch (error) {
    showError("network-list-error", error);
  }
}

/** Opens the card on `name`. */
export function open(name) {
  current = name;
  $("network").hidden = false;
  $("network-name").textContent = name;
  $("network-rules").value = "";
  clearError("network-error");
  return load();
}

/** Refreshes the open card (the dashboard's refresh). */
export function refresh() {
  return load();
}

$("network-close").addEventListener("click", () => {
  current = null;
  $("network").hidden = true;
});

onSubmit("network-form", "network-error", async () => {
  const text = $("network-rules").value.trim();
  let rules = [];
  if (text !== "") {
    try {
      rules = JSON.parse(text);
    } catch {
      throw new Error('The rules must be a JSON list, e.g. [{"domain": "pypi.org", "action": "allow"}]');
    }
  }
  await api("PUT", `/v1/sprites/${encodeURIComponent(current)}/policy/network`, { rules });
  $("network-rules").blur();
  await load();
});
