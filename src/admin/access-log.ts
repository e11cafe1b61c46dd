import { jsonMembers, type LogFields, type LogSink, logLineHead } from "../log/logger.ts";
import { serviceResource } from "../log/resource.ts";
import { NO_SESSION_FIELDS, type AccessStatus } from "../session/close-status.ts";

// One record per client connection (rejected ones included), in the reference gateway's keys:
// an OpenTelemetry log record with body "access_log". Written in batches (at 100 records or every
// 5 s) so the data path never waits on logging. The queue is bounded: when it is full, records
// are dropped and counted. Refused connections have a budget of their own (see RejectedBudget),
// so a flood of refused connects neither fills the queue nor floods stdout.

export interface AccessRecord {
  /** When the connection ended, in ms since the epoch. */
  readonly endedAtMs: number;
  readonly clientAddress: string;
  readonly protocol: string;
  readonly status: AccessStatus;
  /** Our close reason (`client_closed`, `idle_timeout`, ..., `rejected`): finer than status. */
  readonly reason: string;
  /** "" when status is success (or closed by the gateway's own choice). */
  readonly errorMessage: string;
  readonly durationMs: number;
  /** W3C trace ID and the connection's span ID, hex; "" when the connection has none. */
  readonly traceId: string;
  readonly spanId: string;
  /** Decimal; "" when no session was bound (refused, or closed before its first frame). */
  readonly sessionId: string;
  /** 0 when no session was bound. */
  readonly serverType: number;
  readonly worldId: number;
  /** The backend endpoint "host:port"; "" when none was picked. */
  readonly serverAddress: string;
  /** Client frame bytes (headers included) received from and sent to the client. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly messagesReceived: number;
  readonly messagesSent: number;
  /** Why the connection was refused, on records with status "rejected". */
  readonly refusal?: string;
  /** On a summary of refused connections not recorded one by one: how many it stands for. */
  readonly rejectedConnections?: number;
}

export interface AccessLogOptions {
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  /** Records that may wait for a flush; past it they are dropped. */
  readonly maxQueued: number;
  /**
   * Refused connections recorded one by one per second; past it they are counted per refusal
   * and written as one summary record per refusal at the next flush.
   */
  readonly rejectedPerSecond: number;
}

export const DEFAULT_ACCESS_LOG: AccessLogOptions = { batchSize: 100, flushIntervalMs: 5000, maxQueued: 10_000, rejectedPerSecond: 100 };

/** Distinct refusal labels summarised at once; more (there are about ten) share one entry. */
const MAX_REFUSAL_KINDS = 32;

/**
 * What every access record says after its timestamp and severity (INFO): its body, and as its
 * caller this writer, one fixed string (a stack capture per record would buy nothing).
 */
const ACCESS_BODY = ',"body":"access_log","caller":"src/admin/access-log.ts"';

/**
 * How many refused connections get a record of their own: `perSecond` per one-second window,
 * then counted by refusal until flush() takes the counts.
 */
class RejectedBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private usedInWindow = 0;
  readonly suppressed = new Map<string, { count: number; client: string; protocol: string; lastAtMs: number }>();

  constructor(private readonly perSecond: number) {}

  /** True: record this one; false: it was counted for a summary. */
  admit(nowMs: number, refusal: string, client: string, protocol: string): boolean {
    if (nowMs - this.windowStart >= 1000 || nowMs < this.windowStart) {
      this.windowStart = nowMs;
      this.usedInWindow = 0;
    }
    if (this.usedInWindow < this.perSecond) {
      this.usedInWindow++;
      return true;
    }
    const key = this.suppressed.has(refusal) || this.suppressed.size < MAX_REFUSAL_KINDS ? refusal : "other";
    const entry = this.suppressed.get(key);
    if (entry === undefined) this.suppressed.set(key, { count: 1, client, protocol, lastAtMs: nowMs });
    else {
      entry.count++;
      entry.client = client;
      entry.protocol = protocol;
      entry.lastAtMs = nowMs;
    }
    return false;
  }
}

