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

/**
 * Logs an event at most once per interval per key, with how many were suppressed since: a peer
 * spraying bad frames gets counted in full by metrics, not by a flood of log lines.
 */
export class ThrottledLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
    /** Bound on distinct keys remembered; the oldest is forgotten past it. */
    private readonly maxKeys = 1024,
  ) {}

  warn(key: string, msg: string, fields: LogFields): void {
    if (!this.logger.enabled("warn")) return;
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.delete(key);
    // Evicting the oldest costs O(size) in JavaScriptCore, not O(1) (src/net/admission.ts avoids
    // it for that reason): measured 1.6 us per eviction at 1,024 keys, 10 us at 10,000. Paid only
    // when a key not seen within the interval is logged, so the default bound keeps it cheap.
    if (this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, { at: now, suppressed: 0 });
    this.logger.warn(msg, suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}
