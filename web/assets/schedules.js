// The schedules card: commands or checkpoints on a sprite on a cron schedule (crontab
// in UTC), each with its next time and its last runs (exit code and output, or why it
// was refused). The card builds its own markup inside <div id="schedules">, so the page
// needs one line for it.

import { api } from "./api.js";
import { $, button, clearError, el, loadList, onSubmit, row, showError, when } from "./dom.js";
import { toJson } from "./money.js";

let shown = "";
let built = false;

function build() {
  const card = $("schedules");
  card.classList.add("card");
  const form = el("form", "", "row-form");
  form.id = "schedule-form";
  form.noValidate = true;
  const field = (label, input) => {
    const l = el("label", label);
    l.append(" ", input);
    return l;
  };
  const sprite = el("select");
  sprite.id = "schedule-sprite";
  const cron = el("input");
  cron.id = "schedule-cron";
  cron.placeholder = "0 3 * * *";
  cron.required = true;
  const cmd = el("input");
  cmd.id = "schedule-cmd";
  cmd.placeholder = "make backup";
  const checkpoint = el("input");
  checkpoint.type = "checkbox";
  checkpoint.id = "schedule-checkpoint";
  const submit = el("button", "Add schedule");
  submit.type = "submit";
  form.append(
    field("Sprite", sprite),
    field("When (crontab, UTC)", cron),
    field("Command (run with sh -c)", cmd),
    field("Checkpoint instead", checkpoint),
    submit,
  );
  const table = el("table");
  const head = el("thead");
  head.append(row(["Sprite", "When (UTC)", "Does", "Next", "Last runs", ""]));
  const body = el("tbody");
  body.id = "schedule-rows";
  table.append(head, body);
  const error = (id) => {
    const p = el("p", "", "error");
    p.id = id;
    p.setAttribute("role", "alert");
    p.hidden = true;
    return p;
  };
  const empty = el("p", "No schedules yet.", "muted empty");
  empty.id = "schedule-empty";
  card.replaceChildren(
    el("h2", "Schedules"),
    el("p", "Five-field crontab in UTC (minute hour day month weekday; Sunday is 0 or 7) or " +
      "@hourly, @daily, @weekly, @monthly. A run wakes an idle sprite and lets it go idle " +
      "again; with the budget spent it is refused, not queued.", "muted"),
    form,
    error("schedule-error"),
    error("schedule-list-error"),
    table,
    empty,
  );
  onSubmit("schedule-form", "schedule-error", async (f) => {
    const name = $("schedule-sprite").value;
    if (!name) throw new Error("Create a sprite first.");
    const body = { cron: $("schedule-cron").value.trim() };
    if ($("schedule-checkpoint").checked) body.checkpoint = true;
    else body.cmd = ["sh", "-c", $("schedule-cmd").value];
    await api("POST", `/v1/sprites/${encodeURIComponent(name)}/schedules`, body);
    f.reset();
    await load();
  });
  built = true;
}

function does(s) {
  return s.checkpoint ? "checkpoint" : (s.cmd || []).join(" ");
}

function runText(r) {
  const at = when(r.started_at);
  if (r.outcome === "refused") return `${at} refused: ${r.refused_reason}`;
  if (r.outcome === "failed") return `${at} failed: ${r.error}`;
  if (r.outcome === "running") return `${at} running`;
  if (r.checkpoint_id) return `${at} checkpoint ${r.checkpoint_id}`;
  const tail = (r.output_tail || "").trim().split("\n").pop();
  return `${at} exit ${r.exit_code}${tail ? `: ${tail}` : ""}`;
}

function render({ names, schedules }) {
  const select = $("schedule-sprite");
  const picked = select.value;
  if (toJson(names) !== select.dataset.names) {
    select.dataset.names = toJson(names);
    select.replaceChildren(...names.map((n) => {
      const option = el("option", n);
      option.value = n;
      return option;
    }));
    if (names.includes(picked)) select.value = picked;
  }
  const signature = toJson(schedules);
  if (signature === shown) return;
  shown = signature;
  $("schedule-rows").replaceChildren(
    ...schedules.map((s) => {
      const remove = button(`Delete schedule ${s.id}`, async () => {
        clearError("schedule-list-error");
        try {
          await api("DELETE", `/v1/sprites/${encodeURIComponent(s.sprite)}/schedules/${s.id}`);
        } catch (error) {
          showError("schedule-list-error", error);
        }
        await load();
      }, "quiet danger");
      const runs = el("div");
      for (const r of s.last_runs.slice(0, 3)) runs.append(el("div", runText(r), r.outcome === "ok" ? "" : "muted"));
      if (s.last_runs.length === 0) runs.textContent = "—";
      const tr = row([
        el("span", s.sprite, "mono"),
        el("span", s.cron, "mono"),
        el("span", does(s), "mono"),
        when(s.next_runs[0]),
        runs,
        remove,
      ]);
      tr.dataset.id = s.id;
      return tr;
    }),
  );
  $("schedule-empty").hidden = schedules.length > 0;
}

/** Loads every sprite's schedules into the card. */
export async function load() {
  if (!$("schedules")) return;
  if (!built) build();
  await loadList("schedule", async () => {
    const names = (await api("GET", "/v1/sprites")).sprites.map((s) => s.name);
    const lists = await Promise.all(
      names.map((n) => api("GET", `/v1/sprites/${encodeURIComponent(n)}/schedules`)),
    );
    return { names, schedules: lists.flatMap((l) => l.schedules) };
  }, render);
}
