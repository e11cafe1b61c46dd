import type { TCPSocketListener } from "bun";
import type { GatewayCounters } from "../telemetry/counters.ts";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import type { ClientEvents, ClientPort, CloseReason } from "./client-port.ts";
import { invariant } from "../invariant.ts";
import { ADMISSION_PENDING, type AdmissionGate, type AdmissionWaiter, type GateRefusal, refusalHttpStatus } from "./admission-gate.ts";
import { type Binder, directBinder, type ListenOptions } from "./binder.ts";
import type { TlsMaterial } from "./tls-material.ts";
import type { CidrList } from "./cidr.ts";
import { MAX_PROXY_HEADER, type ProxyProtocolMode, parseProxyHeader } from "./proxy-protocol.ts";
import type { BufferPool } from "./buffer-pool.ts";
import { FrameReader } from "./frame-reader.ts";
import { RingBuffer } from "./ring-buffer.ts";
import type { ByteSink } from "./socket-writer.ts";
import { ClientOutput, type ClientOutputOwner } from "./client-output.ts";
import type { ClientProtocol } from "./client-port.ts";
import {
  classifyFirstBytes,
  HEADER_TOO_LARGE_RESPONSE,
  httpHeaderEnd,
  isWebSocketHandshake,
  joinBytes,
  MAX_HTTP_HEADER,
  UPGRADE_REQUIRED_RESPONSE,
} from "./protocol-sniff.ts";
import { closeCodeFor } from "./ws-close-code.ts";
import { WebSocketStream, type WebSocketStreamOwner } from "./ws-stream.ts";
import { parseTraceparent, type TraceParent } from "../protocol/trace-context.ts";
import { ALLOW_EVERY_UPGRADE, forwardedClientAddress, readHeaderFields, refusalResponse, type UpgradePolicy } from "./upgrade-request.ts";

// The raw-TCP client listener. Each accepted socket becomes a TcpClientPort: an optional PROXY
// protocol header, admission by client IP, framed input through a FrameReader, output through a
// bounded QueuedSocketWriter; everything else happens in the session layer.
//
// Every connection is admitted or refused at accept on its socket address, except one from a
// trusted proxy: that waits for its PROXY header, within proxy_header_timeout and with at most
// max_pending_proxy_headers such connections at once, so silent sockets cannot hold the slots.
// Input bytes held across reads (partial frames, input read while paused) come from one global
// budget (pending_input_limit); a frame once started must complete within partial_frame_timeout.
// A sniffed WebSocket's unfinished message (held by its driver) counts and is timed the same way.

export interface TcpListenerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest client body accepted (security.max_message_size). */
  readonly maxMessageSize: number;
  /** Output bytes a client may leave unread before it is closed as a slow reader. */
  readonly writeQueueLimit: number;
  /** How long a closing client may take to read what was queued for it. */
  readonly closeTimeoutMs: number;
  /** Global cap on concurrent clients (connection_pool.max_connections). */
  readonly maxConnections: number;
  /** A frame started but not complete after this long closes the client (server.partial_frame_timeout). */
  readonly partialFrameTimeoutMs: number;
  /** Pooled bytes all clients' held input may take (server.pending_input_limit). */
  readonly pendingInputLimit: number;
  /** The reference's read deadline on client sockets: nothing received for this long closes the client (0: off). */
  readonly readTimeoutMs?: number;
  /**
   * The reference's write deadline: queued output the socket takes none of for this long closes the
   * client (0: off). server.client_write_timeout, else connection_pool.write_timeout in backend.mode
   * per_session (the reference's contract there sets it on both sockets of a session).
   */
  readonly writeTimeoutMs?: number;
  /**
   * Tell WebSocket handshakes and plain HTTP from game clients by their first bytes, as the
   * reference does (server.sniff_websocket; default on). Off, every connection is a game client.
   */
  readonly sniffWebSocket?: boolean;
  /** Largest WebSocket message a sniffed WebSocket client may send (server.ws_max_payload_length). */
  readonly wsMaxPayloadLength?: number;
  /**
   * A sniffed WebSocket client that sends nothing (not even a pong) for this long is closed as
   * idle_timeout, as Bun closes one on the dedicated listener (server.ws_idle_timeout; 0: off).
   */
  readonly wsIdleTimeoutMs?: number;
  /** Ping a sniffed WebSocket client once it has been quiet for half of wsIdleTimeoutMs (server.ws_send_pings). */
  readonly wsSendPings?: boolean;
}

/** Why a connection was refused before it could carry a session (connection_rejected_total{reason}). */
export type ConnectionRefusal =
  /** per_ip_limit, rate_limited; in a worker also admission_pending_limit, admission_timeout (admission-gate.ts). */
  | GateRefusal
  | "max_connections"
  /** The peer reset before accept: no address to admit it by. */
  | "no_peer_address"
  | "proxy_untrusted"
  | "proxy_missing"
  | "proxy_invalid"
  /** A trusted peer did not complete its PROXY header within proxy_header_timeout. */
  | "proxy_timeout"
  /** max_pending_proxy_headers trusted connections were already waiting for theirs. */
  | "proxy_pending_limit"
  /** A WebSocket upgrade whose Origin is not in security.allowed_origins (answered 403). */
  | "origin_not_allowed";