export class AccessLog {
  private queue: string[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private flushScheduled = false;
  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
  /** The service resource and the base fields the application log has too, as JSON members. */
  private readonly resource: string;
  private readonly rejectedBudget: RejectedBudget;
  dropped = 0;

  constructor(
    private readonly sink: LogSink,
    private readonly onDrop: () => void,
    private readonly options: AccessLogOptions = DEFAULT_ACCESS_LOG,
    base: LogFields = {},
  ) {
    this.resource = jsonMembers({ ...serviceResource(), ...base });
    this.rejectedBudget = new RejectedBudget(options.rejectedPerSecond);
    this.timer = setInterval(() => this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  /** A connection that carried (or could have carried) a session has ended. */
  record(r: AccessRecord): void {
    if (this.queue.length >= this.options.maxQueued) {
      this.dropped++;
      this.onDrop();
      return;
    }
    this.queue.push(this.line(r));
    // A full batch is written after the current event (a session ending must not wait on stdout).
    if (this.queue.length >= this.options.batchSize && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** A connection refused at accept: recorded within the per-second budget, else summarised. */
  rejected(r: AccessRecord & { readonly refusal: string }): void {
    if (this.rejectedBudget.admit(r.endedAtMs, r.refusal, r.clientAddress, r.protocol)) this.record(r);
  }

  flush(): void {
    this.summariseRejected();
    if (this.queue.length === 0) return;
    const lines = this.queue;
    this.queue = [];
    this.sink.write(lines.join("\n") + "\n");
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** One record per refusal for the connections refused past the budget since the last flush. */
  private summariseRejected(): void {
    const suppressed = this.rejectedBudget.suppressed;
    if (suppressed.size === 0) return;
    for (const [refusal, s] of suppressed) {
      // Appended even past maxQueued: at most MAX_REFUSAL_KINDS per flush, and they carry the count.
      this.queue.push(
        this.line({
          endedAtMs: s.lastAtMs,
          clientAddress: s.client,
          protocol: s.protocol,
          status: "rejected",
          reason: "rejected",
          errorMessage: `${s.count} connections refused (${refusal}) past ${this.options.rejectedPerSecond} rejected records per second; the client address is the last one's`,
          durationMs: 0,
          ...NO_SESSION_FIELDS,
          refusal,
          rejectedConnections: s.count,
        }),
      );
    }
    suppressed.clear();
  }

  private line(r: AccessRecord): string {
    const durationMs = Math.max(0, r.durationMs);
    return (
      logLineHead(r.endedAtMs, "info") +
      ACCESS_BODY +
      this.resource +
      `,"client.address":${JSON.stringify(r.clientAddress)}` +
      `,"server.address":${JSON.stringify(r.serverAddress)}` +
      `,"session.id":${JSON.stringify(r.sessionId)}` +
      `,"server.type":${r.serverType},"world.id":${r.worldId}` +
      `,"network.io.receive":${r.bytesReceived},"network.io.send":${r.bytesSent}` +
      // Whole nanoseconds from a millisecond duration: exact up to 104 days (2^53 ns).
      `,"duration_ns":${Math.round(durationMs * 1e6)},"duration_ms":${durationMs}` +
      `,"status":"${r.status}","error.message":${JSON.stringify(r.errorMessage)}` +
      `,"trace_id":"${r.traceId}","span_id":"${r.spanId}"` +
      `,"reason":"${r.reason}","network.protocol.name":"${r.protocol}"` +
      `,"messages_received":${r.messagesReceived},"messages_sent":${r.messagesSent}` +
      (r.refusal === undefined ? "" : `,"refusal":${JSON.stringify(r.refusal)}`) +
      (r.rejectedConnections === undefined ? "" : `,"rejected_connections":${r.rejectedConnections}`) +
      "}"
    );
  }
}
