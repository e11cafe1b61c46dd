import type { TraceParent } from "../protocol/trace-context.ts";
import type { ClientViolation } from "../protocol/violations.ts";

// The contract between a client transport and the layer above it: the plug-in point for every
// transport. A transport (raw TCP and sniffed WebSocket in tcp-listener.ts, Bun's WebSocket in
// ws-listener.ts; TLS later) implements ClientPort for each connection and reports to a
// ClientEvents; the session layer implements ClientEvents. Both are generic in S, what the layer above binds to a port (a Session): the
// transport stores it and never looks inside, so it names nothing above src/net.
// test/contracts/client-port.contract.ts is the suite every transport runs.
//
// A port owns its outgoing queue: send() never blocks and never drops silently. Frames are queued
// by send() and written by flush(), so the frames a client is owed from one backend read go out
// in one write.

export type ClientProtocol = "tcp" | "ws";

/** Why a client connection ended: the label on logs, access records and Disconnect messages. */
export type CloseReason =
  | "client_closed"
  | "client_error"
  | "first_message_timeout"
  | "idle_timeout"
  /** Nothing received within server.client_read_timeout (the reference's read deadline; off by default). */
  | "read_timeout"
  /** Queued output not taken within the write deadline (server.client_write_timeout; per_session mode: connection_pool.write_timeout). */
  | "write_timeout"
  | "slow_reader"
  /** A frame was started and not completed within server.partial_frame_timeout. */
  | "partial_frame_timeout"
  /** Held input (partial frames, input read while paused) reached server.pending_input_limit. */
  | "pending_input_limit"
  | "malformed_frame"
  | "no_route"
  | "kick"
  | "backend_unavailable"
  | "backend_lost"
  | "backend_congested"
  | "rate_limited"
  /**
   * Refused at admission (per-IP limits, the PROXY protocol, an upgrade's Origin: counted as a
   * refusal, not as a client close), or plain HTTP on the client port (answered 426).
   */
  | "rejected"
  | "shutdown";

export interface ClientPort<S = unknown> {
  readonly protocol: ClientProtocol;
  /** Peer address as text, e.g. "127.0.0.1" (the PROXY protocol may replace it later). */
  readonly remoteAddress: string;
  /**
   * The W3C trace context the client's WebSocket upgrade carried (traceparent): the session's
   * trace continues it. null for raw TCP, or when there was none or it was invalid.
   */
  readonly traceParent: TraceParent | null;
  /** What the layer above bound to this connection (the session, from the first frame); null until then. */
  session: S | null;
  /**
   * Queues one whole client frame, b[off, off+len) (copied: b may be reused after the call).
   * Returns false when the port's queue bound was passed: the port has then closed itself with
   * reason slow_reader.
   */
  send(b: Uint8Array, off: number, len: number): boolean;
  /**
   * Like send(), but without copying when it can: the caller guarantees b[off, off+len) stays
   * unchanged until the next flush().
   */
  lend(b: Uint8Array, off: number, len: number): boolean;
  /**
   * Writes what send() and lend() queued (what the socket does not take waits for its drain).
   * A lent frame must be flushed before control returns to the event loop (checked in development).
   */
  flush(): void;
  /** Delivers what is queued, then closes. Idempotent: the first reason wins. */
  close(reason: CloseReason): void;
  /** Stop / restart reading from the client (backend backpressure). */
  pauseReading(): void;
  resumeReading(): void;
  readonly closing: boolean;
}

/**
 * What a client listener tells the layer above, and all it needs from it: SessionService
 * implements it (as ClientEvents<Session>), so a listener (TCP, WebSocket) depends on
 * this, not on the service.
 */
export interface ClientEvents<S = unknown> {
  /** A connection was accepted and may carry a session (admission may still refuse it). */
  onClientOpen(port: ClientPort<S>): void;
  /** One whole client frame at b[off, off+len), valid during the call. False: stop reading. */
  onClientFrame(port: ClientPort<S>, b: Uint8Array, off: number, len: number): boolean;
  /** The client broke the wire contract; the port is to be closed with the matching reason. */
  onClientViolation(port: ClientPort<S>, reason: ClientViolation): void;
  /**
   * A connection refused before it could carry a session, by client address and refusal label.
   * `port`: the refused connection's port when it had one (onClientOpen came first: on the TCP
   * port, where connections are opened at accept); its close then follows with reason "rejected"
   * and is not counted again as a client close, so a refusal counts alike on every listener.
   */
  onConnectionRefused(client: string, protocol: ClientProtocol, refusal: string, port?: ClientPort<S>): void;
  /**
   * A listener hit an error it did not expect while answering a request (the request got a plain
   * 500, with no details): logged without a stack, throttled, as a client can cause it at will.
   */
  onListenerError(protocol: ClientProtocol, error: unknown): void;
  /**
   * A trusted proxy's X-Forwarded-For was not a list of addresses: the proxy's own address
   * (`peer`) stands for the client. `value` is the header as received.
   */
  onForwardedForMalformed(peer: string, value: string): void;
  /** The port's connection is gone (once per onClientOpen), with why. */
  onClientClosed(port: ClientPort<S>, reason: CloseReason): void;
}