export interface ProxyProtocolOptions {
  /** off: never parsed; optional: trusted peers may send one; required: trusted peers must. */
  readonly mode: ProxyProtocolMode;
  /** Peers allowed to send a PROXY header (security.trusted_proxies). */
  readonly trusted: CidrList;
  /** How long a trusted peer may take to send its whole header (security.proxy_header_timeout). */
  readonly headerTimeoutMs: number;
  /** Trusted connections that may wait for a header at once (security.max_pending_proxy_headers). */
  readonly maxPendingHeaders: number;
}

/** What the config decides for a listener (src/config/module-options.ts: listenerSettingsFromConfig). */
export interface TcpListenerSettings {
  readonly options: TcpListenerOptions;
  readonly proxy: ProxyProtocolOptions;
  /** What a sniffed WebSocket upgrade is checked against (default: every origin, no proxy believed). */
  readonly upgrade?: UpgradePolicy;
}

/** A listener's settings and collaborators. S: see TcpListener. */
export interface TcpListenerParts<S> extends TcpListenerSettings {
  /** The layer above (SessionService), told of every connection, frame, refusal and close. */
  readonly events: ClientEvents<S>;
  readonly buffers: BufferPool;
  readonly metrics: GatewayCounters;
  readonly admission: AdmissionGate;
  /**
   * Milliseconds since the epoch for the PROXY header and partial-frame deadlines (default
   * Date.now); tests pass a clock they advance themselves and call sweep().
   */
  readonly now?: () => number;
  /** Clients open on other client listeners (WebSocket), counted against maxConnections too. */
  readonly otherConnections?: () => number;
}

/** Pooled bytes all client listeners' held input takes, against server.pending_input_limit. */
export interface HeldInputTally {
  heldInput: number;
}

/** What the listener's connections share, kept across reloads. */
export interface ListenerState extends HeldInputTally {
  /** Trusted connections still waiting for their PROXY header. */
  awaitingHeader: number;
}

/** What a listener's ports share (exported for unit tests of TcpClientPort). S: see TcpListener. */
export interface ListenerContext<S = unknown> {
  readonly layout: ClientFrameLayout;
  readonly service: ClientEvents<S>;
  readonly buffers: BufferPool;
  readonly options: TcpListenerOptions;
  readonly admission: AdmissionGate;
  readonly metrics: GatewayCounters;
  readonly proxy: ProxyProtocolOptions;
  /** Origins allowed on a sniffed WebSocket upgrade, and whose X-Forwarded-For is believed. */
  readonly upgrade: UpgradePolicy;
  readonly state: ListenerState;
  /**
   * The listener's clock (milliseconds), read at the event every deadline counts from (the PROXY
   * header wait, a partial frame, input, queued output), so the sweep never fires one early.
   */
  readonly now: () => number;
  /** Called once per closed port; through the port, since a hot reload gives its socket newer handlers. */
  readonly portClosed: (port: TcpClientPort<S>) => void;
}

/**
 * Input a paused client may have read before its socket is paused too. Reading on while paused is
 * how a client's close is noticed: Bun reports no close on a paused socket.
 */
const PAUSED_INPUT_PAUSE_AT = 64 * 1024;
/** Room for what one read can bring on top of that (uSockets reads up to 512 KiB at once). */
const PAUSED_INPUT_LIMIT = PAUSED_INPUT_PAUSE_AT + 512 * 1024;
const NO_BYTES = new Uint8Array(0);

/** The parts of a Bun socket a port uses (a unit test may stand in one that takes part of each write). */
export interface ClientSocket extends ByteSink {
  /** Undefined when the peer reset before accept (Bun's types say string). */
  readonly remoteAddress: string | undefined;
  end(): void;
  terminate(): void;
  timeout(seconds: number): void;
  pause(): void;
  resume(): void;
}

/** A sniffed WebSocket client's largest message when the listener was given none. */
const DEFAULT_WS_MAX_PAYLOAD = 1024 * 1024;
/** RFC 6455 "unsupported data": text where the contract carries binary frames only. */
const TEXT_MESSAGE_CODE = 1003;
const TEXT_MESSAGE_TEXT = "text messages are not accepted: send the framed stream as binary messages";

