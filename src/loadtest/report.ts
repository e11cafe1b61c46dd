// Human and machine renderings of a load-test result, and the per-second progress line.
import { formatDuration } from "../config/duration.ts";
import { Histogram } from "./histogram.ts";
import { type LoadtestOptions, sourceAddress } from "./options.ts";
import {
  ERROR_KINDS,
  type ProgressSnapshot,
  type RunResult,
  connectionErrorRate,
  errorRate,
  passes,
  totalErrors,
} from "./result.ts";

/** What the run was asked to do, as the report states it. */
export interface RunDescription {
  readonly options: LoadtestOptions;
  readonly sourceAddresses: number;
}

const int = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

function fmtInt(n: number): string {
  return int.format(n);
}

function fmtMs(us: number): string {
  return Number.isNaN(us) ? "-" : (us / 1000).toFixed(3);
}

function fmt3(ms: number): string {
  return ms.toFixed(3);
}

function pct(rate: number): string {
  return `${(rate * 100).toFixed(4)}%`;
}

function mode(o: LoadtestOptions): string {
  return o.rate > 0 ? `open loop, ${o.rate} msgs/s per connection` : `closed loop, ${o.inFlight} in flight per connection`;
}

/** The line printed before the run starts. */
export function describeRun(d: RunDescription): string {
  const o = d.options;
  const parts = [
    o.ws
      ? `${o.connections} WebSocket connections to ${o.tls ? "wss" : "ws"}://${o.host}:${o.port}${o.wsPath}`
      : `${o.connections} ${o.tls ? "TLS " : ""}connections to ${o.host}:${o.port}`,
    `for ${formatDuration(o.durationMs)}`,
    mode(o),
    `${o.messageSize}-byte bodies`,
    `server type ${o.serverType} world ${o.worldId} inst ${o.instId}`,
  ];
  if (o.tls) parts.push(o.tlsInsecure ? "any server certificate accepted" : o.tlsCa !== "" ? `certificate checked against ${o.tlsCa}` : "certificate checked against the system's CAs");
  if (o.ramp > 0) parts.push(`ramp ${o.ramp} connections/s`);
  if (o.processes > 1) parts.push(`${o.processes} processes`);
  if (d.sourceAddresses > 1) parts.push(`${d.sourceAddresses} source addresses 127.0.0.1-${sourceAddress(d.sourceAddresses - 1)}`);
  return `game-gateway loadtest: ${parts.join(", ")}`;
}

export function progressLine(p: ProgressSnapshot, receivedBefore: number, msSince: number): string {
  const h = Histogram.fromJSON(p.latency);
  const perSec = msSince > 0 ? ((p.received - receivedBefore) * 1000) / msSince : 0;
  const secs = Math.round(p.elapsedMs / 1000);
  return (
    `[${String(secs).padStart(4)}s] connections ${fmtInt(p.open)} open / ${fmtInt(p.attempted)} dialled` +
    `  msgs/s ${fmtInt(perSec)}  p99 ${fmtMs(h.percentileUs(99))} ms  sent ${fmtInt(p.sent)}  received ${fmtInt(p.received)}` +
    `  errors ${fmtInt(p.errors)}`
  );
}

/** Open loop: how late the generator's pacing ran (ms), and what drove it. */
export interface PacingSummary {
  readonly lateMs: { p50: number; p99: number; max: number };
  readonly fromReplies: number;
  readonly fromTimer: number;
}

