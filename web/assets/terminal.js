// The terminal card: a real terminal (xterm.js, vendored) on a sprite over the exec
// WebSocket in terminal mode (`tty=1`): keys go in as stdin frames (0), output comes
// back as stdout frames (1), the window's size follows the card (5), and the exit frame
// (3) ends the session. The session token rides in the WebSocket's protocol list, as
// browsers cannot set an Authorization header on a WebSocket.

import { session } from "./api.js";
import { $ } from "./dom.js";

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const EXIT = 3;
const RESIZE = 5;

let current = null;

const encoder = new TextEncoder();

function frame(kind, bytes) {
  const out = new Uint8Array(bytes.length + 1);
  out[0] = kind;
  out.set(bytes, 1);
  return out;
}

/** Ends the open session (the sprite's shell is killed when the socket closes). */
export function close() {
  if (!current) return;
  current.socket.close();
  current.term.dispose();
  window.removeEventListener("resize", current.onResize);
  current = null;
  $("terminal").hidden = true;
}

/** Opens a terminal on `name`: a login shell, sized to the card. */
export function open(name) {
  close();
  $("terminal").hidden = false;
  $("terminal-name").textContent = name;
  $("terminal-state").textContent = "connecting…";
  const term = new globalThis.Terminal({
    cursorBlink: true,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 14,
    scrollback: 5000,
  });
  const fit = new globalThis.FitAddon.FitAddon();
  term.loadAddon(fit);
  const screen = $("terminal-screen");
  screen.replaceChildren();
  term.open(screen);
  fit.fit();
  const query = new URLSearchParams([
    ["cmd", "bash"],
    ["cmd", "-l"],
    ["tty", "1"],
    ["rows", String(term.rows)],
    ["cols", String(term.cols)],
  ]);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/v1/sprites/${encodeURIComponent(name)}/exec/ws?${query}`;
  const socket = new WebSocket(url, ["corral", `corral.bearer.${session.get()}`]);
  socket.binaryType = "arraybuffer";
  const decoder = new TextDecoder();
  socket.addEventListener("open", () => {
    $("terminal-state").textContent = "connected";
    term.focus();
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") {
      term.write(`\r\n${event.data}\r\n`);
      return;
    }
    const bytes = new Uint8Array(event.data);
    const body = bytes.subarray(1);
    if (bytes[0] === STDOUT || bytes[0] === STDERR) {
      term.write(body);
    } else if (bytes[0] === EXIT) {
      $("terminal-state").textContent = `ended (exit ${decoder.decode(body)})`;
    }
  });
  socket.addEventListener("close", () => {
    if ($("terminal-state").textContent === "connected") {
      $("terminal-state").textContent = "disconnected";
    }
  });
  term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(frame(STDIN, encoder.encode(data)));
  });
  term.onResize(({ rows, cols }) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(frame(RESIZE, encoder.encode(JSON.stringify({ rows, cols }))));
    }
  });
  const onResize = () => fit.fit();
  window.addEventListener("resize", onResize);
  current = { socket, term, onResize };
}

$("terminal-close").addEventListener("click", close);