export class TcpClientPort<S = unknown> implements ClientPort<S>, WebSocketStreamOwner, ClientOutputOwner, AdmissionWaiter {
  /** The client's address: the socket peer, or the one a trusted PROXY header carries. */
  remoteAddress: string;
  session: S | null = null;
  closing = false;
  private reason: CloseReason | null = null;
  /** Counted by admission control (released on close). */
  private admitted = false;
  /**
   * Input held while the admission gate has not answered yet (a worker asks its supervisor);
   * null when no answer is awaited. Bounded like paused input: the socket is paused at
   * PAUSED_INPUT_PAUSE_AT, and the client closed past PAUSED_INPUT_LIMIT.
   */
  private admissionHeld: Uint8Array | null = null;
  /** The socket was paused for the held input's bound: resumed once admitted. */
  private admissionPausedSocket = false;
  /** A WebSocket upgrade from a trusted proxy waits for admission by its X-Forwarded-For address. */
  private upgradeAwaitsAdmission = false;
  /** Bytes held while waiting for a PROXY header to complete; null once decided. */
  private proxyBytes: Uint8Array | null = null;
  /** The socket peer is in trusted_proxies (decided at accept). */
  private trustedPeer = false;
  /** When a trusted peer's header wait ends (0: not waiting). */
  private headerDeadline = 0;
  /** Since when (listener clock) the pending frame has been incomplete; 0 when none is. */
  private partialSince = 0;
  /** When (listener clock) bytes last arrived, or the connection opened: the read deadline counts from it. */
  private lastInputAt: number;
  /** When (listener clock) queued output last moved (queued from empty, or the socket drained); 0: nothing queued. */
  private outputWaitingSince = 0;
  /** A frame completed during the current feed (the pending bytes, if any, are a newer frame). */
  private frameDone = false;
  /**
   * Since when (listener clock) the WebSocket driver has held an unfinished message; 0 when it
   * holds none. Timed by partial_frame_timeout like a partial game frame.
   */
  private messageSince = 0;
  /** A WebSocket message completed during the current input (what the driver holds is a newer one). */
  private messageDone = false;
  /** Held input counted in the listener's budget. */
  private heldCounted = 0;
  /** Paused for backend backpressure: input is kept here, not framed, until resumed. */
  private paused = false;
  private pausedInput: RingBuffer | null = null;
  private feedPausedInput: (() => void) | null = null;
  /** Input arrived past pausedInput's bound (see onPausedData); later input is not kept. */
  private pausedOverflow = false;
  private readonly reader: FrameReader<ClientViolation>;
  /** send / lend / flush: to the socket, or through the WebSocket stream once a handshake came. */
  private readonly output: ClientOutput;
  /** The first bytes are still to tell a game client from HTTP (see protocol-sniff.ts). */
  private sniffing: boolean;
  /** Bytes held while they cannot decide yet (fewer than 4, or an HTTP header not yet complete). */
  private sniffed: Uint8Array | null = null;
  /** Set once a WebSocket handshake arrived: frames in and out go through it. */
  private ws: WebSocketStream | null = null;
  /** A text message closes with its own code; 0: the reason's code. */
  private wsCloseCode = 0;
  /**
   * A trusted proxy's connection, not yet admitted: a WebSocket handshake may name the client in
   * X-Forwarded-For, so admission waits for the first bytes (first_message_timeout bounds the wait,
   * max_pending_proxy_headers the number waiting, counted in ListenerState.awaitingHeader).
   */
  private admissionWaits = false;
  /** When (listener clock) the last ping went to a quiet WebSocket client; a ping per quiet spell. */
  private pingedAt = 0;
  /** The W3C trace context the WebSocket upgrade carried (traceparent), or null. */
  traceParent: TraceParent | null = null;

  constructor(
    private readonly socket: ClientSocket,
    private readonly ctx: ListenerContext<S>,
  ) {
    this.remoteAddress = socket.remoteAddress ?? "";
    this.reader = new FrameReader(ctx.layout, this, ctx.buffers);
    this.lastInputAt = ctx.now();
    this.sniffing = ctx.options.sniffWebSocket ?? true;
    this.output = new ClientOutput(socket, ctx.buffers, ctx.options.writeQueueLimit, this, true);
  }

  get protocol(): ClientProtocol {
    return this.ws === null ? "tcp" : "ws";
  }

  /** Called once the socket's data points at this port (a refusal closes the socket at once). */
  start(): void {
    if (this.remoteAddress === "") return this.refuse("no_peer_address");
    const proxy = this.ctx.proxy;
    this.trustedPeer = proxy.mode !== "off" && proxy.trusted.contains(this.remoteAddress);
    if (!this.trustedPeer) {
      if (this.waitForForwardedAddress()) return;
      // Limits apply to the socket address at once, PROXY protocol or not; the first bytes are
      // still watched for a header, which only a trusted peer may send.
      this.admit(NO_BYTES);
      if (!this.closing && proxy.mode !== "off") this.proxyBytes = NO_BYTES;
      return;
    }
    // A trusted balancer's connection is admitted by the player's address in its header.
    const state = this.ctx.state;
    if (state.awaitingHeader >= proxy.maxPendingHeaders) return this.refuse("proxy_pending_limit");
    state.awaitingHeader++;
    this.headerDeadline = this.ctx.now() + proxy.headerTimeoutMs;
    this.proxyBytes = NO_BYTES;
  }

  /**
   * From a trusted proxy (security.trusted_proxies), with sniffing on, the connection may be a
   * WebSocket handshake whose X-Forwarded-For names the client: admission then waits for the first
   * bytes, so the proxy's own address never takes the per-IP limits for its players. True if so.
   */
  private waitForForwardedAddress(): boolean {
    if (!this.sniffing || !this.ctx.upgrade.trustedProxies.contains(this.remoteAddress)) return false;
    // Not admitted yet, so no per-IP limit holds these: the PROXY header waiters' bound does.
    const state = this.ctx.state;
    if (state.awaitingHeader >= this.ctx.proxy.maxPendingHeaders) {
      this.refuse("proxy_pending_limit");
      return true;
    }
    state.awaitingHeader++;
    this.admissionWaits = true;
    return true;
  }

  /** The first bytes have decided how a trusted proxy's connection is admitted (or it is gone): it no longer waits. */
  private forwardedAddressDecided(): void {
    if (!this.admissionWaits) return;
    this.admissionWaits = false;
    this.ctx.state.awaitingHeader--;
  }

  /**
   * Applies per-IP limits to remoteAddress: true when admitted now; refuses the connection when
   * over them. When the gate answers later, `early` (input already read past any PROXY header)
   * is held with what arrives meanwhile, and handed on by admissionDecided.
   */
  private admit(early: Uint8Array): boolean {
    const answer = this.ctx.admission.request(this.remoteAddress, this);
    if (answer === null) {
      this.admitted = true;
      return true;
    }
    if (answer === ADMISSION_PENDING) this.admissionHeld = early.length === 0 ? NO_BYTES : Uint8Array.from(early);
    else this.refuse(answer);
    return false;
  }

