// A sprite's own page (a card opened from its row): what it is and costs, why it is
// paused, what kept it awake, its idle timeout (changeable), its URL (open, copy, public or
// private); a one-shot command with its output and exit code; its
// checkpoints (create with a comment, restore, delete); files up and down; its cost
// by hour. The terminal card (terminal.js) opens from here too.

import { api, apiRaw } from "./api.js";
import * as chart from "./chart.js";
import { $, amount, button, bytes, clearError, el, onSubmit, row, showError, when } from "./dom.js";
import { formatUsd, roughUsd, toJson } from "./money.js";
import * as terminal from "./terminal.js";

let current = null;
let shownCheckpoints = "";

const path = () => `/v1/sprites/${encodeURIComponent(current)}`;

/** Opens the page of sprite `name`. */
export async function open(name) {
  current = name;
  shownCheckpoints = "";
  for (const id of ["sp-output", "sp-exit", "sp-file-status", "sp-file-preview", "sp-url-status"]) $(id).textContent = "";
  $("sp-output").hidden = true;
  $("sp-file-preview").hidden = true;
  for (const id of ["sp-error", "sp-idle-error", "sp-url-error", "sp-run-error", "sp-cp-error", "sp-file-error"]) clearError(id);
  $("sprite-page-name").textContent = name;
  $("sprite-page").hidden = false;
  await load();
  $("sprite-page").scrollIntoView({ block: "start" });
}

/** Closes the page if it shows sprite `name` (it was deleted). */
export function closeIfShowing(name) {
  if (current === name) close();
}

/** Closes the page. */
export function close() {
  current = null;
  $("sprite-page").hidden = true;
}

function renderSprite(s) {
  $("sprite-page-state").textContent = s.pause_reason ? `${s.state} (${s.pause_reason})` : s.state;
  $("sprite-page-state").className = `badge ${s.state}`;
  $("sp-why").textContent = s.pause_why || (s.state === "running" ? "running" : s.state);
  $("sp-image").textContent = s.image;
  $("sp-size").textContent = `${s.cpus} vCPU · ${s.memory_mb} MB memory · ${s.disk_mb} MB disk (${bytes(s.disk_used_bytes)} used)`;
  $("sp-idle").textContent = s.idle_timeout_s === 0 ? "never pauses when idle" : `pauses after ${s.idle_timeout_s} s idle`;
  $("sp-idle").dataset.seconds = String(s.idle_timeout_s);
  $("sp-awake").textContent = `${s.last_activity}, ${when(s.last_active_at)}`;
  $("sp-cost").replaceChildren(amount(s.cost_nanos, roughUsd, formatUsd));
  renderUrl(s);
  $("sp-terminal").disabled = !(s.state === "running" || s.state === "paused");
}

/** The sprite's URL, who may open it, and its buttons (each naming the sprite). */
function renderUrl(s) {
  $("sp-url-row").hidden = !s.url;
  if (!s.url) return;
  const isPublic = s.url_auth === "public";
  $("sp-url").textContent = s.url;
  $("sp-url").dataset.auth = s.url_auth;
  $("sp-url-access").textContent = isPublic
    ? `public: anyone may open it · port ${s.http_port} inside`
    : `private: a link from here, or a token with sprites:http · port ${s.http_port} inside`;
  const toggle = $("sp-url-toggle");
  toggle.textContent = isPublic ? "Make private" : "Make public";
  toggle.setAttribute("aria-label", `${toggle.textContent}: the URL of ${s.name}`);
  $("sp-url-open").setAttribute("aria-label", `Open the URL of ${s.name}`);
  $("sp-url-copy").setAttribute("aria-label", `Copy the URL of ${s.name}`);
}

function renderCheckpoints(list) {
  const signature = toJson(list);
  if (signature === shownCheckpoints) return;
  shownCheckpoints = signature;
  $("sp-cp-rows").replaceChildren(
    ...list.map((cp) => {
      const label = cp.comment || `checkpoint ${cp.id}`;
      const restore = button("Restore", () => act("sp-cp-error", async () => {
        if (!confirm(`Restore ${current} to "${label}"? Changes since then are lost.`)) return;
        await api("POST", `${path()}/checkpoints/${cp.id}/restore`);
        $("sp-cp-status").textContent = `Restored to "${label}".`;
      }));
      restore.setAttribute("aria-label", `Restore ${current} to ${label}`);
      const remove = button("Delete", () => act("sp-cp-error", async () => {
        if (!confirm(`Delete checkpoint "${label}"?`)) return;
        await api("DELETE", `${path()}/checkpoints/${cp.id}`);
      }), "quiet danger");
      remove.setAttribute("aria-label", `Delete checkpoint ${label}`);
      const actions = el("span", "", "actions");
      actions.append(restore, remove);
      const tr = row([label, when(cp.created_at), bytes(cp.size_bytes), actions]);
      tr.children[2].className = "num";
      tr.dataset.id = cp.id;
      return tr;
    }),
  );
  $("sp-cp-empty").hidden = list.length > 0;
}

