import type { CircuitBreaker } from "./circuit-breaker.ts";
import type { SessionBinder } from "../session/backend-side.ts";

// What the registry, the health sweep and the status page need of one backend endpoint's pool,
// whatever carries its sessions: TCP connections (EndpointPool) or one gRPC stream
// (src/backend/grpc/grpc-endpoint-pool.ts).

export interface BackendPool extends SessionBinder {
  readonly breaker: CircuitBreaker;
  /** The endpoint answered since it last failed to (for /ready and the status page). */
  readonly reachable: boolean;
  /** Sessions bound to this endpoint. */
  readonly sessions: number;
  readonly openConnections: number;
  readonly queuedBytes: number;
  /** Clients paused for this endpoint's congestion (for stats and tests). */
  readonly pausedClients: number;
  /** True once close() was called and every connection has closed. */
  readonly finished: boolean;
  /** Whether a new session may be routed here now (spends a half-open probe when it says yes). */
  admits(): boolean;
  start(): void;
  /** The periodic sweep: health checks and idle connections. */
  healthCheck(now: number): void;
  /** Stops re-dialling; closes once what is queued has been written. */
  close(): void;
  /** The routes no longer name the endpoint: serve the sessions bound to it, never dial it again. */
  retire(): void;
}

/** Makes the pool of an endpoint whose routes name the gRPC transport (loaded on demand). */
export type GrpcPoolFactory = (endpoint: string) => BackendPool;
