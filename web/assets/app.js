// The page's entry point: the signup and login forms, then the dashboard (account,
// budget, sprites, images, API tokens), refreshed every few seconds while it is open.

import { api, onSessionLost, session } from "./api.js";
import * as budget from "./budget.js";
import * as images from "./images.js";
import * as network from "./network.js";
import * as schedules from "./schedules.js";
import * as secrets from "./secrets.js";
import { $, clearError, onSubmit, showError, when } from "./dom.js";
import * as sprites from "./sprites.js";
import * as tokens from "./tokens.js";

const REFRESH_MS = 5000;
let timer = null;

function refresh() {
  return Promise.all([budget.load(), sprites.load(), images.load(), network.refresh(), secrets.load(), schedules.load(), tokens.load()]);
}

/** Shows the forms; `message` (why the session ended) goes above the login form. */
function showAuth(message) {
  clearInterval(timer);
  timer = null;
  session.clear();
  budget.reset();
  tokens.reset();
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

onSessionLost(() => showAuth("Your session has ended. Log in again."));

onSubmit("signup-form", "signup-error", async (form) => {
  const answer = await api("POST", "/v1/signup", {
    email: $("signup-email").value.trim(),
    password: $("signup-password").value,
    org: $("signup-org").value.trim(),
  });
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
