// The images card: the operator's images and the tenant's own (saved from a sprite),
// with delete on the tenant's; and the create form's image choice.

import { api } from "./api.js";
import { $, button, clearError, el, loadList, row, showError } from "./dom.js";
import { toJson } from "./money.js";

/** Bytes for people: 8.0 KiB, 615 MiB, 1.2 GiB. */
function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(bytes);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${units[unit]}`;
}

function what(image) {
  if (image.source_sprite) return `saved from sprite ${image.source_sprite}`;
  const packages = image.packages || [];
  if (packages.length === 0) return "Debian bookworm, minimal";
  const first = packages.slice(0, 6).join(", ");
  return packages.length > 6 ? `${first}, … (${packages.length} packages)` : first;
}

async function remove(image) {
  if (!confirm(`Delete image ${image.name}? Sprites made from it keep running.`)) return;
  clearError("image-error");
  try {
    const answer = await api("DELETE", `/v1/images/${encodeURIComponent(image.name)}`);
    if (answer.state === "deleting") {
      showError(
        "image-error",
        `${image.name} is deleted; its files stay (and are billed) until its ${answer.sprites} sprite(s) are deleted.`,
      );
    }
  } catch (error) {
    showError("image-error", error);
  }
  await load();
}

let shown = "";

function render(answer) {
  const signature = toJson(answer);
  if (signature === shown) return;
  shown = signature;
  $("image-rows").replaceChildren(
    ...answer.images.map((image) => {
      const actions = el("span", "", "actions");
      if (image.owner === "tenant") {
        actions.append(button("Delete", () => remove(image), "quiet danger"));
      }
      const tr = row([
        el("span", image.name, "mono"),
        image.owner === "tenant" ? "yours" : "operator",
        size(image.size_bytes),
        what(image),
        actions,
      ]);
      tr.children[2].className = "num";
      tr.dataset.name = image.name;
      return tr;
    }),
  );
  $("image-empty").hidden = answer.images.length > 0;
  // The create form's choice keeps what was picked when it is still there.
  const select = $("sprite-image");
  const picked = select.value || answer.default;
  select.replaceChildren(
    ...answer.images.map((image) => {
      const option = el("option", image.name === answer.default ? `${image.name} (default)` : image.name);
      option.value = image.name;
      return option;
    }),
  );
  select.value = answer.images.some((i) => i.name === picked) ? picked : answer.default;
}

/** Loads and shows the images. */
export async function load() {
  await loadList("image", () => api("GET", "/v1/images"), render);
}
