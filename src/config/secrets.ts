// Values of secret keys never leave the loader: not in errors, logs, /api/status or the status page.
// A key is secret by its name, so a secret under a key the schema does not know is covered too.

export const REDACTED = "<redacted>";

const SECRET_NAME = /pass(?:word|wd)?|secret|token|credential|private_?key|api_?key/i;

/** True when the last key of a path ("redis.password", "x.rules[2].token") names a secret. */
export function isSecretPath(path: string): boolean {
  const last = path.replace(/\[\d+\]$/, "").split(".").pop() ?? "";
  return SECRET_NAME.test(last);
}

/** A copy of `value` with every secret-named key's value replaced (for values shown whole, like a mis-shaped section). */
export function redactNested(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactNested);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_NAME.test(k) ? REDACTED : redactNested(v);
  return out;
}

/** What may be shown of the value at `path`. */
export function shownValue(path: string, value: unknown): unknown {
  if (value === undefined) return undefined;
  return isSecretPath(path) ? REDACTED : redactNested(value);
}
