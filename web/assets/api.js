// Talking to Corral's API: the session token kept in sessionStorage, JSON bodies with
// exact nano-dollar amounts, and problem+json answers turned into an ApiError whose
// message is the server's `detail`.

import { parseJson, toJson } from "./money.js";
import { inWords } from "./words.js";

const SESSION_KEY = "corral.session";

/** The session token of this browser tab. */
export const session = {
  get: () => sessionStorage.getItem(SESSION_KEY),
  set: (token) => sessionStorage.setItem(SESSION_KEY, token),
  clear: () => sessionStorage.removeItem(SESSION_KEY),
};

/** A refused or failed call; `message` is what the server said, for a person. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(inWords(detail));
    /** What the server said, word for word. */
    this.detail = detail;
    this.status = status;
    this.code = code;
  }
}

let sessionLost = () => {};

/** Called when a call made with the session token is answered 401 (it expired). */
export function onSessionLost(handler) {
  sessionLost = handler;
}

/**
 * `method path` with a raw body (a file's bytes); resolves to the Response when it is
 * a success, else throws the ApiError the problem describes.
 */
export async function apiRaw(method, path, body) {
  const token = session.get();
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "offline", "Cannot reach the server. Check the connection and try again.");
  }
  if (response.ok) return response;
  if (response.status === 401 && token) sessionLost();
  let problem = {};
  try {
    problem = parseJson(await response.text()) || {};
  } catch {
    problem = {};
  }
  throw new ApiError(response.status, problem.code || "unknown", problem.detail || `The server answered ${response.status}.`);
}

/** `method path` with an optional JSON body; resolves to the parsed answer or null. */
export async function api(method, path, body) {
  const token = session.get();
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : toJson(body),
    });
  } catch {
    throw new ApiError(0, "offline", "Cannot reach the server. Check the connection and try again.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? parseJson(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  if (response.status === 401 && token) sessionLost();
  const problem = data && typeof data === "object" ? data : {};
  const detail = problem.detail || problem.title || `The server answered ${response.status}.`;
  throw new ApiError(response.status, problem.code || "unknown", detail);
}
