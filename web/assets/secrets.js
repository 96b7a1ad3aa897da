// The secrets card: values the tenant's sprites use without holding them. The page
// sends a value once and never sees it again; the list shows names, hosts and the
// placeholder sprites get.

import { api } from "./api.js";
import { $, button, clearError, el, loadList, onSubmit, row, showError } from "./dom.js";
import { toJson } from "./money.js";

let shown = "";

function render(secrets) {
  const signature = toJson(secrets);
  if (signature === shown) return;
  shown = signature;
  $("secret-rows").replaceChildren(
    ...secrets.map((secret) => {
      const remove = button(`Delete ${secret.name}`, async () => {
        if (!confirm(`Delete secret ${secret.name}? Sprites keep its placeholder, which then stays a placeholder.`)) return;
        clearError("secret-list-error");
        try {
          await api("DELETE", `/v1/secrets/${encodeURIComponent(secret.name)}`);
        } catch (error) {
          showError("secret-list-error", error);
        }
        await load();
      }, "quiet danger");
      const tr = row([
        el("span", secret.name, "mono"),
        secret.hosts.join(", "),
        el("span", `$${secret.env}`, "mono"),
        remove,
      ]);
      tr.dataset.name = secret.name;
      return tr;
    }),
  );
  $("secret-empty").hidden = secrets.length > 0;
}

/** Loads and shows the secrets. */
export async function load() {
  await loadList("secret", async () => (await api("GET", "/v1/secrets")).secrets, render);
}

onSubmit("secret-form", "secret-error", async (form) => {
  const body = {
    name: $("secret-name").value.trim(),
    value: $("secret-value").value,
    hosts: $("secret-hosts").value.split(",").map((h) => h.trim()).filter((h) => h !== ""),
  };
  const header = $("secret-header").value.trim();
  if (header !== "") body.header = header;
  await api("POST", "/v1/secrets", body);
  form.reset();
  await load();
});
