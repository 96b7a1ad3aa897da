// Small DOM helpers shared by the dashboard's parts. Text is always set with
// textContent, never parsed as HTML, so nothing the API returns can inject markup.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with text and a class. */
export function el(tag, text = "", className = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** A table row of cells; a cell is text or an element. */
export function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

/** A small button that runs `action` when clicked. */
export function button(label, action, className = "quiet") {
  const b = el("button", label, className);
  b.type = "button";
  b.addEventListener("click", action);
  return b;
}

/** Shows an error's message in the paragraph `id`. */
export function showError(id, error) {
  const p = $(id);
  p.textContent = error instanceof Error ? error.message : String(error);
  p.hidden = false;
}

/** Hides the paragraph `id`. */
export function clearError(id) {
  const p = $(id);
  p.textContent = "";
  p.hidden = true;
}

/**
 * Handles a form's submit: no page load, the button disabled while `work` runs, and a
 * failure's message shown in the paragraph `errorId` beside the form.
 */
export function onSubmit(formId, errorId, work) {
  const form = $(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorId);
    const submit = form.querySelector("button[type=submit]");
    // A loading indicator: the button waits (and says so to screen readers).
    submit.disabled = true;
    submit.classList.add("busy");
    form.setAttribute("aria-busy", "true");
    try {
      await work(form);
    } catch (error) {
      showError(errorId, error);
    } finally {
      submit.disabled = false;
      submit.classList.remove("busy");
      form.removeAttribute("aria-busy");
    }
  });
}

/**
 * Fills a list from `fetch()` with `render`; on failure hides the list's "empty" line
 * (`${name}-empty`) and shows the error in `${name}-list-error`.
 */
export async function loadList(name, fetch, render) {
  try {
    render(await fetch());
    clearError(`${name}-list-error`);
  } catch (error) {
    $(`${name}-empty`).hidden = true;
    showError(`${name}-list-error`, error);
  }
}

/** An RFC 3339 time as a short local date and time. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** An amount rounded for people, the exact figure shown on hover. */
export function amount(nanos, rough, exact) {
  const span = el("span", rough(nanos), "amount");
  span.title = exact(nanos);
  return span;
}

/** Bytes for people: 8.0 KiB, 615.0 MiB, 1.2 GiB. */
export function bytes(count) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(count);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${units[unit]}`;
}

// An error stays until it is dismissed (a click on it) or the next try; refreshes never
// wipe an action's error.
document.addEventListener("click", (event) => {
  const error = event.target instanceof Element ? event.target.closest(".error") : null;
  if (error) clearError(error.id);
});
