// The billing card: the operator's billing mode, the prepaid balance (or this period's
// invoice estimate when usage is metered), the payment state, a top-up (or add-a-card)
// form that goes to Stripe Checkout, the prepaid auto-recharge form (threshold and
// amount, charged to the card Checkout saved), and a link to Stripe's billing portal.
// Hidden when the server bills nothing.

import { api } from "./api.js";
import { $, clearError, onSubmit, showError, when } from "./dom.js";
import { dollarsText, formatUsd } from "./money.js";

const STATES = {
  ok: "Payments are up to date.",
  past_due: "A payment failed. Sprites keep running until",
  suspended: "A payment failed: sprites are paused until the invoice is paid.",
};

function render(b) {
  const card = $("billing");
  card.hidden = b.mode === "off";
  if (card.hidden) return;
  $("billing-mode").textContent = b.mode;
  const prepaid = b.mode === "prepaid";
  $("billing-amount-label").textContent = prepaid ? "Balance" : "This period so far";
  $("billing-amount").textContent = formatUsd(prepaid ? b.balance_nanos : b.invoice_estimate_nanos);
  const state = STATES[b.payment_state] || b.payment_state;
  $("billing-state").textContent = b.suspends_at ? `${state} ${when(b.suspends_at)}.` : state;
  $("billing-topup-amount").hidden = !prepaid;
  $("billing-topup").textContent = prepaid ? "Add credit" : "Add a card";
  renderRecharge(prepaid ? b.auto_recharge : null);
}

const RECHARGE_STATES = {
  pending: "being charged",
  charged: "charged, waiting for Stripe",
  succeeded: "added",
  failed: "failed",
};

function renderRecharge(a) {
  $("recharge-form").hidden = !a;
  $("recharge-state").hidden = !a;
  if (!a) return;
  $("recharge-enabled").checked = a.enabled;
  if (a.below_nanos != null) $("recharge-below").value = dollarsText(a.below_nanos);
  if (a.amount_nanos != null) $("recharge-amount").value = dollarsText(a.amount_nanos);
  let text = a.enabled
    ? `On: when the balance falls below ${formatUsd(a.below_nanos)}, your saved card is charged ${formatUsd(a.amount_nanos)}.`
    : a.off_reason
      ? `Off: ${a.off_reason}`
      : a.card_saved
        ? "Off."
        : "Off. Add credit once: Checkout saves your card for auto-recharge.";
  if (a.last) {
    text += ` Last recharge: ${formatUsd(a.last.amount_nanos)}, ${RECHARGE_STATES[a.last.state] || a.last.state}.`;
  }
  $("recharge-state").textContent = text;
}

/** Loads the card; an error stays on the card, the rest of the page goes on. */
export async function load() {
  try {
    render(await api("GET", "/v1/billing"));
    clearError("billing-load-error");
  } catch (error) {
    showError("billing-load-error", error);
  }
}

onSubmit("billing-form", "billing-error", async () => {
  const amount = $("billing-topup-amount").value.trim();
  const body = $("billing-topup-amount").hidden ? {} : { amount_usd: amount };
  const answer = await api("POST", "/v1/billing/checkout", body);
  window.location.assign(answer.url);
});

onSubmit("recharge-form", "recharge-error", async () => {
  const enabled = $("recharge-enabled").checked;
  const body = enabled
    ? { enabled, below_usd: $("recharge-below").value.trim(), amount_usd: $("recharge-amount").value.trim() }
    : { enabled };
  await api("PUT", "/v1/billing/auto_recharge", body);
  await load();
});

$("billing-portal").addEventListener("click", async () => {
  try {
    const answer = await api("POST", "/v1/billing/portal", {});
    window.location.assign(answer.url);
  } catch (error) {
    showError("billing-error", error);
  }
});
