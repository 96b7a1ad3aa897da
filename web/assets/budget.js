// The budget card: this period's cap, spend, reservation, what is left and the burn,
// and the form that sets the monthly cap, the alert thresholds and the alert e-mail.

import { api } from "./api.js";
import { $, clearError, el, onSubmit, showError, when } from "./dom.js";
import { dollarsText, formatUsd, parseUsd } from "./money.js";
import * as sprites from "./sprites.js";

// The form is filled from the server once, then left to the person typing in it.
let formFilled = false;

function render(budget) {
  const badge = $("budget-state");
  badge.textContent = budget.state;
  badge.className = `badge ${budget.state}`;
  // Only a moment inside this period is news; past its end the cap simply lasts.
  const runsOut =
    budget.exhausts_at && new Date(budget.exhausts_at) < new Date(budget.period_end)
      ? ` At this burn the cap is reached ${when(budget.exhausts_at)}.`
      : "";
  $("budget-period").textContent =
    `This period: ${when(budget.period_start)} to ${when(budget.period_end)}.${runsOut}`;
  const paused = budget.paused_for_budget;
  $("budget-paused").hidden = !paused;
  $("budget-paused-text").textContent =
    `${paused} sprite${paused === 1 ? " is" : "s are"} paused because the cap was reached.`;
  $("budget-cap").textContent = budget.cap_nanos === null ? "No cap" : formatUsd(budget.cap_nanos);
  $("budget-spent").textContent = formatUsd(budget.spent_nanos);
  $("budget-reserved").textContent = formatUsd(budget.storage_reserved_nanos);
  $("budget-available").textContent =
    budget.available_nanos === null ? "Unlimited" : formatUsd(budget.available_nanos);
  $("budget-burn").replaceChildren(
    `${formatUsd(budget.burn_nanos_per_s)}/s`,
    el("span", `${formatUsd(budget.burn_nanos_per_s * 3600n)} an hour`, "per"),
  );
  if (!formFilled) {
    $("budget-cap-input").value = dollarsText(budget.cap_nanos);
    $("budget-thresholds").value = budget.thresholds_pct.join(", ");
    $("budget-email").value = budget.alert_email;
    formFilled = true;
  }
}

/** Reads the thresholds field: whole percentages separated by commas. */
function thresholds(text) {
  const parts = text.split(",").map((part) => part.trim().replace(/%$/, "")).filter(Boolean);
  for (const part of parts) {
    if (!/^\d+$/.test(part)) {
      throw new Error(`Alert thresholds are whole percentages such as 50, 80, 100; "${part}" is not one.`);
    }
  }
  return parts.map(Number);
}

/** Loads and shows the budget. */
export async function load() {
  try {
    render(await api("GET", "/v1/budget"));
    clearError("budget-load-error");
  } catch (error) {
    showError("budget-load-error", error);
  }
}

/** Forgets what was shown, for the next person to log in. */
export function reset() {
  formFilled = false;
}

$("budget-resume").addEventListener("click", async () => {
  clearError("budget-resume-error");
  try {
    const budget = await api("PUT", "/v1/budget", { resume_paused: true });
    render(budget);
    const still = budget.still_paused || [];
    if (still.length) {
      showError("budget-resume-error", still.map((s) => `${s.sprite}: ${s.detail}`).join(" "));
    }
  } catch (error) {
    showError("budget-resume-error", error);
  }
  await sprites.load();
});

onSubmit("budget-form", "budget-error", async () => {
  $("budget-saved").hidden = true;
  const change = {
    thresholds_pct: thresholds($("budget-thresholds").value),
    alert_email: $("budget-email").value.trim(),
  };
  const cap = $("budget-cap-input").value.trim();
  if (cap !== "") change.cap_nanos = parseUsd(cap);
  const budget = await api("PUT", "/v1/budget", change);
  formFilled = false;
  render(budget);
  $("budget-saved").hidden = false;
});