async function act(errorId, work) {
  clearError(errorId);
  try {
    await work();
  } catch (error) {
    showError(errorId, error);
  }
  await load();
}

/** Reloads the open page (the dashboard's refresh calls this). */
export async function load() {
  if (!current) return;
  const name = current;
  try {
    const [sprite, checkpoints, usage] = await Promise.all([
      api("GET", path()),
      api("GET", `${path()}/checkpoints`),
      api("GET", `/v1/usage?by=hour&sprite=${encodeURIComponent(name)}&from=${encodeURIComponent(new Date(Date.now() - 86_400_000).toISOString())}`),
    ]);
    if (current !== name) return;
    renderSprite(sprite);
    renderCheckpoints(checkpoints.checkpoints);
    chart.draw($("sp-chart"), chart.byBucket(usage.rows), "hour", `Cost of ${name} by hour, last 24 hours`);
    clearError("sp-error");
  } catch (error) {
    showError("sp-error", error);
  }
}

onSubmit("sp-run-form", "sp-run-error", async () => {
  $("sp-exit").textContent = "running…";
  const answer = await api("POST", `${path()}/exec`, { cmd: ["sh", "-c", $("sp-cmd").value] });
  $("sp-output").textContent = answer.stdout + answer.stderr;
  $("sp-output").hidden = false;
  $("sp-exit").textContent = `exit code ${answer.exit_code} · ${answer.duration_ms} ms${answer.truncated ? " · output cut" : ""}`;
  await load();
});

onSubmit("sp-cp-form", "sp-cp-error", async () => {
  $("sp-cp-status").textContent = "Saving a checkpoint…";
  const cp = await api("POST", `${path()}/checkpoints`, { comment: $("sp-cp-comment").value.trim() });
  $("sp-cp-status").textContent = `Checkpoint "${cp.comment || cp.id}" saved.`;
  $("sp-cp-comment").value = "";
  await load();
});

onSubmit("sp-up-form", "sp-file-error", async () => {
  const file = $("sp-up-file").files[0];
  if (!file) throw new Error("Choose a file to upload first.");
  const to = $("sp-up-path").value.trim();
  if (!to.startsWith("/")) throw new Error("The path in the sprite starts with /, e.g. /root/notes.txt");
  await apiRaw("PUT", `${path()}/files?path=${encodeURIComponent(to)}`, file);
  $("sp-file-status").textContent = `Uploaded ${file.name} (${bytes(file.size)}) to ${to}.`;
  $("sp-down-path").value = to;
});

onSubmit("sp-down-form", "sp-file-error", async () => {
  const from = $("sp-down-path").value.trim();
  const response = await apiRaw("GET", `${path()}/files?path=${encodeURIComponent(from)}`);
  const blob = await response.blob();
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = from.split("/").pop() || "file";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  $("sp-file-status").textContent = `Downloaded ${from} (${bytes(blob.size)}).`;
  // A short text file is shown too, so what came back can be read at once.
  if (blob.size <= 4096) {
    $("sp-file-preview").textContent = await blob.text();
    $("sp-file-preview").hidden = false;
  }
});

// The idle timeout is a setting of the sprite (`PATCH /v1/sprites/{name}`).
// Opens the URL in a new tab: a private sprite's through a short-lived link, which sets
// a cookie for that sprite's host alone.
$("sp-url-open").addEventListener("click", () => act("sp-url-error", async () => {
  const url = $("sp-url").textContent;
  const target = $("sp-url").dataset.auth === "public"
    ? url
    : (await api("POST", `${path()}/url/link`)).url;
  window.open(target, "_blank", "noopener");
}));

$("sp-url-copy").addEventListener("click", async () => {
  const url = $("sp-url").textContent;
  try {
    await navigator.clipboard.writeText(url);
    $("sp-url-status").textContent = "Copied.";
  } catch {
    // No clipboard (an insecure page): select it for Ctrl-C instead.
    window.getSelection().selectAllChildren($("sp-url"));
    $("sp-url-status").textContent = "Selected: press Ctrl-C to copy.";
  }
});

$("sp-url-toggle").addEventListener("click", () => act("sp-url-error", async () => {
  const makePublic = $("sp-url").dataset.auth !== "public";
  if (makePublic && !confirm(`Let anyone who has the URL open ${current}? Its bytes are billed to you.`)) return;
  await api("PATCH", path(), { url_auth: makePublic ? "public" : "sprite" });
  $("sp-url-status").textContent = makePublic ? "Now public." : "Now private.";
}));

$("sp-idle-edit").addEventListener("click", () => act("sp-idle-error", async () => {
  const typed = prompt(`Pause ${current} after how many seconds without use? (0 = never)`, $("sp-idle").dataset.seconds);
  if (typed === null) return;
  if (!/^\d+$/.test(typed.trim())) throw new Error("The idle timeout is a whole number of seconds, such as 300.");
  await api("PATCH", path(), { idle_timeout_s: Number(typed.trim()) });
}));
$("sp-terminal").addEventListener("click", () => terminal.open(current));
$("sprite-page-close").addEventListener("click", close);
