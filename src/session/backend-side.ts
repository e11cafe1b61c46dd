import type { Session } from "./session.ts";
import type { SessionList } from "./session-list.ts";

// What the session layer needs of the backend layer, stated here so that the dependency runs one
// way: src/backend implements these (and BackendLink, in session.ts) and imports the session
// layer; the session layer names no backend module. Types only: calls go to the same objects as
// before, with no wrapper between.

/** The backend endpoints, as the session service binds new sessions to them. */
export interface BackendEndpoints {
  /** Whether a new session may go to this endpoint now (its breaker lets it through). */
  admits(endpoint: string): boolean;
  /** The routes now name exactly these endpoints. */
  retain(endpoints: readonly string[]): void;
  /** The endpoint's pool, created on first use. */
  pool(endpoint: string): SessionBinder;
}

/** How an endpoint's backends are reached: the wire protocol over TCP, or the reference's gRPC stream. */
export type BackendTransport = "tcp" | "grpc";

/** One endpoint's pool, binding sessions to its connections. */
export interface SessionBinder {
  readonly endpoint: string;
  readonly transport: BackendTransport;
  /** Binds the session to a connection (sets session.link); false when none is available. */
  attach(session: Session): boolean;
}

/** The backend connection a frame arrived on, as the relay delivering it sees it. */
export interface BackendFrameSource {
  /** "host:port": a frame may only address sessions bound to this endpoint. */
  readonly endpoint: string;
  /** Every connection of the endpoint, with the sessions each carries (a Broadcast reaches all). */
  readonly endpointLinks: Iterable<{ readonly sessions: SessionList }>;
  /** Whether b is the chunk being handled, so a slice of it stays intact until the chunk ends. */
  inCurrentChunk(b: Uint8Array): boolean;
  /** Counts a backend_errors_total event for this endpoint. */
  countError(errorType: string): void;
  /** -1 to stay quiet about this violation now, else how many were suppressed since the last log line. */
  violationLogGate(reason: string, now: number): number;
}
