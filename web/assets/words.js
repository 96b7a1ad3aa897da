// The API's refusals name its fields (`cap_nanos must be between…`), which suits a
// program; the page says the same in the words of its forms, with amounts in dollars.

import { roughUsd } from "./money.js";

/** Field names as the forms call them. */
const FIELDS = {
  cap_nanos: "The monthly cap",
  budget_nanos: "The budget",
  thresholds_pct: "Alert thresholds",
  cpus: "vCPUs",
  memory_mb: "Memory (MB)",
  disk_mb: "Disk (MB)",
  idle_timeout_s: "The idle timeout (seconds)",
  expires_in_s: "The lifetime (seconds)",
  network_mbps: "Bandwidth (Mbit/s)",
};

/** Whole nano-dollar figures as dollars. */
const dollars = (digits) => roughUsd(BigInt(digits)).replace("<$0.01", "under $0.01");

const REWRITES = [
  // "cap_nanos must be between 0 and 1000000000000000000 (a billion dollars), got -5"
  [/^cap_nanos must be between 0 and \d+ \(a billion dollars\), got (-?\d+)$/,
    (_m, got) => `The monthly cap must be between $0 and $1,000,000,000; ${dollars(got)} is not.`],
  [/^budget_nanos must not be negative$/, () => "A budget cannot be negative."],
  // "cpus must be between 1 and 8, got 64"
  [/^(\w+) must be between (-?\d+) and (-?\d+), got (-?\d+)$/,
    (m, field, min, max, got) => (FIELDS[field] ? `${FIELDS[field]} must be from ${min} to ${max}; ${got} is outside that.` : m)],
  [/^thresholds_pct must be percentages from 1 to 100, got (.*)$/,
    (_m, got) => `Alert thresholds are percentages from 1 to 100; ${got} is not one.`],
  // Money in a 402 ("… ($0.000123) (123 nano-dollars) …"): the figure once, for people.
  [/ \((-?\d+) nano-dollars\)/g, () => ""],
];

/** The server's `detail` in a person's words (unchanged when no rule applies). */
export function inWords(detail) {
  let text = detail;
  for (const [pattern, replace] of REWRITES) text = text.replace(pattern, replace);
  return text;
}