  /** AdmissionWaiter: the gate's late answer. The connection then goes on as if admitted at once, or is refused as then. */
  admissionDecided(refusal: GateRefusal | null): void {
    const held = this.admissionHeld;
    this.admissionHeld = null;
    const upgrade = this.upgradeAwaitsAdmission;
    this.upgradeAwaitsAdmission = false;
    if (refusal !== null) {
      if (this.closing) return;
      if (upgrade) this.refuseUpgrade(refusal, refusalHttpStatus(refusal));
      else this.refuse(refusal);
      return;
    }
    this.admitted = true; // released on close, whatever comes next
    if (this.closing || held === null) return;
    if (this.admissionPausedSocket) {
      this.admissionPausedSocket = false;
      this.socket.resume();
    }
    if (held.length > 0) this.route(held);
  }

  /** Input that arrives while the admission gate has not answered. */
  private holdForAdmission(chunk: Uint8Array): void {
    const held = this.admissionHeld!;
    if (held.length + chunk.length > PAUSED_INPUT_LIMIT) return this.close("pending_input_limit");
    const joined = held.length === 0 ? chunk.slice() : joinBytes(held, chunk);
    this.admissionHeld = joined;
    if (joined.length >= PAUSED_INPUT_PAUSE_AT && !this.admissionPausedSocket) {
      this.admissionPausedSocket = true;
      this.socket.pause();
    }
  }

  private refuse(reason: ConnectionRefusal): void {
    this.headerDecided();
    this.ctx.service.onConnectionRefused(this.remoteAddress || this.socket.remoteAddress || "unknown", this.protocol, reason, this);
    this.closing = true;
    this.reason = "rejected";
    this.reader.stop();
    this.socket.terminate();
  }

  /** The PROXY header question is settled (or the connection is gone): stop waiting for it. */
  private headerDecided(): void {
    this.proxyBytes = null;
    if (this.headerDeadline === 0) return;
    this.headerDeadline = 0;
    this.ctx.state.awaitingHeader--;
  }

  /** Gathers the start of the stream until it is known whether a PROXY header leads it. */
  private onProxyData(chunk: Uint8Array): void {
    const held = this.proxyBytes!;
    const bytes = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    const parsed = parseProxyHeader(bytes);
    switch (parsed.kind) {
      case "incomplete":
        if (bytes.length > MAX_PROXY_HEADER) return this.refuse("proxy_invalid");
        this.proxyBytes = Uint8Array.from(bytes);
        return;
      case "invalid":
        return this.refuse("proxy_invalid");
      case "absent":
        if (this.trustedPeer && this.ctx.proxy.mode === "required") return this.refuse("proxy_missing");
        this.headerDecided();
        if ((this.admitted || this.waitForForwardedAddress() || this.admit(bytes)) && !this.closing) this.input(bytes);
        return;
      case "header":
        if (!this.trustedPeer) return this.refuse("proxy_untrusted");
        this.headerDecided();
        if (parsed.address !== null) this.remoteAddress = parsed.address;
        if ((this.waitForForwardedAddress() || this.admit(bytes.subarray(parsed.length))) && !this.closing && parsed.length < bytes.length) {
          this.input(bytes.subarray(parsed.length));
        }
        return;
    }
  }

  /** Bytes read from the client, past any PROXY header: a game client's frames, or HTTP/WebSocket. */
  private input(chunk: Uint8Array): void {
    if (this.ws !== null) this.webSocketInput(this.ws, chunk);
    else if (this.sniffing) this.sniff(chunk);
    else this.feed(chunk);
  }

  /** Decides what the connection speaks as soon as its first bytes can tell (never on a timer). */
  private sniff(chunk: Uint8Array): void {
    const held = this.sniffed === null ? chunk : joinBytes(this.sniffed, chunk);
    const kind = classifyFirstBytes(held);
    if (kind === "game") {
      this.sniffing = false;
      this.sniffed = null;
      if (this.admissionWaits) {
        // A game client behind a trusted proxy: admitted by the peer's address, as any game client.
        this.forwardedAddressDecided();
        if (!this.admit(held)) return; // refused, or held until the gate answers
      }
      return this.feed(held);
    }
    const end = kind === "http" ? httpHeaderEnd(held) : -1;
    // The bound holds however the header was cut into reads: one that ends past it is too long too.
    if (end < 0 ? held.length > MAX_HTTP_HEADER : end > MAX_HTTP_HEADER) {
      const header = end < 0 ? held : held.subarray(0, end);
      // Not a handshake (a game client whose first frame starts "GET ", or plain HTTP): 426, as
      // the reference answers any HTTP that names no upgrade. Only an over-long handshake gets 431.
      return this.answerHttp(isWebSocketHandshake(header) ? HEADER_TOO_LARGE_RESPONSE : UPGRADE_REQUIRED_RESPONSE);
    }
    if (end < 0) {
      // Bounded by MAX_HTTP_HEADER; a client that stops here is closed by first_message_timeout.
      this.sniffed = held === chunk ? chunk.slice() : held;
      return;
    }
    this.sniffing = false;
    this.sniffed = null;
    if (!isWebSocketHandshake(held.subarray(0, end))) return this.answerHttp(UPGRADE_REQUIRED_RESPONSE);
    if (!this.acceptUpgrade(held, end)) return;
    const o = this.ctx.options;
    const ws = new WebSocketStream(this.socket, this.ctx.buffers, o.writeQueueLimit, o.wsMaxPayloadLength ?? DEFAULT_WS_MAX_PAYLOAD, this);
    this.ws = ws;
    this.output.redirect(ws);
    ws.handshake(held.subarray(0, end), held.subarray(end));
    this.countWebSocketHeld(ws); // frames pipelined behind the handshake
  }

