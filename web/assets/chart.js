// A bar chart of cost over time as SVG, drawn here from `/v1/usage` rows: one bar per
// hour or day, its height the cost, its exact amount in the bar's tooltip. No library:
// a few rectangles need none, and nothing has to be vendored or built.

import { formatUsd, roughUsd } from "./money.js";

const SVG = "http://www.w3.org/2000/svg";

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text) n.textContent = text;
  return n;
}

/** Sums usage rows by bucket start: [[start, nanos]], oldest first. */
export function byBucket(rows) {
  const sums = new Map();
  for (const r of rows) sums.set(r.start, (sums.get(r.start) || 0n) + BigInt(r.cost_nanos));
  return [...sums.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
}

function label(iso, by) {
  const d = new Date(iso);
  return by === "hour"
    ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

/** Draws `buckets` ([[start, nanos]]) into `container` as an SVG bar chart. */
export function draw(container, buckets, by, title) {
  const width = 600;
  const height = 160;
  const pad = { top: 16, bottom: 22, left: 8, right: 8 };
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": title,
    class: "chart",
    preserveAspectRatio: "none",
  });
  const max = buckets.reduce((m, [, v]) => (v > m ? v : m), 0n);
  const slot = (width - pad.left - pad.right) / Math.max(buckets.length, 1);
  const usable = height - pad.top - pad.bottom;
  svg.append(node("line", { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, class: "axis" }));
  buckets.forEach(([start, nanos], i) => {
    // Scale in BigInt to a thousandth, then to pixels: amounts never pass a float whole.
    const share = max > 0n ? Number((nanos * 1000n) / max) / 1000 : 0;
    const h = Math.max(nanos > 0n ? 2 : 0, share * usable);
    const x = pad.left + i * slot + slot * 0.15;
    const bar = node("rect", { x, y: height - pad.bottom - h, width: slot * 0.7, height: h, class: "bar" });
    bar.append(node("title", {}, `${label(start, by)}: ${formatUsd(nanos)}`));
    svg.append(bar);
    if (buckets.length <= 12 || i % Math.ceil(buckets.length / 12) === 0) {
      svg.append(node("text", { x: x + slot * 0.35, y: height - 6, class: "tick" }, label(start, by)));
    }
  });
  if (max > 0n) svg.append(node("text", { x: pad.left, y: 12, class: "tick max" }, `max ${roughUsd(max)}`));
  container.replaceChildren(svg);
}
