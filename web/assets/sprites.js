// The sprites card: the list with state, pause reason, image and cost, a create form
// whose limits are the tenant's real ones, and pause, resume, open, terminal, network,
// fork, save-as-image and delete buttons on each row. Rows are keyed by name and
// updated in place, so the 5-second refresh never swaps a button out from under the
// pointer or takes the keyboard focus away.

import { api } from "./api.js";
import * as images from "./images.js";
import * as network from "./network.js";
import * as page from "./sprite-page.js";
import * as terminal from "./terminal.js";
import { $, amount, button, clearError, el, loadList, onSubmit, showError } from "./dom.js";
import { formatUsd, roughUsd } from "./money.js";

/** Called with a 402 refusal (create or resume), or null after one succeeded. */
let onRefusal = () => {};

/** Lets the budget card hear when money refused a create or resume. */
export function onMoneyRefusal(handler) {
  onRefusal = handler;
}

/**
 * Runs a row's action, then reloads. A refusal shows beside the form, where the
 * refresh (which clears only load errors) leaves it until dismissed or the next action.
 */
async function act(work, resumes = false) {
  clearError("sprite-error");
  try {
    await work();
    if (resumes) onRefusal(null);
  } catch (error) {
    if (error.status === 402) onRefusal(error);
    showError("sprite-error", error);
    return;
  }
  await load();
}

function named(label, name, action, className) {
  const b = button(label, action, className);
  b.setAttribute("aria-label", `${label} ${name}`);
  return b;
}

function actions(sprite) {
  const path = `/v1/sprites/${encodeURIComponent(sprite.name)}`;
  const n = sprite.name;
  const cell = el("span", "", "actions");
  if (sprite.state === "running") {
    cell.append(named("Pause", n, () => act(() => api("POST", `${path}/pause`))));
  } else if (sprite.state === "paused") {
    cell.append(named("Resume", n, () => act(() => api("POST", `${path}/resume`), true)));
  }
  if (sprite.state === "running" || sprite.state === "paused") {
    cell.append(named("Terminal", n, () => terminal.open(n)));
  }
  cell.append(named("Network", n, () => network.open(n)));
  cell.append(
    named("Fork", n, () => {
      const name = prompt(`Fork ${n} (same disk, memory and running processes) into a new sprite named:`);
      if (name) act(() => api("POST", `${path}/fork`, { name: name.trim() }));
    }),
    named("Save image", n, () => {
      const name = prompt(`Save ${n}'s files as an image named:`);
      if (name) act(async () => {
        await api("POST", `${path}/images`, { name: name.trim() });
        await images.load();
      });
    }),
    named("Delete", n, () => {
      if (confirm(`Delete ${n} with its disk and checkpoints?`)) {
        act(async () => {
          await api("DELETE", path);
          page.closeIfShowing(n);
        });
      }
    }, "quiet danger"),
  );
  return cell;
}

function newRow(sprite) {
  const tr = document.createElement("tr");
  tr.dataset.name = sprite.name;
  const open = button(sprite.name, () => page.open(sprite.name), "link mono");
  open.setAttribute("aria-label", `Open sprite ${sprite.name}`);
  const cells = [open, el("span"), "", "", ""];
  for (const cell of cells) {
    const td = document.createElement("td");
    td.append(cell);
    tr.append(td);
  }
  tr.children[3].className = "num";
  return tr;
}

/** Updates a row's cells in place; the buttons only when the state changed. */
function update(tr, sprite) {
  const state = sprite.pause_reason ? `${sprite.state} (${sprite.pause_reason})` : sprite.state;
  const badge = el("span", state, `badge ${sprite.state}`);
  if (sprite.pause_why) badge.title = sprite.pause_why;
  if (tr.children[1].textContent !== state) tr.children[1].replaceChildren(badge);
  tr.children[2].textContent = `${sprite.image} · ${sprite.cpus} vCPU · ${sprite.memory_mb} MB`;
  tr.children[3].replaceChildren(amount(sprite.cost_nanos, roughUsd, formatUsd));
  if (tr.dataset.state !== sprite.state) {
    const focused = tr.children[4].contains(document.activeElement) ? document.activeElement.textContent : null;
    tr.children[4].replaceChildren(actions(sprite));
    tr.dataset.state = sprite.state;
    if (focused) {
      [...tr.children[4].querySelectorAll("button")].find((b) => b.textContent === focused)?.focus();
    }
  }
}

let shown = [];

/** The sprites as last loaded. */
export function latest() {
  return shown;
}

function render(sprites) {
  shown = sprites;
  const body = $("sprite-rows");
  const existing = new Map([...body.children].map((tr) => [tr.dataset.name, tr]));
  const wanted = sprites.map((sprite) => {
    const tr = existing.get(sprite.name) || newRow(sprite);
    existing.delete(sprite.name);
    update(tr, sprite);
    return tr;
  });
  for (const gone of existing.values()) gone.remove();
  // Append in order: a row already in place is moved only if the order changed.
  wanted.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  $("sprite-empty").hidden = sprites.length > 0;
}

/** The limits the create form shows are the tenant's own. */
async function loadLimits() {
  try {
    const limits = await api("GET", "/v1/limits");
    $("sprite-cpus").max = String(limits.max_total_cpus);
    $("sprite-memory").max = String(limits.max_total_memory_mb);
    $("sprite-limits").textContent =
      `Your limits: ${limits.max_running_sprites} running sprites, ${limits.max_total_cpus} vCPUs and ` +
      `${limits.max_total_memory_mb} MB of memory in all; sprites pause after ${limits.default_idle_timeout_s} s idle.`;
  } catch {
    // The form still works; the server says the limit when one is passed.
  }
}

let limitsLoaded = false;

/** Loads and shows the sprites. */
export async function load() {
  if (!limitsLoaded) {
    limitsLoaded = true;
    loadLimits();
  }
  await loadList("sprite", async () => (await api("GET", "/v1/sprites")).sprites, render);
}

/** Forgets what was shown, for the next person to log in. */
export function reset() {
  limitsLoaded = false;
  $("sprite-rows").replaceChildren();
  page.close();
}

onSubmit("sprite-form", "sprite-error", async (form) => {
  const body = { name: $("sprite-name").value.trim(), image: $("sprite-image").value };
  const cpus = $("sprite-cpus").value.trim();
  const memory = $("sprite-memory").value.trim();
  if (cpus !== "") body.cpus = Number(cpus);
  if (memory !== "") body.memory_mb = Number(memory);
  try {
    await api("POST", "/v1/sprites", body);
    onRefusal(null);
  } catch (error) {
    if (error.status === 402) onRefusal(error);
    throw error;
  }
  form.reset();
  $("sprite-image").value = body.image;
  await load();
});
