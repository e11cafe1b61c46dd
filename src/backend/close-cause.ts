import type { BackendFramingViolation } from "../protocol/violations.ts";

// Why a backend connection closed, as a discriminated union: the pool decides on `by` (count a
// failure, a timeout, or nothing) and logs and counts `label`, instead of comparing strings.

export type ConnectionCloseCause =
  /** The backend or the network closed it (or the dial failed, see BackendConnection.dialFailure). */
  | { readonly by: "peer"; readonly label: "connection_lost" }
  /**
   * No answer in time: the dial (connection_pool.dial_timeout), a Ping (backend.ping_timeout), or
   * queued bytes the backend stopped accepting (connection_pool.write_timeout, per_session mode).
   */
  | { readonly by: "timeout"; readonly label: "dial_timeout" | "ping_timeout" | "write_timeout" }
  /**
   * Closed on purpose: a dedicated connection whose session ended, a shared one that carried no
   * session for connection_pool.idle_timeout, or the pool shutting down.
   */
  | { readonly by: "gateway"; readonly label: "session_ended" | "idle" | "closing" }
  /** The backend broke framing; counted as a violation when it was found, so not again as an error. */
  | { readonly by: "violation"; readonly label: BackendFramingViolation };

/** The causes without a payload, allocated once (the violation ones are made as they happen). */
export const CloseCause = {
  PeerClosed: { by: "peer", label: "connection_lost" },
  DialTimeout: { by: "timeout", label: "dial_timeout" },
  PingTimeout: { by: "timeout", label: "ping_timeout" },
  WriteTimeout: { by: "timeout", label: "write_timeout" },
  SessionEnded: { by: "gateway", label: "session_ended" },
  Idle: { by: "gateway", label: "idle" },
  PoolClosing: { by: "gateway", label: "closing" },
} as const satisfies Record<string, ConnectionCloseCause>;

export function framingViolationCause(violation: BackendFramingViolation): ConnectionCloseCause {
  return { by: "violation", label: violation };
}