  /**
   * The upgrade request's own checks, as the dedicated listener makes them (upgrade-request.ts):
   * the client's address behind a trusted proxy, its Origin, admission, and the trace it
   * continues. False when refused (answered with an HTTP status and closed), or when the gate
   * answers later: the request (held[0, end), and what follows) is then held and read again once
   * admitted, with sniffing on once more.
   */
  private acceptUpgrade(held: Uint8Array, end: number): boolean {
    const fields = readHeaderFields(held.subarray(0, end));
    const policy = this.ctx.upgrade;
    if (this.admissionWaits) {
      const peer = this.remoteAddress;
      const forwarded = forwardedClientAddress(peer, fields.get("x-forwarded-for"), policy.trustedProxies);
      if (forwarded.malformed) this.ctx.service.onForwardedForMalformed(peer, fields.get("x-forwarded-for") ?? "");
      this.remoteAddress = forwarded.address;
    }
    if (!policy.origins.allows(fields.get("origin"))) {
      this.forwardedAddressDecided();
      this.refuseUpgrade("origin_not_allowed", 403);
      return false;
    }
    if (this.admissionWaits) {
      this.forwardedAddressDecided();
      const answer = this.ctx.admission.request(this.remoteAddress, this);
      if (answer === ADMISSION_PENDING) {
        this.upgradeAwaitsAdmission = true;
        this.sniffing = true;
        this.admissionHeld = Uint8Array.from(held);
        return false;
      }
      if (answer !== null) {
        this.refuseUpgrade(answer, refusalHttpStatus(answer));
        return false;
      }
      this.admitted = true;
    }
    this.traceParent = parseTraceparent(fields.get("traceparent"));
    return true;
  }

  /** A refused upgrade: counted and logged as any refusal, and answered with `status` before the close. */
  private refuseUpgrade(refusal: ConnectionRefusal, status: number): void {
    this.ctx.service.onConnectionRefused(this.remoteAddress, "ws", refusal, this);
    this.closing = true;
    this.reason = "rejected";
    this.reader.stop();
    const response = refusalResponse(status, refusal);
    this.socket.write(response, 0, response.length);
    this.socket.end();
  }

  /** Plain HTTP on the client port: answered, then closed, as the reference does. */
  private answerHttp(response: Uint8Array): void {
    this.sniffing = false;
    this.sniffed = null;
    this.socket.write(response, 0, response.length);
    this.close("rejected");
  }

  /**
   * WebSocket frames: the driver keeps an unfinished message's bytes, which count in the held-input
   * budget and are timed by partial_frame_timeout, as the FrameReader's partial frame is.
   */
  private webSocketInput(ws: WebSocketStream, chunk: Uint8Array): void {
    ws.input(chunk);
    this.countWebSocketHeld(ws);
  }

  /** After input reached the driver: times and counts what it holds for an unfinished message. */
  private countWebSocketHeld(ws: WebSocketStream): void {
    if (ws.heldBytes === 0) this.messageSince = 0;
    else if (this.messageSince === 0 || this.messageDone) this.messageSince = this.ctx.now();
    this.messageDone = false;
    if (this.countHeld()) this.close("pending_input_limit");
  }

  // ---- WebSocketStreamOwner ---------------------------------------------------------------------

  onStreamBytes(b: Uint8Array): void {
    this.messageDone = true;
    if (!this.closing) this.feed(b);
  }

  onStreamText(): void {
    this.messageDone = true;
    if (this.closing) return;
    this.wsCloseCode = TEXT_MESSAGE_CODE;
    this.close("malformed_frame");
  }

  onStreamClosed(code: number): void {
    // The client's close frame (answered by the driver) or a protocol error the driver closed on.
    this.close(code === 1000 || code === 1001 ? "client_closed" : "malformed_frame");
  }

  onStreamOverflow(): void {
    this.abort("slow_reader");
  }

  /** Ends the connection once output is out: a WebSocket says goodbye with a close frame first. */
  private endSocket(): void {
    const ws = this.ws;
    if (ws !== null) {
      const reason = this.reason ?? "shutdown";
      if (this.wsCloseCode !== 0) ws.close(this.wsCloseCode, TEXT_MESSAGE_TEXT);
      else ws.close(closeCodeFor(reason), reason);
      if (!ws.flush()) return; // the close frame waits for the socket's drain, which ends it
    }
    this.socket.end();
  }

  /** Frames input, then accounts for what the reader holds across reads. */
  private feed(chunk: Uint8Array): void {
    this.feedRange(chunk, 0, chunk.length);
  }

  /** feed() for chunk[start, end) of a larger buffer (input held while paused). */
  private feedRange(chunk: Uint8Array, start: number, end: number): void {
    const reader = this.reader;
    reader.feedRange(chunk, start, end);
    if (reader.pendingBytes === 0) this.partialSince = 0;
    else if (this.partialSince === 0 || this.frameDone) this.partialSince = this.ctx.now();
    this.frameDone = false;
    // At the bound, the client whose partial frame would pass it is the one closed.
    if (this.countHeld()) this.close("pending_input_limit");
  }

