// The API tokens card: mint a token (name, scopes, budget, expiry), show its secret
// once with a copy button, list the tokens with their spend, and revoke them.

import { api } from "./api.js";
import { $, amount, button, clearError, el, loadList, onSubmit, row, showError, when } from "./dom.js";
import { dollarsText, formatUsd, parseUsd, roughUsd, toJson } from "./money.js";

// The latest list, for the budget card's words about a token whose budget is used up.
let latest = [];

/** The tokens as last loaded. */
export function list() {
  return latest;
}

/** Asks for a new budget for `token` and sends it (`PATCH /v1/tokens/{id}`). */
async function changeBudget(token) {
  const now = token.budget_nanos === null ? "none" : dollarsText(token.budget_nanos);
  const typed = prompt(
    `New monthly budget for ${token.name} in dollars (now ${now}; it has spent ${formatUsd(token.spent_nanos)}). Leave empty for no budget of its own.`,
    token.budget_nanos === null ? "" : dollarsText(token.budget_nanos),
  );
  if (typed === null) return;
  clearError("token-error");
  try {
    const budget = typed.trim() === "" ? null : parseUsd(typed);
    await api("PATCH", `/v1/tokens/${encodeURIComponent(token.id)}`, { budget_nanos: budget });
  } catch (error) {
    showError("token-error", error);
    return;
  }
  await load();
}

function status(token) {
  if (token.revoked) return el("span", "revoked", "badge revoked");
  if (new Date(token.expires_at) < new Date()) return el("span", "expired", "badge revoked");
  const cell = el("span", "", "actions");
  // The spend in the prompt is the latest, not the one this button was made with.
  const budget = button("Budget", () => changeBudget(latest.find((t) => t.id === token.id) || token));
  budget.setAttribute("aria-label", `Change the budget of ${token.name}`);
  budget.className = "quiet budget";
  const revoke = button("Revoke", async () => {
    if (!confirm(`Revoke ${token.name}? Tokens minted with it stop working too.`)) return;
    clearError("token-error");
    try {
      await api("DELETE", `/v1/tokens/${encodeURIComponent(token.id)}`);
    } catch (error) {
      showError("token-error", error);
      return;
    }
    await load();
  }, "quiet danger");
  revoke.setAttribute("aria-label", `Revoke ${token.name}`);
  cell.append(budget, revoke);
  return cell;
}

// What each row shows now (its token but for the spend), by token id: a row is rebuilt
// only when its own token changed, so the refresh never swaps a button under a click.
let shown = new Map();

function newRow(token) {
  const tr = row([
    el("span", token.name, "strong"),
    el("span", token.scopes.join(" "), "scopes-list"),
    token.budget_nanos === null ? "—" : formatUsd(token.budget_nanos),
    amount(token.spent_nanos, roughUsd, formatUsd),
    when(token.created_at),
    token.last_used_at ? when(token.last_used_at) : "never",
    when(token.expires_at),
    status(token),
  ]);
  tr.children[2].className = "num";
  tr.children[3].className = "num";
  tr.dataset.id = token.id;
  if (token.revoked) tr.className = "revoked";
  return tr;
}

/** A token without its spend: when only the spend moved, the row keeps its buttons. */
function withoutSpend(token) {
  const { spent_nanos: _spent, ...rest } = token;
  return toJson(rest);
}

function render(tokens) {
  latest = tokens;
  const body = $("token-rows");
  const rows = new Map([...body.children].map((tr) => [tr.dataset.id, tr]));
  const next = new Map();
  const wanted = tokens.map((token) => {
    const signature = withoutSpend(token);
    next.set(token.id, signature);
    const old = rows.get(token.id);
    if (old && shown.get(token.id) === signature) {
      old.children[3].replaceChildren(amount(token.spent_nanos, roughUsd, formatUsd));
      return old;
    }
    const tr = newRow(token);
    if (old) old.replaceWith(tr);
    return tr;
  });
  shown = next;
  for (const [id, tr] of rows) if (!next.has(id)) tr.remove();
  wanted.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  $("token-empty").hidden = tokens.length > 0;
}

/** Loads and shows the tokens. */
export async function load() {
  await loadList("token", async () => (await api("GET", "/v1/tokens")).tokens, render);
}

/** Hides a shown secret, for the next person to log in. */
export function reset() {
  shown = new Map();
  $("token-rows").replaceChildren();
  $("token-secret").textContent = "";
  $("token-example").textContent = "";
  $("token-secret-box").hidden = true;
}

onSubmit("token-form", "token-error", async (form) => {
  const scopes = [...form.querySelectorAll("input[name=scope]:checked")].map((box) => box.value);
  const body = { name: $("token-name").value.trim(), scopes };
  const budget = $("token-budget").value.trim();
  if (budget !== "") body.budget_nanos = parseUsd(budget);
  const expiry = $("token-expiry").value;
  if (expiry !== "") body.expires_in_s = Number(expiry);
  reset();
  const created = await api("POST", "/v1/tokens", body);
  $("token-secret").textContent = created.token;
  $("token-copy").textContent = "Copy";
  $("token-example").textContent =
    `curl -H "Authorization: Bearer ${created.token}" ${location.origin}/v1/sprites\n\n` +
    `CORRAL_URL=${location.origin} CORRAL_TOKEN=${created.token} corral ls`;
  $("token-secret-box").hidden = false;
  // The next token starts from the defaults again, not from this one's choices.
  form.reset();
  await load();
});

$("token-copy").addEventListener("click", async () => {
  const secret = $("token-secret");
  try {
    await navigator.clipboard.writeText(secret.textContent);
    $("token-copy").textContent = "Copied";
  } catch {
    // No clipboard access (plain HTTP on another host): select it for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents(secret);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("token-copy").textContent = "Selected: press Ctrl+C";
  }
});