export interface Summary {
  readonly throughput: { messagesPerSecond: number; megabytesPerSecondSent: number; megabytesPerSecondReceived: number };
  readonly latencyMs: { count: number; min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  readonly errorsTotal: number;
  readonly errorRate: number;
  readonly connectionErrorRate: number;
  readonly passed: boolean;
  /** null in a closed loop. */
  readonly pacing: PacingSummary | null;
}

function summarizePacing(r: RunResult): PacingSummary | null {
  if (r.pacing === null) return null;
  const h = Histogram.fromJSON(r.pacing.late);
  const ms = (us: number): number => (Number.isNaN(us) ? 0 : us / 1000);
  return {
    lateMs: { p50: ms(h.percentileUs(50)), p99: ms(h.percentileUs(99)), max: ms(h.maxUs) },
    fromReplies: r.pacing.fromReplies,
    fromTimer: r.pacing.fromTimer,
  };
}

export function summarize(r: RunResult, maxErrorRate: number): Summary {
  const h = Histogram.fromJSON(r.latency);
  const secs = r.elapsedMs / 1000;
  const ms = (us: number): number => (Number.isNaN(us) ? 0 : us / 1000);
  const rate = errorRate(r);
  return {
    throughput: {
      messagesPerSecond: secs > 0 ? r.messages.received / secs : 0,
      megabytesPerSecondSent: secs > 0 ? r.bytes.sent / 1e6 / secs : 0,
      megabytesPerSecondReceived: secs > 0 ? r.bytes.received / 1e6 / secs : 0,
    },
    latencyMs: {
      count: h.count,
      min: ms(h.minUs),
      mean: ms(h.meanUs),
      p50: ms(h.percentileUs(50)),
      p90: ms(h.percentileUs(90)),
      p99: ms(h.percentileUs(99)),
      p999: ms(h.percentileUs(99.9)),
      max: ms(h.maxUs),
    },
    errorsTotal: totalErrors(r),
    errorRate: rate,
    connectionErrorRate: connectionErrorRate(r),
    passed: passes(r, maxErrorRate),
    pacing: summarizePacing(r),
  };
}

/** The --json document. */
export function resultJson(d: RunDescription, r: RunResult): string {
  const o = d.options;
  const s = summarize(r, o.maxErrorRate);
  const doc = {
    target: `${o.host}:${o.port}`,
    mode: o.rate > 0 ? "open_loop" : "closed_loop",
    options: {
      connections: o.connections,
      durationSeconds: o.durationMs / 1000,
      rate: o.rate,
      inFlight: o.inFlight,
      messageSize: o.messageSize,
      serverType: o.serverType,
      worldId: o.worldId,
      instId: o.instId,
      ramp: o.ramp,
      processes: o.processes,
      sourceAddresses: d.sourceAddresses,
      dialTimeoutSeconds: o.dialTimeoutMs / 1000,
      replyTimeoutSeconds: o.replyTimeoutMs / 1000,
      maxErrorRate: o.maxErrorRate,
    },
    elapsedSeconds: r.elapsedMs / 1000,
    connections: r.connections,
    messages: r.messages,
    bytes: r.bytes,
    throughput: s.throughput,
    latencyMs: s.latencyMs,
    pacing: s.pacing,
    errors: { ...r.errors, total: s.errorsTotal },
    errorRate: s.errorRate,
    connectionErrorRate: s.connectionErrorRate,
    passed: s.passed,
    warnings: r.warnings,
  };
  return JSON.stringify(doc, null, 2);
}

/** The final table. */
export function resultTable(d: RunDescription, r: RunResult): string {
  const o = d.options;
  const s = summarize(r, o.maxErrorRate);
  const h = Histogram.fromJSON(r.latency);
  const rows: (readonly [string, string] | string)[] = [
    "connections",
    ["ok", fmtInt(r.connections.ok)],
    ["failed", fmtInt(r.connections.failed)],
    ["closed by peer", fmtInt(r.connections.closedByPeer)],
    "messages",
    ["sent", fmtInt(r.messages.sent)],
    ["received", fmtInt(r.messages.received)],
    ["timed out", fmtInt(r.messages.timedOut)],
    ["lost (peer closed)", fmtInt(r.messages.lost)],
  ];
  if (r.messages.late > 0) rows.push(["late replies", fmtInt(r.messages.late)]);
  if (r.messages.skipped > 0) rows.push(["skipped sends", fmtInt(r.messages.skipped)]);
  rows.push(
    "throughput",
    ["elapsed", `${(r.elapsedMs / 1000).toFixed(2)} s`],
    ["msgs/s (round trips)", fmtInt(s.throughput.messagesPerSecond)],
    ["MB/s sent", s.throughput.megabytesPerSecondSent.toFixed(3)],
    ["MB/s received", s.throughput.megabytesPerSecondReceived.toFixed(3)],
    "latency (ms)",
    ["p50", fmtMs(h.percentileUs(50))],
    ["p90", fmtMs(h.percentileUs(90))],
    ["p99", fmtMs(h.percentileUs(99))],
    ["p99.9", fmtMs(h.percentileUs(99.9))],
    ["max", fmtMs(h.maxUs)],
    ["mean", fmtMs(h.meanUs)],
    "errors",
  );
  for (const k of ERROR_KINDS) if (k !== "worker_failed" || r.errors[k] > 0) rows.push([k, fmtInt(r.errors[k])]);
  rows.push(
    ["total", fmtInt(s.errorsTotal)],
    ["error rate (per msg sent)", pct(s.errorRate)],
    ["connection error rate", pct(s.connectionErrorRate)],
    ["max error rate", pct(o.maxErrorRate)],
  );

  const labelWidth = 26;
  const valueWidth = Math.max(...rows.map((row) => (typeof row === "string" ? 0 : row[1].length)));
  const lines: string[] = [];
  for (const row of rows) {
    if (typeof row === "string") lines.push(row);
    else lines.push(`  ${row[0].padEnd(labelWidth)}${row[1].padStart(valueWidth)}`);
  }
  const p = s.pacing;
  if (p !== null) {
    lines.push(
      `pacing: oldest due send ${fmt3(p.lateMs.p50)} ms late at p50, ${fmt3(p.lateMs.p99)} ms at p99, ${fmt3(p.lateMs.max)} ms at most; ` +
        `sends paced from replies ${fmtInt(p.fromReplies)}, from the timer ${fmtInt(p.fromTimer)}`,
    );
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  const rates = `error rate ${pct(s.errorRate)}, connection error rate ${pct(s.connectionErrorRate)}`;
  lines.push(
    s.passed
      ? `result: PASS (${rates}; both <= ${pct(o.maxErrorRate)})`
      : `result: FAIL (${rates}; --max-error-rate ${pct(o.maxErrorRate)})`,
  );
  return lines.join("\n");
}