  /** Brings this port's share of the held-input budget up to date; true when it grew past the budget. */
  private countHeld(): boolean {
    const held = this.reader.heldBytes + (this.pausedInput === null ? 0 : this.pausedInput.capacity) + (this.ws === null ? 0 : this.ws.heldBytes);
    const grew = held - this.heldCounted;
    if (grew === 0) return false;
    const state = this.ctx.state;
    state.heldInput += grew;
    this.heldCounted = held;
    return grew > 0 && state.heldInput > this.ctx.options.pendingInputLimit;
  }

  /**
   * Deadlines, checked by the listener's sweep: the PROXY header wait and the partial frame.
   * A paused client is not timed on its frame: it cannot finish it while the gateway is not reading.
   */
  checkDeadlines(now: number): void {
    if (this.closing) return;
    if (this.headerDeadline !== 0) {
      if (now >= this.headerDeadline) this.refuse("proxy_timeout");
      return;
    }
    if (!this.paused && (this.overdue(this.partialSince, now) || this.overdue(this.messageSince, now))) return this.close("partial_frame_timeout");
    // Socket deadlines, as the reference set them on client sockets. A paused client is not read
    // from, so its silence is the gateway's doing, not the client's.
    const { readTimeoutMs = 0, writeTimeoutMs = 0 } = this.ctx.options;
    if (readTimeoutMs > 0 && !this.paused && now - this.lastInputAt >= readTimeoutMs) return this.close("read_timeout");
    if (this.ws !== null && !this.paused && this.webSocketIdle(now)) return;
    if (this.queuedBytes === 0) this.outputWaitingSince = 0;
    else if (writeTimeoutMs > 0 && this.outputWaitingSince !== 0 && now - this.outputWaitingSince >= writeTimeoutMs) this.abort("write_timeout");
  }

  /** A partial frame or WebSocket message started at `since` (0: none) has passed partial_frame_timeout. */
  private overdue(since: number, now: number): boolean {
    return since !== 0 && now - since >= this.ctx.options.partialFrameTimeoutMs;
  }

  /**
   * The dedicated listener's idle rule, which Bun applies there: a WebSocket client quiet for
   * half of ws_idle_timeout is pinged (a live one answers, and a pong is input), and one quiet for
   * all of it is closed. True when closed. Measured on the sweep, so up to one
   * session.sweep_interval late (Bun's own check is in ~4 s steps).
   */
  private webSocketIdle(now: number): boolean {
    const { wsIdleTimeoutMs = 0, wsSendPings = false } = this.ctx.options;
    if (wsIdleTimeoutMs <= 0) return false;
    const quiet = now - this.lastInputAt;
    if (quiet >= wsIdleTimeoutMs) {
      this.close("idle_timeout");
      return true;
    }
    if (wsSendPings && quiet * 2 >= wsIdleTimeoutMs && this.pingedAt <= this.lastInputAt) {
      this.pingedAt = now;
      this.ws!.ping();
    }
    return false;
  }

  get queuedBytes(): number {
    return this.output.queuedBytes;
  }

  send(b: Uint8Array, off: number, len: number): boolean {
    return this.output.send(b, off, len);
  }

  lend(b: Uint8Array, off: number, len: number): boolean {
    return this.output.lend(b, off, len);
  }

  flush(): void {
    if (this.output.writeOut() && this.closing) this.endSocket();
  }

  // ---- ClientOutputOwner -----------------------------------------------------------------------

  onOutputWaiting(): void {
    this.outputWaitingSince = this.ctx.now();
  }

  onOutputOverflow(): void {
    // The client is not reading: drop it rather than let its queue grow.
    this.abort("slow_reader");
  }

  /** Closes at once, dropping queued output: the client is not taking it, so waiting to deliver it is pointless. */
  private abort(reason: CloseReason): void {
    this.closing = true;
    this.reason ??= reason;
    this.reader.stop();
    this.socket.terminate();
  }

  close(reason: CloseReason): void {
    if (this.closing) return;
    this.closing = true;
    this.reason = reason;
    this.reader.stop();
    if (this.output.writeOut()) {
      this.endSocket();
    } else {
      // Deliver what is queued first (a Kick promises that); drain ends it, the timeout bounds it.
      this.socket.timeout(Math.max(1, Math.ceil(this.ctx.options.closeTimeoutMs / 1000)));
    }
  }

  pauseReading(): void {
    // Reading goes on into pausedInput, so a close is still seen; the socket itself is paused
    // only once that holds PAUSED_INPUT_PAUSE_AT (see onPausedData).
    this.paused = true;
  }

  resumeReading(): void {
    if (this.closing || !this.paused) return;
    this.paused = false;
    this.socket.resume();
    // Their clocks restart: the client could not finish while the gateway was not reading.
    if (this.partialSince !== 0) this.partialSince = this.ctx.now();
    if (this.messageSince !== 0) this.messageSince = this.ctx.now();
    if (this.pausedInput !== null && this.pausedInput.length > 0) {
      // Framed after the caller (a backend connection resuming a batch) has finished its loop.
      queueMicrotask(this.feedPausedInput!);
    }
  }

