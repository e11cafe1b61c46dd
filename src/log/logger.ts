import type { LogLevel } from "../config/types.ts";

// Structured JSON lines on stderr-free stdout: {"time","level","msg",...fields}.
// Callers check enabled(level) before building fields on anything hot, so nothing is formatted
// when the level is off.

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface LogSink {
  write(line: string): void;
}

const stdoutSink: LogSink = { write: (line) => process.stdout.write(line) };

function jsonValue(_key: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

export class Logger {
  private threshold: number;

  constructor(
    level: LogLevel,
    private readonly sink: LogSink = stdoutSink,
    private readonly base: LogFields = {},
  ) {
    this.threshold = RANK[level];
  }

  setLevel(level: LogLevel): void {
    this.threshold = RANK[level];
  }

  enabled(level: Exclude<LogLevel, "silent">): boolean {
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

  private emit(level: string, msg: string, fields?: LogFields): void {
    const record = { time: new Date().toISOString(), level, msg, ...this.base, ...fields };
    this.sink.write(JSON.stringify(record, jsonValue) + "\n");
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
