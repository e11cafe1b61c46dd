// The data path's counts: plain numbers in typed arrays, Maps and tallies, bumped per message
// with no label hashing and no allocation. This module imports nothing, so the data path
// (net, session, backend) counts without loading prom-client; src/admin/metrics.ts folds these
// into Prometheus series only when /metrics is scraped.

/** Per-endpoint counters the backend layer bumps directly. */
export interface BackendTally {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  /** Times a client was paused because a connection to this endpoint was congested. */
  pauses: number;
  /** Frames refused at a queue bound: one connection's write_queue_limit, or write_queue_total_limit. */
  connectionLimitRejections: number;
  totalLimitRejections: number;
  /** Bytes queued toward this endpoint and never written: their connection closed first. */
  queueDroppedBytes: number;
  /** backend_errors_total by error_type (connection failures and dropped bad frames). */
  readonly errors: Map<string, number>;
}

/** Adds one to a count kept in a Map (no allocation once the key exists). */
export function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Series indexes of request_latency_seconds. */
export const LatencyDirection = { Upstream: 0, Downstream: 1 } as const;

export class GatewayCounters {
  /** Frames per client serverType, by direction (index = serverType). */
  readonly messagesIn = new Float64Array(256);
  readonly messagesOut = new Float64Array(256);
  /** Bounded by the endpoints the routes have named since start (one tally each, kept for life). */
  protected readonly backendTallies = new Map<string, BackendTally>();
  /** Events that can repeat per message under abuse (keys: a closed set of reasons). */
  readonly drops = new Map<string, number>();
  readonly clientViolations = new Map<string, number>();
  readonly backendViolations = new Map<string, number>();
  /** rate_limit_rejected_total: new connections over the per-IP rate, frames over the per-session rate. */
  rateLimitRejections = 0;

  /** The tally for one endpoint; the same object for the life of these counters. */
  backendTally(endpoint: string): BackendTally {
    let t = this.backendTallies.get(endpoint);
    if (t === undefined) {
      t = {
        bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, pauses: 0,
        connectionLimitRejections: 0, totalLimitRejections: 0, queueDroppedBytes: 0, errors: new Map(),
      };
      this.backendTallies.set(endpoint, t);
    }
    return t;
  }
}
