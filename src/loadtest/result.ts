// What one load-test process measured, in a form that crosses process boundaries (JSON) and
// merges: counters add up, histograms merge, the elapsed time is the longest.
import { Histogram, type HistogramData } from "./histogram.ts";

export const ERROR_KINDS = [
  "connect_failed",
  "connect_timeout",
  "closed_by_peer",
  "reply_mismatch",
  "reply_timeout",
  "send_failed",
  // A worker process that ended without a result: its whole share of connections.
  "worker_failed",
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export type ErrorCounts = Record<ErrorKind, number>;

export function zeroErrors(): ErrorCounts {
  const e = {} as ErrorCounts;
  for (const k of ERROR_KINDS) e[k] = 0;
  return e;
}

/**
 * Open loop: how well the generator held its schedule. Each pacing call that sent anything
 * records how late the oldest slot it sent was (now minus that slot's due time): a late slot
 * goes out together with the ones due after it, a burst the schedule never asked for.
 */
export interface PacingData {
  /** Lateness of the oldest slot per pacing call that sent, in µs. */
  late: HistogramData;
  /** Frames sent by pacing run from a reply's handling. */
  fromReplies: number;
  /** Frames sent by pacing run from the interval timer. */
  fromTimer: number;
}

export interface RunResult {
  /** From the first dial to the end of sending, or to the last reply if that came later. */
  elapsedMs: number;
  connections: {
    /** Dials started. */
    attempted: number;
    /** Dials that opened. */
    ok: number;
    /** connect_failed + connect_timeout (+ worker_failed shares). */
    failed: number;
    closedByPeer: number;
  };
  messages: {
    /** Frames handed to the socket (send_failed ones are not). */
    sent: number;
    /** Replies matched to a sent frame, mismatched ones included. */
    received: number;
    /** Sent frames whose reply did not come within the reply timeout. */
    timedOut: number;
    /** Sent frames still unanswered when their connection was closed by the peer. */
    lost: number;
    /** Replies that came after their frame had been counted as timed out (not errors). */
    late: number;
    /** Open loop: sends not made because the generator fell behind or had a reply timeout's worth in flight. */
    skipped: number;
  };
  bytes: { sent: number; received: number };
  errors: ErrorCounts;
  latency: HistogramData;
  /** Open loop only; null in a closed loop (and for a worker that sent no result). */
  pacing: PacingData | null;
  warnings: string[];
}

export function emptyResult(): RunResult {
  return {
    elapsedMs: 0,
    connections: { attempted: 0, ok: 0, failed: 0, closedByPeer: 0 },
    messages: { sent: 0, received: 0, timedOut: 0, lost: 0, late: 0, skipped: 0 },
    bytes: { sent: 0, received: 0 },
    errors: zeroErrors(),
    latency: new Histogram().toJSON(),
    pacing: null,
    warnings: [],
  };
}

/** Pacing of several processes: lateness histograms merge, counts add; null when none paced. */
export function mergePacing(parts: readonly (PacingData | null)[]): PacingData | null {
  let late: Histogram | null = null;
  let fromReplies = 0;
  let fromTimer = 0;
  for (const p of parts) {
    if (p === null) continue;
    late ??= new Histogram();
    late.merge(p.late);
    fromReplies += p.fromReplies;
    fromTimer += p.fromTimer;
  }
  return late === null ? null : { late: late.toJSON(), fromReplies, fromTimer };
}

function addInto<T extends Record<string, number>>(into: T, from: T): void {
  for (const k of Object.keys(into) as (keyof T)[]) (into[k] as number) += from[k] as number;
}

export function mergeResults(parts: readonly RunResult[]): RunResult {
  const out = emptyResult();
  const h = new Histogram();
  const warnings = new Set<string>();
  for (const p of parts) {
    out.elapsedMs = Math.max(out.elapsedMs, p.elapsedMs);
    addInto(out.connections, p.connections);
    addInto(out.messages, p.messages);
    addInto(out.bytes, p.bytes);
    addInto(out.errors, p.errors);
    h.merge(p.latency);
    for (const w of p.warnings) warnings.add(w);
  }
  out.latency = h.toJSON();
  out.pacing = mergePacing(parts.map((p) => p.pacing));
  out.warnings = [...warnings];
  return out;
}

export function totalErrors(r: RunResult): number {
  let n = 0;
  for (const k of ERROR_KINDS) n += r.errors[k];
  return n;
}

/**
 * errors / messages sent. With nothing sent, any error is a rate of 1 (100%) rather than a
 * division by zero: a run that could not send at all has failed.
 */
export function errorRate(r: RunResult): number {
  const errors = totalErrors(r);
  if (r.messages.sent === 0) return errors > 0 ? 1 : 0;
  return errors / r.messages.sent;
}

/** Errors that end a connection: it was never open, or the peer closed it. */
export function connectionErrors(r: RunResult): number {
  const e = r.errors;
  return e.connect_failed + e.connect_timeout + e.closed_by_peer + e.worker_failed;
}

/**
 * Connection errors / connections dialled. Held to the same bound as errorRate: per message
 * sent, a few refused or dropped connections vanish among thousands of frames, and a run in
 * which the gateway turned most players away would pass.
 */
export function connectionErrorRate(r: RunResult): number {
  const n = r.connections.attempted;
  const errors = connectionErrors(r);
  if (n === 0) return errors > 0 ? 1 : 0;
  return Math.min(1, errors / n);
}

/** The exit status's test: both rates within the bound. */
export function passes(r: RunResult, maxErrorRate: number): boolean {
  return errorRate(r) <= maxErrorRate && connectionErrorRate(r) <= maxErrorRate;
}

/** Progress of one process, each second (cumulative counters). */
export interface ProgressSnapshot {
  elapsedMs: number;
  open: number;
  attempted: number;
  failed: number;
  sent: number;
  received: number;
  errors: number;
  latency: HistogramData;
}
