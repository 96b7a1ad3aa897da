// The sprites card: the list with state, pause reason, image and cost, a create form,
// and pause, resume, terminal, fork, save-as-image and delete buttons on each row.

import { api } from "./api.js";
import * as images from "./images.js";
import * as network from "./network.js";
import * as terminal from "./terminal.js";
import { $, button, clearError, el, loadList, onSubmit, row, showError } from "./dom.js";
import { formatUsd, toJson } from "./money.js";

function stateCell(sprite) {
  const text = sprite.pause_reason ? `${sprite.state} (${sprite.pause_reason})` : sprite.state;
  return el("span", text, `badge ${sprite.state}`);
}

/** Runs a row's action, then reloads; a refusal shows under the list. */
async function act(work) {
  clearError("sprite-list-error");
  try {
    await work();
  } catch (error) {
    showError("sprite-list-error", error);
    return;
  }
  await load();
}

function actions(sprite) {
  const path = `/v1/sprites/${encodeURIComponent(sprite.name)}`;
  const cell = el("span", "", "actions");
  if (sprite.state === "running") {
    cell.append(button("Pause", () => act(() => api("POST", `${path}/pause`))));
  } else if (sprite.state === "paused") {
    cell.append(button("Resume", () => act(() => api("POST", `${path}/resume`))));
  }
  if (sprite.state === "running" || sprite.state === "paused") {
    cell.append(button("Terminal", () => terminal.open(sprite.name)));
  }
  cell.append(button("Network", () => network.open(sprite.name)));
  cell.append(
    button("Fork", () => {
      const name = prompt(`Fork ${sprite.name} (same disk, memory and running processes) into a new sprite named:`);
      if (name) act(() => api("POST", `${path}/fork`, { name: name.trim() }));
    }),
    button("Save image", () => {
      const name = prompt(`Save ${sprite.name}'s files as an image named:`);
      if (name) act(async () => {
        await api("POST", `${path}/images`, { name: name.trim() });
        await images.load();
      });
    }),
    button("Delete", () => {
      if (confirm(`Delete ${sprite.name} with its disk and checkpoints?`)) {
        act(() => api("DELETE", path));
      }
    }, "quiet danger"),
  );
  return cell;
}

// What the table shows now: rows are rebuilt only when it changes, so a refresh never
// swaps a button out from under a click.
let shown = "";

function render(sprites) {
  const signature = toJson(sprites);
  if (signature === shown) return;
  shown = signature;
  const body = $("sprite-rows");
  body.replaceChildren(
    ...sprites.map((sprite) => {
      const tr = row([
        el("span", sprite.name, "mono"),
        stateCell(sprite),
        `${sprite.image} · ${sprite.cpus} vCPU · ${sprite.memory_mb} MB`,
        formatUsd(sprite.cost_nanos),
        actions(sprite),
      ]);
      tr.children[3].className = "num";
      tr.dataset.name = sprite.name;
      return tr;
    }),
  );
  $("sprite-empty").hidden = sprites.length > 0;
}

/** Loads and shows the sprites. */
export async function load() {
  await loadList("sprite", async () => (await api("GET", "/v1/sprites")).sprites, render);
}

onSubmit("sprite-form", "sprite-error", async (form) => {
  const body = { name: $("sprite-name").value.trim(), image: $("sprite-image").value };
  const cpus = $("sprite-cpus").value.trim();
  const memory = $("sprite-memory").value.trim();
  if (cpus !== "") body.cpus = Number(cpus);
  if (memory !== "") body.memory_mb = Number(memory);
  await api("POST", "/v1/sprites", body);
  form.reset();
  $("sprite-image").value = body.image;
  await load();
});
