import type { Session } from "./session.ts";

// The client side of a session, whatever carries it (raw TCP today; WebSocket and TLS later).
// A port owns its outgoing queue: send() never blocks and never drops silently.

export type ClientProtocol = "tcp" | "ws";

/** Why a client connection ended: the label on logs, access records and Disconnect messages. */
export type CloseReason =
  | "client_closed"
  | "client_error"
  | "first_message_timeout"
  | "idle_timeout"
  | "slow_reader"
  | "malformed_frame"
  | "no_route"
  | "kick"
  | "backend_unavailable"
  | "backend_lost"
  | "backend_congested"
  | "rate_limited"
  /** Refused at admission: per-IP limits or the PROXY protocol. */
  | "rejected"
  | "shutdown";

export interface ClientPort {
  readonly protocol: ClientProtocol;
  /** Peer address as text, e.g. "127.0.0.1" (the PROXY protocol may replace it later). */
  readonly remoteAddress: string;
  /** The session bound by the first frame; null until then. */
  session: Session | null;
  /**
   * Queues one whole client frame, b[off, off+len). Returns false when the port's queue bound
   * was passed: the port has then begun closing itself with reason slow_reader.
   */
  send(b: Uint8Array, off: number, len: number): boolean;
  /** Delivers what is queued, then closes. Idempotent: the first reason wins. */
  close(reason: CloseReason): void;
  /** Stop / restart reading from the client (backend backpressure). */
  pauseReading(): void;
  resumeReading(): void;
  readonly closing: boolean;
}
