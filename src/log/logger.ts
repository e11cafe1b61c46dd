import type { LogLevel } from "../config/types.ts";
import { serviceResource } from "./resource.ts";

// One JSON object per line on stdout, in the OpenTelemetry log data model as the reference
// gateway writes it: {"timestamp","severity_text","severity_number","body","caller",
// "service.name","service.namespace","service.version",...base,...fields} (+ "stacktrace" on
// ERROR). Callers check enabled(level) before building fields on anything hot, so nothing is
// formatted when the level is off; a line is built once, as one string.

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type Severity = Exclude<LogLevel, "silent">;

/** severity_text and severity_number (OpenTelemetry: DEBUG 5, INFO 9, WARN 13, ERROR 17), as JSON. */
const SEVERITY_JSON: Record<Severity, string> = {
  debug: '"severity_text":"DEBUG","severity_number":5',
  info: '"severity_text":"INFO","severity_number":9',
  warn: '"severity_text":"WARN","severity_number":13',
  error: '"severity_text":"ERROR","severity_number":17',
};

export type LogFields = Record<string, unknown>;

export interface LogSink {
  write(line: string): void;
}

const stdoutSink: LogSink = { write: (line) => process.stdout.write(line) };

function jsonValue(_key: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

/**
 * `fields` as the inside of a JSON object (",\"k\":v,..."), or "" when there are none: spliced
 * after the keys every line has. Bigints (session IDs) become decimal strings.
 */
export function jsonMembers(fields: LogFields | undefined): string {
  if (fields === undefined) return "";
  const json = JSON.stringify(fields, jsonValue);
  return json.length > 2 ? `,${json.slice(1, -1)}` : "";
}

/**
 * Unix time in nanoseconds as JSON integer digits, from a millisecond clock. Written as a number,
 * as the reference's encoder does (zap's epoch-nanos): a value near 1.8e18 is past 2^53, so it is
 * built as text, never as a float, and readers that keep 64-bit integers (Go, Vector, Loki's
 * line) get it exact. Resolution: the millisecond clock's.
 */
export function unixNanosJson(ms: number): string {
  const whole = Math.floor(ms);
  return whole <= 0 ? "0" : `${whole}000000`;
}

/** The start of every line: timestamp and severity; then "body", the resource and the fields. */
export function logLineHead(ms: number, severity: Severity): string {
  return `{"timestamp":${unixNanosJson(ms)},${SEVERITY_JSON[severity]}`;
}

// Where a line was logged from ("src/gateway.ts:234", like zap's short caller): the first stack
// frame outside this file. A stack capture costs 5-20 us here, several times the rest of a line,
// so the caller is remembered per message: messages are constant strings, each logged from one
// place (should two places share one, the first is named). ERROR lines capture their stack trace
// every time.
const FRAME = /\(?([^\s()]+?):(\d+):\d+\)?$/;
const THIS_FILE = ((): string => {
  const m = FRAME.exec(new Error().stack?.split("\n")[1]?.trim() ?? "");
  return m?.[1] ?? "";
})();

/** The project's root as the stack spells it: this file is src/log/logger.ts under it. */
const ROOT = THIS_FILE.endsWith("src/log/logger.ts") ? THIS_FILE.slice(0, -"src/log/logger.ts".length) : "";

function shortPath(file: string): string {
  if (ROOT !== "" && file.startsWith(ROOT)) return file.slice(ROOT.length);
  const i = file.lastIndexOf("/src/");
  return i >= 0 ? file.slice(i + 1) : file;
}

interface CallSite {
  /** The caller as a JSON string. */
  callerJson: string;
  stack: string;
}

/** Messages whose caller is remembered; past it, lines with new messages capture a stack each. */
const MAX_REMEMBERED_CALLERS = 1024;
const callerByMessage = new Map<string, string>();

function callSite(body: string, withStack: boolean): CallSite {
  const known = withStack ? undefined : callerByMessage.get(body);
  if (known !== undefined) return { callerJson: known, stack: "" };
  const lines = (new Error().stack ?? "").split("\n");
  let callerJson = '""';
  let first = -1;
  for (let i = 1; i < lines.length; i++) {
    const m = FRAME.exec(lines[i]!.trim());
    if (m === null || m[1] === THIS_FILE) continue;
    callerJson = JSON.stringify(`${shortPath(m[1]!)}:${m[2]}`);
    first = i;
    break;
  }
  if (callerByMessage.size < MAX_REMEMBERED_CALLERS) callerByMessage.set(body, callerJson);
  const stack = withStack && first > 0 ? lines.slice(first).map((l) => l.trim()).join("\n") : "";
  return { callerJson, stack };
}

export class Logger {
  private threshold: number;
  /** The resource and base fields as JSON members, built once. */
  private readonly constant: string;

  constructor(
    level: LogLevel,
    private readonly sink: LogSink = stdoutSink,
    base: LogFields = {},
  ) {
    this.threshold = RANK[level];
    this.constant = jsonMembers({ ...serviceResource(), ...base });
  }

  setLevel(level: LogLevel): void {
    this.threshold = RANK[level];
  }

  enabled(level: Severity): boolean {
    return RANK[level] >= this.threshold;
  }

  debug(msg: string, fields?: LogFields): void {
    if (RANK.debug >= this.threshold) this.emit("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    if (RANK.info >= this.threshold) this.emit("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    if (RANK.warn >= this.threshold) this.emit("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    if (RANK.error >= this.threshold) this.emit("error", msg, fields);
  }

  private emit(severity: Severity, body: string, fields?: LogFields): void {
    const site = callSite(body, severity === "error");
    const stack = site.stack === "" ? "" : `,"stacktrace":${JSON.stringify(site.stack)}`;
    this.sink.write(
      `${logLineHead(Date.now(), severity)},"body":${JSON.stringify(body)},"caller":${site.callerJson}${this.constant}${jsonMembers(fields)}${stack}}\n`,
    );
  }
}

/** How often one key may log by default: a peer spraying bad frames gets one line per key per 10 s. */
export const LOG_THROTTLE_INTERVAL_MS = 10_000;
/** Distinct keys a throttle remembers by default; past it the oldest is forgotten (and may log again). */
export const LOG_THROTTLE_MAX_KEYS = 1024;

/**
 * The one rate limit on log lines: at most one line per key per interval, with how many were
 * suppressed since, so metrics count every event and the log is not flooded. admit() allocates
 * only the first time a key is seen, so a per-frame caller with a fixed set of keys (a reason
 * union) pays no allocation.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs = LOG_THROTTLE_INTERVAL_MS,
    private readonly maxKeys = LOG_THROTTLE_MAX_KEYS,
  ) {}

  /** -1 to stay quiet; else log now, reporting this many suppressed since the key's last line. */
  admit(key: string, now: number): number {
    const seen = this.last.get(key);
    if (seen === undefined) {
      // Evicting the oldest costs O(size) in JavaScriptCore, not O(1) (src/net/admission.ts avoids
      // it for that reason): measured 1.6 us per eviction at 1,024 keys, 10 us at 10,000. Paid only
      // when a new key is logged, so the default bound keeps it cheap.
      if (this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
      this.last.set(key, { at: now, suppressed: 0 });
      return 0;
    }
    if (now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return -1;
    }
    const suppressed = seen.suppressed;
    seen.at = now;
    seen.suppressed = 0;
    return suppressed;
  }
}

/** Warnings through a LogThrottle: one line per key per interval, with the suppressed count. */
export class ThrottledLog {
  private readonly throttle: LogThrottle;

  constructor(
    private readonly logger: Logger,
    intervalMs = LOG_THROTTLE_INTERVAL_MS,
    maxKeys = LOG_THROTTLE_MAX_KEYS,
  ) {
    this.throttle = new LogThrottle(intervalMs, maxKeys);
  }

  warn(key: string, msg: string, fields: LogFields): void {
    if (!this.logger.enabled("warn")) return;
    const suppressed = this.throttle.admit(key, Date.now());
    if (suppressed < 0) return;
    this.logger.warn(msg, suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}
