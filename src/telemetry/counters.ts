// The data path's counts: plain numbers in typed arrays, Maps and tallies, bumped per message
// with no label hashing and no allocation. This module imports nothing, so the data path
// (net, session, backend) counts without loading prom-client; src/admin/metrics.ts folds these
// into Prometheus series only when /metrics is scraped.

/**
 * routing_errors_total{error_type}: the reference's four values, then ours. A session the
 * reference would count under one of its values is counted under that value.
 */
export type RoutingError =
  /** No rule for the first frame's serverType and world. */
  | "not_found"
  /** Every endpoint of the rule had an open breaker. */
  | "circuit_breaker_open"
  /** No backend connection could be had for the session (none open, or its dial failed). */
  | "connection_failed"
  /** A client frame longer than security.max_message_size. */
  | "message_too_large"
  /** Beyond the reference: live sessions already at connection_pool.max_connections. */
  | "session_limit";

/** The reference's routing_errors_total values, exported from start (0) so dashboards see them. */
export const REFERENCE_ROUTING_ERRORS: readonly RoutingError[] = ["not_found", "circuit_breaker_open", "connection_failed", "message_too_large"];

/**
 * backend_errors_total{error_type}: the reference's four values and ours (backend protocol
 * violation reasons, connection_lost). Finer detail of a connection's end (dial refused vs
 * timed out, Ping timeout) is in backend_connection_closes_total{cause}.
 */
export type BackendErrorType =
  /** A dial or a Ping not answered in time. */
  | "timeout"
  /** A dial that failed (refused, unresolvable, unreachable). */
  | "connection_failed"
  /** A session not routed to this endpoint because its breaker was open. */
  | "circuit_breaker_open"
  /** A Connect or Disconnect notice that could not be queued (the connection was at its hard bound). */
  | "notification_failed";

export const REFERENCE_BACKEND_ERRORS: readonly BackendErrorType[] = ["timeout", "connection_failed", "circuit_breaker_open", "notification_failed"];

/** Per-endpoint counters the backend layer bumps directly. */
export interface BackendTally {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  /** backend_requests_total{status="success"}: sessions that got an open connection to this endpoint. */
  sessionsBound: number;
  /** backend_requests_total{status="error"}: sessions routed here that never got one. */
  sessionBindFailures: number;
  /** Times a client was paused because a connection to this endpoint was congested. */
  pauses: number;
  /** Frames refused at a queue bound: one connection's write_queue_limit, or write_queue_total_limit. */
  connectionLimitRejections: number;
  totalLimitRejections: number;
  /** Bytes queued toward this endpoint and never written: their connection closed first. */
  queueDroppedBytes: number;
  /** backend_errors_total by error_type (BackendErrorType, connection_lost, violation reasons). */
  readonly errors: Map<string, number>;
  /** backend_connection_closes_total by cause: why each connection ended (close-cause labels, dial_failed). */
  readonly closes: Map<string, number>;
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
  /** rate_limit_rejected_total: connections refused by a per-IP limit, frames over the per-session rate. */
  rateLimitRejections = 0;
  /** routing_errors_total by error_type (the reference's values present from start). */
  readonly routingErrors = new Map<RoutingError, number>(REFERENCE_ROUTING_ERRORS.map((e) => [e, 0]));

  countRoutingError(error: RoutingError): void {
    this.routingErrors.set(error, (this.routingErrors.get(error) ?? 0) + 1);
  }

  /** A session got an open connection to the tally's endpoint (once per session). */
  sessionBound(t: BackendTally): void {
    t.sessionsBound++;
  }

  /**
   * A session routed to the tally's endpoint could not be bound there (the client is closed):
   * no connection could be had (connection_failed), or its breaker was open (circuit_breaker_open).
   */
  sessionBindFailed(t: BackendTally, error: "connection_failed" | "circuit_breaker_open"): void {
    t.sessionBindFailures++;
    this.countRoutingError(error);
  }

  /** The tally for one endpoint; the same object for the life of these counters. */
  backendTally(endpoint: string): BackendTally {
    let t = this.backendTallies.get(endpoint);
    if (t === undefined) {
      t = {
        bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, sessionsBound: 0, sessionBindFailures: 0, pauses: 0,
        connectionLimitRejections: 0, totalLimitRejections: 0, queueDroppedBytes: 0,
        errors: new Map(REFERENCE_BACKEND_ERRORS.map((e) => [e, 0])),
        closes: new Map(),
      };
      this.backendTallies.set(endpoint, t);
    }
    return t;
  }
}
