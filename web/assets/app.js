// The page's entry point: the signup and login forms, then the dashboard (account,
// budget, spend, sprites, images, API tokens), refreshed every few seconds while it is
// open. A new card is a module with `load()` (and `reset()` if it keeps state) added
// to CARDS below, and its markup in index.html.

import { api, onSessionLost, session } from "./api.js";
import * as billing from "./billing.js";
import * as budget from "./budget.js";
import * as images from "./images.js";
import * as network from "./network.js";
import * as schedules from "./schedules.js";
import * as secrets from "./secrets.js";
import { $, clearError, onSubmit, showError, when } from "./dom.js";
import * as spritePage from "./sprite-page.js";
import * as spend from "./spend.js";
import * as sprites from "./sprites.js";
import * as tokens from "./tokens.js";

// A refused field is outlined and named to screen readers until it is typed in again.
const SIGNUP_FIELDS = { password: "signup-password", "e-mail": "signup-email", org: "signup-org" };

const REFRESH_MS = 5000;
let timer = null;

/** Every card of the dashboard: each loads itself; `reset` forgets a logged-out person. */
const CARDS = [
  billing,
  budget,
  spend,
  sprites,
  spritePage,
  images,
  { load: network.refresh },
  secrets,
  schedules,
  tokens,
];

async function refresh() {
  await Promise.all(CARDS.map((card) => card.load()));
  // Which limit stops sprites needs the budget, the tokens and the sprites together.
  budget.explain(tokens.list(), sprites.latest());
}

/** Shows the forms; `message` (why the session ended) goes above the login form. */
function showAuth(message) {
  clearInterval(timer);
  timer = null;
  session.clear();
  for (const card of CARDS) card.reset?.();
  $("dashboard").hidden = true;
  $("who").hidden = true;
  $("auth").hidden = false;
  if (message) showError("login-error", message);
}

/** Loads who is logged in, then shows and keeps refreshing the dashboard. */
async function showDashboard() {
  const me = await api("GET", "/v1/me");
  $("who-email").textContent = me.email;
  $("account-org").textContent = me.org;
  $("account-email").textContent = me.email;
  $("account-tenant").textContent = me.tenant_id;
  $("account-expires").textContent = when(me.token.expires_at);
  $("auth").hidden = true;
  $("who").hidden = false;
  $("dashboard").hidden = false;
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

for (const id of Object.values(SIGNUP_FIELDS)) {
  $(id).addEventListener("input", () => $(id).removeAttribute("aria-invalid"));
}

onSessionLost(() => showAuth("Your session has ended. Log in again."));

onSubmit("signup-form", "signup-error", async (form) => {
  for (const id of Object.values(SIGNUP_FIELDS)) $(id).removeAttribute("aria-invalid");
  let answer;
  try {
    answer = await api("POST", "/v1/signup", {
      email: $("signup-email").value.trim(),
      password: $("signup-password").value,
      org: $("signup-org").value.trim(),
    });
  } catch (error) {
    const text = error.message.toLowerCase();
    const field = Object.keys(SIGNUP_FIELDS).find((word) => text.includes(word));
    if (field) {
      $(SIGNUP_FIELDS[field]).setAttribute("aria-invalid", "true");
      $(SIGNUP_FIELDS[field]).focus();
    }
    throw error;
  }
  session.set(answer.token);
  form.reset();
  await showDashboard();
});

onSubmit("login-form", "login-error", async (form) => {
  const answer = await api("POST", "/v1/login", {
    email: $("login-email").value.trim(),
    password: $("login-password").value,
  });
  session.set(answer.token);
  form.reset();
  await showDashboard();
});

// Logging out ends the session on the server too, so a copy of the token is dead.
$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/v1/logout");
  } catch {
    // Already expired or offline: the tab forgets the token either way.
  }
  showAuth();
});

if (session.get()) {
  showDashboard().catch((error) => showAuth(error.message));
} else {
  showAuth();
}
