// The API tokens card: mint a token (name, scopes, budget, expiry), show its secret
// once with a copy button, list the tokens with their spend, and revoke them.

import { api } from "./api.js";
import { $, button, clearError, el, loadList, onSubmit, row, showError, when } from "./dom.js";
import { formatUsd, parseUsd, toJson } from "./money.js";

function status(token) {
  if (token.revoked) return el("span", "revoked", "badge revoked");
  if (new Date(token.expires_at) < new Date()) return el("span", "expired", "badge revoked");
  return button("Revoke", async () => {
    if (!confirm(`Revoke ${token.name}? Tokens minted with it stop working too.`)) return;
    clearError("token-list-error");
    try {
      await api("DELETE", `/v1/tokens/${encodeURIComponent(token.id)}`);
    } catch (error) {
      showError("token-list-error", error);
      return;
    }
    await load();
  }, "quiet danger");
}

// What the table shows now: rows are rebuilt only when it changes (see sprites.js).
let shown = "";

function render(tokens) {
  const signature = toJson(tokens);
  if (signature === shown) return;
  shown = signature;
  $("token-rows").replaceChildren(
    ...tokens.map((token) => {
      const tr = row([
        el("span", token.name, "strong"),
        el("span", token.scopes.join(" "), "scopes-list"),
        token.budget_nanos === null ? "—" : formatUsd(token.budget_nanos),
        formatUsd(token.spent_nanos),
        when(token.expires_at),
        status(token),
      ]);
      tr.children[2].className = "num";
      tr.children[3].className = "num";
      tr.dataset.id = token.id;
      if (token.revoked) tr.className = "revoked";
      return tr;
    }),
  );
  $("token-empty").hidden = tokens.length > 0;
}

/** Loads and shows the tokens. */
export async function load() {
  await loadList("token", async () => (await api("GET", "/v1/tokens")).tokens, render);
}

/** Hides a shown secret, for the next person to log in. */
export function reset() {
  shown = "";
  $("token-secret").textContent = "";
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
  $("token-secret-box").hidden = false;
  $("token-name").value = "";
  $("token-budget").value = "";
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
