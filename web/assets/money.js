// Money on the page. The API counts integer nano-dollars (`*_nanos`); these helpers
// turn them into dollar text and back with BigInt, and read and write JSON so that
// such amounts never pass through a float (JSON.parse would round past 2^53).

const NANOS_PER_DOLLAR = 1_000_000_000n;

/** A `*_nanos` key, with the whole number after it. */
const NANOS_FIELD = /("[a-z_]*_nanos[a-z_]*"\s*:\s*)(-?\d+)/g;

/** Parses an API answer, every `*_nanos` number becoming a BigInt. */
export function parseJson(text) {
  return JSON.parse(text.replace(NANOS_FIELD, '$1"$2"'), (key, value) =>
    key.includes("_nanos") && typeof value === "string" && /^-?\d+$/.test(value)
      ? BigInt(value)
      : value,
  );
}

/** Serialises a request body, writing BigInt values as exact JSON numbers. */
export function toJson(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `\u0000big:${v}` : v))
    .replace(/"\\u0000big:(-?\d+)"/g, "$1");
}

function split(nanos) {
  const n = BigInt(nanos);
  const negative = n < 0n;
  const abs = negative ? -n : n;
  const whole = (abs / NANOS_PER_DOLLAR).toString();
  const frac = (abs % NANOS_PER_DOLLAR).toString().padStart(9, "0").replace(/0+$/, "");
  return { sign: negative ? "-" : "", whole, frac };
}

/** Nano-dollars as a person reads them: "$1,234.50", "$0.000001234"; exact. */
export function formatUsd(nanos) {
  if (nanos === null || nanos === undefined) return "—";
  const { sign, whole, frac } = split(nanos);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}$${grouped}.${frac.padEnd(2, "0")}`;
}

/** Nano-dollars as a form field holds them: "25", "12.5"; exact. */
export function dollarsText(nanos) {
  if (nanos === null || nanos === undefined) return "";
  const { sign, whole, frac } = split(nanos);
  return frac ? `${sign}${whole}.${frac}` : `${sign}${whole}`;
}

/**
 * Dollar text typed by a person ("25", "$12.50", "1,000", "0.000000001") as BigInt
 * nano-dollars. A minus sign is let through so that the server says what it accepts.
 */
export function parseUsd(text) {
  const cleaned = text.trim().replace(/^\$/, "").replace(/,/g, "");
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(cleaned);
  if (!match || (match[2] === "" && !match[3])) {
    throw new Error(`"${text.trim()}" is not an amount in dollars, such as 25 or 12.50`);
  }
  const [, minus, whole, frac = ""] = match;
  if (frac.length > 9) {
    throw new Error("amounts go down to a nano-dollar: at most 9 decimal places");
  }
  const nanos = BigInt(whole || "0") * NANOS_PER_DOLLAR + BigInt(frac.padEnd(9, "0"));
  return minus ? -nanos : nanos;
}

/**
 * Nano-dollars rounded for people: "$0.13", "$1,234.57", "<$0.01" (never "$0.00" for
 * a real spend); the exact figure belongs in a tooltip (`formatUsd`).
 */
export function roughUsd(nanos) {
  if (nanos === null || nanos === undefined) return "—";
  const n = BigInt(nanos);
  if (n === 0n) return "$0.00";
  const abs = n < 0n ? -n : n;
  if (abs < 10_000_000n) return n < 0n ? "-<$0.01" : "<$0.01";
  const cents = (abs + 5_000_000n) / 10_000_000n;
  const whole = (cents / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = (cents % 100n).toString().padStart(2, "0");
  return `${n < 0n ? "-" : ""}$${whole}.${frac}`;
}
