// A tiny declarative reader: each key is a Field that checks and converts one YAML value, and a
// Section is a record of keys. Reading never stops at the first problem so one run of the
// loader reports every mistake in a file.

import { formatByteSize, formatDuration, MAX_TIMER_MS, parseByteSize, parseDuration } from "./duration.ts";
import { parseHostPort } from "./host-port.ts";
import { closestKey } from "./suggest.ts";

export interface ConfigIssue {
  /** Key path: dots between keys, [i] for list items ("routing.rules[2].strategy"). */
  readonly path: string;
  /** The offending value as read (undefined when a required key is missing). */
  readonly value: unknown;
  /** What would have been accepted, phrased to follow "expected". */
  readonly expected: string;
  /** Replaces the description of `value` in the message when the problem is not the value itself ("an unknown key"). */
  readonly got?: string;
  /** The key the problem is about (not its value): an unknown key is pointed at by its name. */
  readonly atKey?: boolean;
  /** A likely fix, said after the problem ("did you mean \"dial_timeout\"?"). */
  readonly hint?: string;
  /** 1-based line and column in the file, when the problem can be pointed at. */
  readonly at?: { readonly line: number; readonly col: number };
}

export interface ReadContext {
  readonly issues: ConfigIssue[];
  /**
   * The source text of the plain YAML scalar at a key path ("0123" where the value read is 123),
   * or undefined (not a plain scalar, or values that came from JSON rather than a YAML file).
   */
  plainScalarText?: (path: string) => string | undefined;
  readonly warnings: string[];
  /** Keys set in the file that this version accepts but does not act on, with why (Field.notActedOn). */
  readonly notActedOn: NotActedOn[];
}

export interface NotActedOn {
  /** As read: "redis.addr", "routing.rules[3].hash_key". */
  readonly path: string;
  readonly reason: string;
}

export function newReadContext(): ReadContext {
  return { issues: [], warnings: [], notActedOn: [] };
}

export type Reader<T> = (value: unknown, path: string, ctx: ReadContext) => T | undefined;

/** What a key is besides its reader; set by the field kinds and the modifiers on Field. */
export interface FieldTraits {
  /** Whether a raw YAML value is this kind's zero value (0, "", "0s"); set by the kinds that have one. */
  readonly isZero?: (v: unknown) => boolean;
  /** The zero value means "use the default", as the reference's Go loader read it (zeroMeansDefault). */
  readonly zeroMeansDefault?: boolean;
  /** Accepted (validated) but nothing in this version acts on it: why, for the startup warning. */
  readonly notActedOn?: string;
}

export class Field<T> {
  /** `fallback` is undefined only for required keys. */
  constructor(
    readonly fallback: T | undefined,
    readonly read: Reader<T>,
    readonly requiredWhat?: string,
    readonly traits: FieldTraits = {},
  ) {}

  /**
   * The reference's Go loader cannot tell an explicit zero from an absent key (both are the
   * field's zero value) and replaces both by the default: a key marked so does the same here.
   */
  zeroMeansDefault(): Field<T> {
    if (this.traits.isZero === undefined) throw new Error("zeroMeansDefault on a field kind with no zero value");
    return new Field(this.fallback, this.read, this.requiredWhat, { ...this.traits, zeroMeansDefault: true });
  }

  /** Accepted so reference files load, but not acted on (yet): listed in one warning when set. */
  notActedOn(reason: string): Field<T> {
    return new Field(this.fallback, this.read, this.requiredWhat, { ...this.traits, notActedOn: reason });
  }
}

/** Every field of `section` (recursively) marked as accepted but not acted on, for `reason`. */
export function notActedOn<S extends Section>(reason: string, section: S): S {
  const out: Record<string, Field<unknown> | Section> = {};
  for (const [k, v] of Object.entries(section)) out[k] = v instanceof Field ? v.notActedOn(reason) : notActedOn(reason, v);
  return out as S;
}

export type Section = { readonly [key: string]: Field<unknown> | Section };

/** The typed result of reading a section. */
export type Parsed<S> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : Parsed<S[K]> };

