// Go-style durations and byte sizes, so the reference gateway's YAML files load unchanged.

const NS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3, // U+00B5 micro sign
  "μs": 1e3, // U+03BC Greek mu: Go accepts both spellings
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

// Go stores a Duration as int64 nanoseconds; anything longer is an overflow error there too.
const MAX_NS = 2 ** 63 - 1;

/**
 * The longest delay a JavaScript timer holds (2^31-1 ms, 596h31m23.647s): setTimeout turns a
 * longer one into 1 ms, so a config duration past it would fire at once instead of never.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// One "<number><unit>" term: digits with an optional fraction, then a run of non-digit characters.
const TERM = /(\d*)(?:\.(\d*))?([^\d.]+)/y;

/**
 * Parses a Go duration ("100ms", "1h30m", "1.5s", "-2s", "0") into milliseconds (fractional
 * below 1 ms). Undefined when the text is not a Go duration; +-Infinity when it is one but
 * longer than Go's int64 nanoseconds hold (time.ParseDuration's "invalid duration" overflow).
 */
export function parseDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0; // the only unit-less form Go accepts
  if (s === "") return undefined;
  let ns = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < s.length) {
    const m = TERM.exec(s);
    if (m === null) return undefined;
    const [, whole = "", frac = "", unit = ""] = m;
    const scale = NS_PER_UNIT[unit];
    if (scale === undefined || (whole === "" && frac === "")) return undefined;
    // Integer and fraction are scaled separately so "1.1s" is exactly 1100 ms, not 1100.0000000000002.
    ns += Number(whole || "0") * scale;
    if (frac !== "") ns += Math.round(Number(`0.${frac}`) * scale);
    if (ns > MAX_NS) return sign * Infinity;
  }
  return (sign * ns) / 1e6;
}

/** Go's time.Duration.String() style ("1h30m0s", "1.5s", "250µs"), for messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1) return ms * 1000 >= 1 ? `${round(ms * 1000)}µs` : `${round(ms * 1e6)}ns`;
  if (ms < 1000) return `${round(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = round((ms % 60_000) / 1000);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

const BYTES_PER_UNIT: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

const SIZE = /^(\d+(?:\.\d+)?) ?([a-z]*)$/i;

/**
 * Parses a byte size: a non-negative integer, or a string such as "512B", "64KiB", "4MiB",
 * "1MB" (decimal: 1,000,000) or "1024". Undefined for anything else, including sizes that are
 * not a whole number of bytes ("1.5B").
 */
export function parseByteSize(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE.exec(value);
  if (m === null) return undefined;
  const [, num = "", unit = ""] = m;
  const scale = unit === "" ? 1 : BYTES_PER_UNIT[unit.toLowerCase()];
  if (scale === undefined) return undefined;
  // Rounding absorbs float noise ("1.1KB" is 1100.0000000000002) but not a real fraction of a byte.
  const exact = Number(num) * scale;
  const bytes = Math.round(exact);
  return Number.isSafeInteger(bytes) && Math.abs(exact - bytes) < 1e-6 ? bytes : undefined;
}

/** "1MiB", "64KiB" or "1500B": the shortest exact binary form, for messages and docs. */
export function formatByteSize(bytes: number): string {
  for (const [unit, scale] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}B`;
}
