// The budget card: this period's cap, spend, reservation, what is left and the burn,
// and the form that sets the monthly cap, the alert thresholds and the alert e-mail.

import { api } from "./api.js";
import { $, amount, clearError, el, loadList, onSubmit, row, showError, when } from "./dom.js";
import { dollarsText, formatUsd, parseUsd, roughUsd } from "./money.js";
import * as sprites from "./sprites.js";

// The form is filled from the server once, then left to the person typing in it.
let formFilled = false;
// The latest budget, and the latest 402 a create or resume met (kept until dismissed
// or until a create or resume succeeds: a refresh does not wipe it).
let latest = null;
let refusal = null;

sprites.onMoneyRefusal((error) => {
  refusal = error;
});

/** A dollar amount rounded up to whole cents above `nanos`, for "raise it to". */
function atLeast(nanos) {
  const cents = (BigInt(nanos) + 9_999_999n) / 10_000_000n;
  return formatUsd(cents * 10_000_000n);
}

/**
 * Says in words which limit stops sprites, and what to do: the account's cap, or an
 * API token's budget by name. `tokens` and `list` are the token and sprite lists.
 */
export function explain(tokens, list) {
  if (!latest) return;
  const reasons = [];
  const b = latest;
  const capReached = b.available_nanos !== null && (b.state === "exhausted" || b.available_nanos <= b.worst_burn_nanos_per_s * 60n);
  const tokenStops = tokens.some((t) => usedUp(t) || pausedBy(t, list).length > 0);
  if (b.cap_nanos !== null && (capReached || (b.paused_for_budget > 0 && !tokenStops))) {
    reasons.push(
      `The account's monthly cap (${roughUsd(b.cap_nanos)}) is reached: ${roughUsd(b.spent_nanos)} spent and ` +
        `${roughUsd(b.storage_reserved_nanos)} kept for stored data. ` +
        (b.paused_for_budget > 0 ? "Sprites are paused and cannot start. " : "New sprites and resumes are refused. ") +
        `Raise the cap to at least ${atLeast(b.spent_nanos + b.storage_reserved_nanos + 1_000_000_000n)} below, then resume.`,
    );
  }
  for (const token of tokens.filter((t) => usedUp(t) || (!capReached && pausedBy(t, list).length > 0))) {
    const paused = pausedBy(token, list);
    reasons.push(
      `API token ${token.name}'s budget (${roughUsd(token.budget_nanos)}) is used up: ${roughUsd(token.spent_nanos)} spent, ` +
        `and what its sprites store is kept to the period's end. ` +
        (paused.length ? `It paused ${paused.join(", ")}. ` : "") +
        `Raise it with its Budget button in API tokens, then resume; or use another token.`,
    );
  }
  // The server's own answer: would a sprite of the default size start now?
  if (b.start_refused && reasons.length === 0) {
    reasons.push(`New sprites and resumes are refused now: ${b.start_refused}`);
  }
  if (refusal) {
    const named = tokens.reduce((text, t) => text.replaceAll(`API token ${t.id}`, `API token ${t.name}`), refusal.message);
    reasons.push(`The last start was refused: ${named}`);
  }
  const stopped = reasons.length > 0;
  $("budget-stop").hidden = !stopped;
  $("budget-stop-text").textContent = reasons.join(" ");
  const badge = $("budget-state");
  badge.textContent = stopped ? "stopped" : b.state;
  badge.className = `badge ${stopped ? "stopped" : b.state}`;
}

/** The sprites paused for budget that `token` created, when it has a budget. */
function pausedBy(token, list) {
  if (token.revoked || token.budget_nanos === null) return [];
  return list.filter((s) => s.pause_reason === "budget" && s.created_by_token === token.id).map((s) => s.name);
}

function usedUp(token) {
  return !token.revoked && token.budget_nanos !== null && token.spent_nanos >= token.budget_nanos;
}

function meter(budget) {
  const box = $("budget-meter");
  box.hidden = budget.cap_nanos === null;
  if (budget.cap_nanos === null) return;
  const used = budget.spent_nanos + budget.storage_reserved_nanos;
  const permille = budget.cap_nanos > 0n ? Number((used * 1000n) / budget.cap_nanos) : 1000;
  const fill = $("budget-meter-fill");
  fill.style.width = `${Math.min(permille, 1000) / 10}%`;
  fill.className = `meter-fill${permille >= 1000 ? " full" : permille >= 800 ? " high" : ""}`;
  $("budget-meter-text").textContent =
    `${roughUsd(budget.spent_nanos)} spent + ${roughUsd(budget.storage_reserved_nanos)} reserved of ${roughUsd(budget.cap_nanos)} (${(permille / 10).toFixed(1)} %)`;
  box.title = `${formatUsd(used)} of ${formatUsd(budget.cap_nanos)}`;
}

function render(budget) {
  latest = budget;
  meter(budget);
  const badge = $("budget-state");
  if (!badge.classList.contains("stopped")) {
    badge.textContent = budget.state;
    badge.className = `badge ${budget.state}`;
  }
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
    `${paused} sprite${paused === 1 ? " is" : "s are"} paused by a spend limit.`;
  $("budget-cap").textContent = budget.cap_nanos === null ? "No cap" : formatUsd(budget.cap_nanos);
  // Amounts for people, to the cent; the exact figure on hover. The cap stays exact:
  // it is what the person typed.
  $("budget-spent").replaceChildren(amount(budget.spent_nanos, roughUsd, formatUsd));
  $("budget-reserved").replaceChildren(amount(budget.storage_reserved_nanos, roughUsd, formatUsd));
  $("budget-available").replaceChildren(
    budget.available_nanos === null ? "Unlimited" : amount(budget.available_nanos, roughUsd, formatUsd),
  );
  const perHour = budget.burn_nanos_per_s * 3600n;
  $("budget-burn").replaceChildren(
    amount(perHour, roughUsd, formatUsd),
    el("span", `an hour (${formatUsd(budget.burn_nanos_per_s)}/s)`, "per"),
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

function renderAlerts(alerts) {
  $("alert-rows").replaceChildren(
    ...alerts.map((a) => row([when(a.created_at), a.subject, a.to_email, a.state])),
  );
  $("alert-empty").hidden = alerts.length > 0;
}

/** Loads and shows the budget and the alerts. */
export async function load() {
  try {
    render(await api("GET", "/v1/budget"));
    clearError("budget-load-error");
  } catch (error) {
    showError("budget-load-error", error);
  }
  await loadList("alert", async () => (await api("GET", "/v1/alerts")).alerts, renderAlerts);
}

/** Forgets what was shown, for the next person to log in. */
export function reset() {
  formFilled = false;
  latest = null;
  refusal = null;
  $("budget-stop").hidden = true;
}

$("budget-stop-dismiss").addEventListener("click", () => {
  refusal = null;
  $("budget-stop").hidden = true;
});

$("budget-resume").addEventListener("click", async () => {
  clearError("budget-resume-error");
  try {
    const budget = await api("PUT", "/v1/budget", { resume_paused: true });
    render(budget);
    const still = budget.still_paused || [];
    refusal = null;
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
  if (change.cap_nanos === 0n
    && !confirm("A cap of $0 pauses every running sprite now and refuses every start until it is raised. Set it?")) {
    return;
  }
  const budget = await api("PUT", "/v1/budget", change);
  formFilled = false;
  render(budget);
  $("budget-saved").hidden = false;
});