export function issue(ctx: ReadContext, path: string, value: unknown, expected: string): undefined {
  ctx.issues.push({ path, value, expected });
  return undefined;
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function joinPath(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

/**
 * Reads a mapping against a section. Absent and null keys take their default (Go's yaml leaves
 * such fields at their defaults too); unknown keys are reported with the allowed ones. Invalid
 * values are reported and replaced by the default, so the shape stays complete.
 */
export function readSection<S extends Section>(section: S, raw: unknown, path: string, ctx: ReadContext): Parsed<S> {
  const keys = Object.keys(section);
  let obj: Record<string, unknown> = {};
  if (isMapping(raw)) obj = raw;
  else if (raw !== undefined && raw !== null) issue(ctx, path || "(root)", raw, `a mapping with keys ${keys.join(", ")}`);
  for (const key of Object.keys(obj)) {
    if (!Object.hasOwn(section, key)) {
      const near = closestKey(key, keys);
      ctx.issues.push({
        path: joinPath(path, key),
        value: obj[key],
        expected: `one of the keys ${path === "" ? "at the top level" : `under ${path}`}: ${keys.join(", ")}`,
        got: "an unknown key",
        atKey: true,
        ...(near === undefined ? {} : { hint: `did you mean "${near}"?` }),
      });
    }
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const spec = section[key]!;
    const p = joinPath(path, key);
    const v = obj[key];
    if (!(spec instanceof Field)) out[key] = readSection(spec, v, p, ctx);
    else if (v === undefined || v === null) {
      if (spec.fallback === undefined) issue(ctx, p, v, `${spec.requiredWhat ?? "a value"} (required)`);
      out[key] = spec.fallback;
    } else {
      const { zeroMeansDefault, isZero, notActedOn: unused } = spec.traits;
      if (unused !== undefined) ctx.notActedOn.push({ path: p, reason: unused });
      out[key] = zeroMeansDefault === true && isZero!(v) ? spec.fallback : (spec.read(v, p, ctx) ?? spec.fallback);
    }
  }
  return out as Parsed<S>;
}

// ---- field kinds ----

function range(min: number, max: number): string {
  if (max === Number.MAX_SAFE_INTEGER) return min === 0 ? "an integer >= 0" : `an integer >= ${min}`;
  return `an integer ${min}..${max}`;
}

export function int(fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER, what = range(min, max)): Field<number> {
  return new Field(
    fallback,
    (v, p, ctx) => (Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : issue(ctx, p, v, what)),
    what,
    { isZero: (v) => v === 0 },
  );
}

/**
 * A string. Like Go's yaml.v3 decoding into a string field, an unquoted number or boolean in the
 * file is taken as written (`password: 0123` is "0123", not "123"); from JSON it is refused.
 */
export function str(fallback: string): Field<string> {
  const read: Reader<string> = (v, p, ctx) => {
    if (typeof v === "string") return v;
    const asWritten = typeof v === "number" || typeof v === "boolean" ? ctx.plainScalarText?.(p) : undefined;
    return asWritten ?? issue(ctx, p, v, typeof v === "object" ? "a string" : "a string (quote it)");
  };
  return new Field(fallback, read, undefined, { isZero: (v) => v === "" });
}

// Go's yaml.v3 still reads the YAML 1.1 spellings into a bool field, so reference files may use them.
const YAML11_BOOLS = new Map<string, boolean>([
  ["y", true], ["yes", true], ["true", true], ["on", true],
  ["n", false], ["no", false], ["false", false], ["off", false],
]);
// "yes", "Yes" and "YES" are YAML 1.1 booleans; "yEs" is not.
const YAML11_CASE = /^(?:[a-z]+|[A-Z][a-z]*|[A-Z]+)$/;

export function bool(fallback: boolean, check?: (b: boolean) => string | undefined): Field<boolean> {
  return new Field(fallback, (v, p, ctx) => {
    const b = typeof v === "boolean" ? v : typeof v === "string" && YAML11_CASE.test(v) ? YAML11_BOOLS.get(v.toLowerCase()) : undefined;
    if (b === undefined) return issue(ctx, p, v, "true or false");
    const problem = check?.(b);
    return problem === undefined ? b : issue(ctx, p, v, problem);
  });
}

export function oneOf<const T extends string>(fallback: T, values: readonly T[]): Field<T> {
  const what = `one of ${values.join(", ")}`;
  return new Field(fallback, (v, p, ctx) => (values.includes(v as T) ? (v as T) : issue(ctx, p, v, what)), what);
}

/**
 * A Go-style duration string, in milliseconds, at most MAX_TIMER_MS. `min` is 0 (zero allowed)
 * or "positive".
 */
export function duration(fallback: string, min: 0 | "positive"): Field<number> {
  const read: Reader<number> = (v, p, ctx) => {
    // A bare number has no unit; only 0 is unambiguous (Go's yaml would take 5 as 5ns).
    const ms = v === 0 ? 0 : typeof v === "string" ? parseDuration(v) : undefined;
    if (ms === undefined) return issue(ctx, p, v, `a Go-style duration like "5s"`);
    if (min === "positive" ? ms <= 0 : ms < 0) return issue(ctx, p, v, min === "positive" ? "a duration greater than 0s" : "a duration of at least 0s");
    // Every duration ends up in a timer, which cannot hold more (longer ones would fire at once).
    if (ms > MAX_TIMER_MS) return issue(ctx, p, v, `a duration of at most ${formatDuration(MAX_TIMER_MS)} (what a timer can hold)`);
    return ms;
  };
  return new Field(mustRead(read, fallback), read, undefined, {
    isZero: (v) => v === 0 || (typeof v === "string" && parseDuration(v) === 0),
  });
}

/** Bytes: an integer or a size string ("64KiB", "1MB"). */
export function size(fallback: number | string, min: number, max = Number.MAX_SAFE_INTEGER): Field<number> {
  const read: Reader<number> = (v, p, ctx) => {
    const n = typeof v === "number" || typeof v === "string" ? parseByteSize(v) : undefined;
    if (n === undefined) return issue(ctx, p, v, `a byte size: an integer or a string like "64KiB", "4MiB", "1MB"`);
    if (n < min || n > max) {
      const hi = max === Number.MAX_SAFE_INTEGER ? "" : ` and at most ${bytesText(max)}`;
      return issue(ctx, p, v, `a size of at least ${bytesText(min)}${hi}`);
    }
    return n;
  };
  return new Field(mustRead(read, fallback), read, undefined, {
    isZero: (v) => (typeof v === "number" || typeof v === "string") && parseByteSize(v) === 0,
  });
}

/** "host:port" with the port in [minPort, 65535]; `dial` also requires an explicit host. */
export function hostPort(fallback: string, minPort: 0 | 1, dial: boolean): Field<string> {
  const what = dial ? `"host:port" with a host and a port 1..65535` : `"host:port", ":port" or "[ipv6]:port" with a port ${minPort}..65535`;
  return new Field(fallback, (v, p, ctx) => {
    const hp = typeof v === "string" ? parseHostPort(v) : undefined;
    if (hp === undefined || hp.port < minPort || (dial && (v as string).startsWith(":"))) return issue(ctx, p, v, what);
    return v as string;
  }, undefined, { isZero: (v) => v === "" });
}

/** Custom readers (defaults given already converted). */
export function custom<T>(fallback: T | undefined, read: Reader<T>, requiredWhat?: string, traits: FieldTraits = {}): Field<T> {
  return new Field(fallback, read, requiredWhat, traits);
}

/** "65536 (64KiB)", or just "65544" when no binary unit divides it. */
export function bytesText(n: number): string {
  const f = formatByteSize(n);
  return f.endsWith("iB") ? `${n} (${f})` : String(n);
}

function mustRead<T>(read: Reader<T>, raw: unknown): T {
  const ctx = newReadContext();
  const v = read(raw, "(default)", ctx);
  if (v === undefined) throw new Error(`invalid built-in default ${JSON.stringify(raw)}`);
  return v;
}