  private onPausedData(chunk: Uint8Array): void {
    if (this.pausedOverflow) return;
    const held = this.pausedInput ?? this.holdPausedInput();
    if (!held.push(chunk, 0, chunk.length)) {
      // The socket was paused at PAUSE_AT, yet input came: Bun reads a paused socket to its end
      // when the peer resets it. The close then follows within this turn and brings its own
      // reason; only a client still open a turn later is closed for the bound.
      this.pausedOverflow = true;
      this.closeNextTurnIfOpen("pending_input_limit");
      return;
    }
    // Past the per-client mark or the global budget, stop reading for real (a paused client is
    // not closed for the budget: it is not the one holding the backend up).
    const overBudget = this.countHeld() || this.ctx.state.heldInput >= this.ctx.options.pendingInputLimit;
    if (overBudget || held.length >= PAUSED_INPUT_PAUSE_AT) this.socket.pause();
  }

  /**
   * The ring for input read while paused, and the function that frames it on resume, made once
   * per port. They live here, not in onPausedData and resumeReading: a method holding an arrow
   * function allocates a scope for it on every call until the JIT optimises it, and those two
   * run per read and per resume under backpressure, seldom often enough to be optimised.
   */
  private holdPausedInput(): RingBuffer {
    this.feedPausedInput = () => this.drainPausedInput();
    return (this.pausedInput = new RingBuffer(this.ctx.buffers, PAUSED_INPUT_LIMIT));
  }

  private closeNextTurnIfOpen(reason: CloseReason): void {
    setImmediate(() => {
      if (!this.closing) this.close(reason);
    });
  }

  private drainPausedInput(): void {
    const held = this.pausedInput;
    if (this.paused || this.closing || held === null || held.length === 0) return;
    const at = held.headOffset; // never wraps: it is only appended to, then emptied whole
    // A game client's frames are read in place; a WebSocket or an undecided sniff takes a view.
    if (this.ws === null && !this.sniffing) this.feedRange(held.bytes, at, at + held.length);
    else this.input(held.bytes.subarray(at, at + held.length));
    held.clear();
    this.countHeld();
  }

  // ---- FrameHandler ----------------------------------------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    this.frameDone = true;
    return this.ctx.service.onClientFrame(this, b, off, len);
  }

  onFramingError(reason: ClientViolation): void {
    this.ctx.service.onClientViolation(this, reason);
  }

  // ---- socket events ---------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (process.env.NODE_ENV !== "production") this.checkNothingLent();
    if (this.closing) return;
    // Read at the event, not the sweep's last reading: a stamp up to one sweep old made deadlines
    // fire up to one sweep interval early. One clock read per chunk (about 20 ns), not per frame.
    this.lastInputAt = this.ctx.now();
    if (this.admissionHeld !== null) this.holdForAdmission(chunk);
    else this.route(chunk);
  }

  /** Input past admission: to the PROXY header, held while paused, or framed. */
  private route(chunk: Uint8Array): void {
    if (this.proxyBytes !== null) this.onProxyData(chunk);
    else if (this.paused) this.onPausedData(chunk);
    else this.input(chunk);
  }

  onDrain(): void {
    if (process.env.NODE_ENV !== "production") this.checkNothingLent();
    if (this.outputWaitingSince !== 0) this.outputWaitingSince = this.ctx.now(); // the socket took some: progress
    // A WebSocket's frames go first: the port's queue waits behind them.
    if (this.ws !== null && !this.ws.flush()) return;
    this.flush();
  }

  onTimeout(): void {
    if (this.closing) this.socket.terminate();
  }

  /**
   * A lent frame points into the lender's buffer (a backend chunk), which is reused once control
   * returns to the event loop: the lender must have flushed before then. A socket event is such a
   * return, so no frame may still be lent when one arrives.
   */
  private checkNothingLent(): void {
    // Guarded here too, so the release build keeps no trace of the check (its callers are guarded).
    if (process.env.NODE_ENV !== "production") {
      invariant(!this.output.holdsLent, "a lent frame is flushed before the lender yields to the event loop");
    }
  }

  onClosed(error?: Error): void {
    if (process.env.NODE_ENV !== "production") this.checkNothingLent();
    if (this.admitted) this.ctx.admission.release(this.remoteAddress);
    this.admitted = false;
    if (this.admissionHeld !== null) {
      // Closed before the gate answered: it releases whatever that answer grants.
      this.admissionHeld = null;
      this.ctx.admission.cancel(this);
    }
    this.headerDecided();
    this.forwardedAddressDecided();
    this.reader.stop();
    this.pausedInput?.clear();
    this.output.discard();
    this.ws?.release(); // before the count: a released stream holds nothing
    this.countHeld();
    this.sniffed = null;
    this.closing = true;
    this.ctx.portClosed(this);
    this.ctx.service.onClientClosed(this, this.reason ?? (error ? "client_error" : "client_closed"));
  }
}

const noOtherConnections = (): number => 0;

/**
 * S is what the layer above binds to each connection (a Session): the listener hands ports to
 * `events` and never looks at it.
 */
export class TcpListener<S = unknown> {
  private listener: TCPSocketListener<TcpClientPort<S>> | null = null;
  /** The setting that chose the address, for a rotation's ListenError. */
  private key = "server.listen_addr";
  private binder: Binder = directBinder;
  /** Bind with SO_REUSEPORT even without TLS: one of a group of workers sharing the address. */
  private shared = false;
  private open = 0;
  /** Every live port, for the deadline sweep. */
  private readonly ports = new Set<TcpClientPort<S>>();
  private readonly state: ListenerState = { awaitingHeader: 0, heldInput: 0 };
  private readonly portClosed = (port: TcpClientPort<S>): void => {
    this.open--;
    this.ports.delete(port);
  };
  /** Settings for connections accepted from now on (replaced on reload). */
  private ctx: ListenerContext<S>;
  private options: TcpListenerOptions;
  private proxy: ProxyProtocolOptions;
  private upgrade: UpgradePolicy;
  private readonly events: ClientEvents<S>;
  private readonly buffers: BufferPool;
  private readonly metrics: GatewayCounters;
  private readonly admission: AdmissionGate;
  private readonly now: () => number;
  private readonly otherConnections: () => number;

  constructor(parts: TcpListenerParts<S>) {
    this.options = parts.options;
    this.proxy = parts.proxy;
    this.upgrade = parts.upgrade ?? ALLOW_EVERY_UPGRADE;
    this.events = parts.events;
    this.buffers = parts.buffers;
    this.metrics = parts.metrics;
    this.admission = parts.admission;
    this.now = parts.now ?? Date.now;
    this.otherConnections = parts.otherConnections ?? noOtherConnections;
    this.ctx = this.context(this.options);
  }

  /** New limits for connections accepted from now on; live connections keep theirs. Host and port cannot change. */
  update(options: Omit<TcpListenerOptions, "host" | "port">, proxy: ProxyProtocolOptions, upgrade: UpgradePolicy = this.upgrade): void {
    this.options = { ...options, host: this.options.host, port: this.options.port };
    this.proxy = proxy;
    this.upgrade = upgrade;
    this.ctx = this.context(this.options);
  }

  private context(options: TcpListenerOptions): ListenerContext<S> {
    return {
      layout: new ClientFrameLayout(options.maxMessageSize),
      service: this.events,
      buffers: this.buffers,
      options,
      admission: this.admission,
      metrics: this.metrics,
      proxy: this.proxy,
      upgrade: this.upgrade,
      state: this.state,
      now: this.now,
      portClosed: this.portClosed,
    };
  }

  /** Closes connections past their PROXY header or partial frame deadline (on the session sweep). */
  sweep(now = this.now()): void {
    for (const port of this.ports) port.checkDeadlines(now);
  }

  /** The bound port (useful when listening on port 0). */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  get hostname(): string {
    return this.listener?.hostname ?? this.options.host;
  }

  get connections(): number {
    return this.open;
  }

  /** The held-input budget's tally (server.pending_input_limit), shared with the WebSocket listener. */
  get heldInputTally(): HeldInputTally {
    return this.state;
  }

  /**
   * Binds the listening socket, serving TLS when `tls` is given; throws ListenError naming `key`
   * when the address cannot be had. With TLS it binds with SO_REUSEPORT, so rotateTls can bind
   * the same address beside it; `shared` (a worker of a group, src/supervisor) binds with it
   * always, so every worker listens on the one address and the kernel spreads connections.
   */
  start(key: string, binder: Binder = directBinder, tls: TlsMaterial | null = null, shared = false): void {
    this.key = key;
    this.binder = binder;
    this.shared = shared;
    this.listener = binder.listen<TcpClientPort<S>>(key, this.listenOptions(this.options.port, tls));
  }

  /**
   * A new certificate for connections accepted from now on; open ones keep theirs and carry on.
   * Bun's listener.reload({ tls }) keeps the old certificate (bun issue 43815), so a second
   * listener binds the address with the new one (SO_REUSEPORT), then the old one stops accepting.
   * Throws ListenError (the old listener then serves on).
   */
  rotateTls(tls: TlsMaterial): void {
    const old = this.listener;
    if (old === null) return;
    this.listener = this.binder.rebind<TcpClientPort<S>>(this.key, this.listenOptions(old.port, tls));
    old.stop(false);
  }

  private listenOptions(port: number, tls: TlsMaterial | null): ListenOptions<TcpClientPort<S>> {
    const where = { hostname: this.options.host, port, socket: this.handlers };
    if (tls !== null) return { ...where, tls, reusePort: true };
    return this.shared ? { ...where, reusePort: true } : where;
  }

  /** One handler set for every listener this binds, so a rotation's sockets behave as the old ones. */
  private readonly handlers: ListenOptions<TcpClientPort<S>>["socket"] = {
    binaryType: "uint8array",
    open: (socket) => {
      if (this.open + this.otherConnections() >= this.options.maxConnections) {
        this.events.onConnectionRefused(socket.remoteAddress ?? "unknown", "tcp", "max_connections");
        socket.terminate();
        return;
      }
      this.open++;
      socket.setNoDelay(true);
      const port = new TcpClientPort<S>(socket, this.ctx);
      socket.data = port;
      this.ports.add(port);
      this.events.onClientOpen(port);
      port.start();
    },
    data: (socket, chunk) => socket.data?.onData(chunk),
    drain: (socket) => socket.data?.onDrain(),
    timeout: (socket) => socket.data?.onTimeout(),
    close: (socket, error) => {
      const port = socket.data;
      if (port === undefined) return; // rejected at admission
      socket.data = undefined as unknown as TcpClientPort<S>;
      port.onClosed(error);
    },
    error: () => {
      // close follows every error; it does the teardown
    },
  };

  /** Stops accepting; live connections carry on. */
  stop(): void {
    this.listener?.stop(false);
    this.listener = null;
  }

  /** Dev hot reload: newer code has reloaded the listening socket with its handlers; leave it open. */
  handOver(): void {
    this.listener = null;
  }
}
