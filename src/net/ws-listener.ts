import type { Server } from "bun";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import type { GatewayCounters } from "../telemetry/counters.ts";
import { ADMISSION_PENDING, type AdmissionGate, type AdmissionWaiter, refusalHttpStatus } from "./admission-gate.ts";
import { listenError } from "./binder.ts";
import type { TlsMaterial } from "./tls-material.ts";
import type { BufferPool } from "./buffer-pool.ts";
import type { ClientEvents, ClientPort, CloseReason } from "./client-port.ts";
import { FrameReader } from "./frame-reader.ts";
import { RingBuffer } from "./ring-buffer.ts";
import type { ByteSink } from "./socket-writer.ts";
import { ClientOutput, type ClientOutputOwner } from "./client-output.ts";
import { closeCodeFor } from "./ws-close-code.ts";
import type { HeldInputTally } from "./tcp-listener.ts";
import { parseTraceparent, type TraceParent } from "../protocol/trace-context.ts";
import { ALLOW_EVERY_UPGRADE, forwardedClientAddress, type UpgradePolicy } from "./upgrade-request.ts";

// The dedicated WebSocket client listener (server.ws_listen_addr): Bun's native WebSocket server.
// Binary messages carry the same framed byte stream as TCP (a frame may span messages, a message
// may hold several), so input goes through the same FrameReader; a text message breaks the
// contract and closes the client with code 1003.
//
// Output: frames queued by send()/lend() go out as one binary message per flush. Bun's send()
// returns -1 when it took the message but the socket is backed up: from then on output waits in
// this port's bounded queue until Bun's drain; 0 when it dropped the message (past
// backpressureLimit, which the queue discipline should never reach): the client is closed.

export interface WsListenerOptions {
  readonly host: string;
  readonly port: number;
  /** Upgrade requests to any other path get 404 (server.ws_path). */
  readonly path: string;
  /** Largest client body accepted (security.max_message_size). */
  readonly maxMessageSize: number;
  /** Largest WebSocket message accepted; larger ones close with 1009 (server.ws_max_payload_length). */
  readonly maxPayloadLength: number;
  /** Bun's idle timeout in seconds (0: off): bunIdleTimeoutSeconds of server.ws_idle_timeout. */
  readonly idleTimeoutSec: number;
  /** Ping a quiet client before the idle timeout closes it (server.ws_send_pings). */
  readonly sendPings: boolean;
  /** Output bytes a client may leave unread before it is closed as a slow reader. */
  readonly writeQueueLimit: number;
  /** How long a closing client may take to read what was queued for it. */
  readonly closeTimeoutMs: number;
  /** Global cap on concurrent clients (connection_pool.max_connections), shared with TCP by the caller. */
  readonly maxConnections: number;
  /** A frame started but not complete after this long closes the client (server.partial_frame_timeout). */
  readonly partialFrameTimeoutMs: number;
  /** Pooled bytes all clients' held input may take, shared with the TCP listener (server.pending_input_limit). */
  readonly pendingInputLimit: number;
  /** Nothing received for this long closes the client (server.client_read_timeout; 0: off). */
  readonly readTimeoutMs?: number;
  /** Queued output Bun takes none of for this long closes the client (server.client_write_timeout; 0: off). */
  readonly writeTimeoutMs?: number;
}

export interface WsListenerParts<S> {
  readonly options: WsListenerOptions;
  readonly events: ClientEvents<S>;
  readonly buffers: BufferPool;
  readonly metrics: GatewayCounters;
  readonly admission: AdmissionGate;
  /** Milliseconds since the epoch for the close and partial-frame deadlines (default Date.now). */
  readonly now?: () => number;
  /** Connections already open on other client listeners (TCP), counted against maxConnections. */
  readonly otherConnections?: () => number;
  /** Origins allowed to upgrade and proxies whose X-Forwarded-For is believed (default: all origins, no proxy). */
  readonly upgrade?: UpgradePolicy;
  /** The held-input tally shared with the TCP listener (TcpListener.heldInputTally); default: this listener's own. */
  readonly heldInput?: HeldInputTally;
}

interface WsContext<S> {
  readonly layout: ClientFrameLayout;
  readonly events: ClientEvents<S>;
  readonly buffers: BufferPool;
  readonly options: WsListenerOptions;
  readonly admission: AdmissionGate;
  readonly upgrade: UpgradePolicy;
  /** Bytes held by every client's partial frames and paused input, against options.pendingInputLimit. */
  readonly held: HeldInputTally;
  /** Read at each event a deadline counts from: a stamp from the last sweep would make it fire early. */
  readonly now: () => number;
  readonly portClosed: (port: WsClientPort<S>) => void;
}

/** The part of Bun's ServerWebSocket a port uses. */
export interface WebSocketSink {
  send(data: Uint8Array): number;
  close(code?: number, reason?: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

/** RFC 6455 "unsupported data": the client sent text where binary frames are the contract. */
const TEXT_MESSAGE_CODE = 1003;
const TEXT_MESSAGE_TEXT = "text messages are not accepted: send the framed stream as binary messages";

/** Input held while paused for backend backpressure, past which the client is closed. */
const PAUSED_INPUT_SLACK = 64 * 1024;
/** The reason Bun gives when its idle timeout closes a WebSocket (code 1006, no close frame). */
const BUN_IDLE_CLOSE_REASON = "WebSocket timed out from inactivity";

export class WsClientPort<S = unknown> implements ClientPort<S>, ByteSink, ClientOutputOwner {
  readonly protocol = "ws" as const;
  session: S | null = null;
  closing = false;
  private reason: CloseReason | null = null;
  private ws: WebSocketSink | null = null;
  /** Bun took a message but reported backpressure: nothing more is sent until its drain. */
  private backedUp = false;
  private readonly reader: FrameReader<ClientViolation>;
  /** send / lend / flush, one binary message per write (this port is the output's sink). */
  private readonly output: ClientOutput;
  private paused = false;
  private pausedInput: RingBuffer | null = null;
  private feedPausedInput: (() => void) | null = null;
  /** Since when (listener clock) the pending frame has been incomplete; 0 when none is. */
  private partialSince = 0;
  /** A frame completed during the current message (the pending bytes, if any, are a newer frame). */
  private frameDone = false;
  /** When a close that waits for queued output gives up (0: none pending). */
  private closeDeadline = 0;
  private closed = false;
  /** Set when the close has a more precise code and text than its reason's. */
  private closeCode = 0;
  private closeText = "";
  /** When (listener clock) a message last arrived, or the connection opened: the read deadline counts from it. */
  private lastInputAt: number;
  /** When (listener clock) output started waiting or last moved; 0: nothing waits. */
  private outputWaitingSince = 0;
  /** Held input counted in the shared budget (ctx.held). */
  private heldCounted = 0;

  constructor(
    /** The client's address: the upgrade request's peer, or the client a trusted proxy forwarded for. */
    readonly remoteAddress: string,
    private readonly ctx: WsContext<S>,
    /** The upgrade's traceparent, when it carried a valid one. */
    readonly traceParent: TraceParent | null = null,
  ) {
    this.reader = new FrameReader(ctx.layout, this, ctx.buffers);
    // Output is timed from Bun's backpressure (write()), not from queuing.
    this.output = new ClientOutput(this, ctx.buffers, ctx.options.writeQueueLimit, this, false);
    this.lastInputAt = ctx.now();
  }

  /** The upgrade completed: the socket can carry messages. */
  attach(ws: WebSocketSink): void {
    this.ws = ws;
  }

  // ---- ClientPort: output ------------------------------------------------------------------------

  send(b: Uint8Array, off: number, len: number): boolean {
    return this.output.send(b, off, len);
  }

  lend(b: Uint8Array, off: number, len: number): boolean {
    return this.output.lend(b, off, len);
  }

  get queuedBytes(): number {
    return this.output.queuedBytes;
  }

  flush(): void {
    if (this.writeOut() && this.closing) this.closeSocket();
  }

  /** The output's writeOut, with the lent frame's send in this class (see ClientOutput.takeLent). */
  private writeOut(): boolean {
    const out = this.output;
    const lent = out.takeLent();
    if (lent !== null && !out.lentWritten(lent, this.write(lent, out.lentOffset, out.lentLength))) return false;
    return out.flushQueue();
  }

  // ---- ClientOutputOwner -------------------------------------------------------------------------

  onOutputWaiting(): void {
    // Not asked for (timesQueue false): output waits on Bun's backpressure, which write() times.
  }

  onOutputOverflow(): void {
    this.abort("slow_reader");
  }

  /**
   * ByteSink for the output: one binary message per call; 0 while Bun is backed up. Bun copies
   * the message before send() returns, so a lent frame's buffer is free after it.
   */
  write(data: Uint8Array, byteOffset = 0, byteLength = data.length - byteOffset): number {
    const ws = this.ws;
    if (ws === null || this.closed) return -1;
    if (this.backedUp) return 0;
    const whole = byteOffset === 0 && byteLength === data.length;
    const status = ws.send(whole ? data : data.subarray(byteOffset, byteOffset + byteLength));
    if (status === 0) {
      // Dropped past backpressureLimit: the stream now has a hole, so the client cannot go on.
      this.abort("slow_reader");
      return -1;
    }
    if (status === -1) {
      this.backedUp = true;
      if (this.outputWaitingSince === 0) this.outputWaitingSince = this.ctx.now();
    }
    return byteLength;
  }

  // ---- ClientPort: closing and reading ---------------------------------------------------------

  close(reason: CloseReason): void {
    if (this.closing) return;
    this.closing = true;
    this.reason = reason;
    this.reader.stop();
    if (this.writeOut()) this.closeSocket();
    else this.closeDeadline = this.ctx.now() + this.ctx.options.closeTimeoutMs;
  }

  /** Closes at once, dropping queued output: the client is not taking it. */
  private abort(reason: CloseReason): void {
    this.closing = true;
    this.reason ??= reason;
    this.reader.stop();
    this.output.discard();
    // A close frame would queue behind the output the client is not reading: cut the connection.
    this.ws?.terminate();
  }

  private closeSocket(): void {
    const reason = this.reason ?? "shutdown";
    if (this.closeCode !== 0) this.ws?.close(this.closeCode, this.closeText);
    else this.ws?.close(closeCodeFor(reason), reason);
  }

  pauseReading(): void {
    if (this.closing || this.paused) return;
    this.paused = true;
    this.ws?.pause();
  }

  resumeReading(): void {
    if (this.closing || !this.paused) return;
    this.paused = false;
    this.ws?.resume();
    if (this.partialSince !== 0) this.partialSince = this.ctx.now(); // its clock restarts
    if (this.pausedInput !== null && this.pausedInput.length > 0) {
      queueMicrotask((this.feedPausedInput ??= () => this.drainPausedInput()));
    }
  }

  private drainPausedInput(): void {
    const held = this.pausedInput;
    if (this.paused || this.closing || held === null || held.length === 0) return;
    const at = held.headOffset; // only appended to, then emptied whole: never wraps
    this.feed(held.bytes.subarray(at, at + held.length));
    held.clear();
    this.countHeld();
  }

  // ---- socket events -----------------------------------------------------------------------------

  onMessage(message: string | Uint8Array): void {
    if (this.closing) return;
    this.lastInputAt = this.ctx.now();
    if (typeof message === "string") {
      // The wire contract is the binary framed stream; text has no place in it. Closed here, not as
      // a ClientViolation: those are framing faults every transport shares.
      this.closeCode = TEXT_MESSAGE_CODE;
      this.closeText = TEXT_MESSAGE_TEXT;
      return this.close("malformed_frame");
    }
    if (!this.paused) return this.feed(message);
    // Bun delivers what it had already read after pause(): keep it, within a bound.
    const held = (this.pausedInput ??= new RingBuffer(this.ctx.buffers, this.ctx.options.maxPayloadLength + PAUSED_INPUT_SLACK));
    if (!held.push(message, 0, message.length)) return this.close("pending_input_limit");
    // Counted in the shared budget; a paused client is not closed for it (as on TCP): it is not
    // the one holding the backend up, and Bun has stopped reading it.
    this.countHeld();
  }

  private feed(chunk: Uint8Array): void {
    this.reader.feed(chunk);
    if (this.reader.pendingBytes === 0) this.partialSince = 0;
    // A frame completed in this message: what is pending now is a newer frame, timed afresh.
    else if (this.partialSince === 0 || this.frameDone) this.partialSince = this.ctx.now();
    this.frameDone = false;
    // At the bound, the client whose partial frame would pass it is the one closed, as on TCP.
    if (this.countHeld()) this.close("pending_input_limit");
  }

  /** Brings this port's share of the held-input budget up to date; true when it grew past the budget. */
  private countHeld(): boolean {
    const held = this.reader.heldBytes + (this.pausedInput === null ? 0 : this.pausedInput.capacity);
    const grew = held - this.heldCounted;
    if (grew === 0) return false;
    const tally = this.ctx.held;
    tally.heldInput += grew;
    this.heldCounted = held;
    return grew > 0 && tally.heldInput > this.ctx.options.pendingInputLimit;
  }

  onDrain(): void {
    this.backedUp = false;
    if (this.outputWaitingSince !== 0) this.outputWaitingSince = this.ctx.now(); // it moved: progress
    this.flush();
  }

  onClosed(code: number, reason = ""): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    this.ws = null;
    this.reader.stop();
    this.pausedInput?.clear();
    this.countHeld();
    this.output.discard();
    this.ctx.admission.release(this.remoteAddress);
    this.ctx.portClosed(this);
    // Bun's idle timeout (server.ws_idle_timeout; with pings, a client that did not answer one)
    // closes with 1006 and its own reason. Any other close, with a close frame or without one (a
    // dropped connection, 1006), is the client's, as a TCP client's FIN is on the TCP port.
    this.reason ??= code === 1006 && reason === BUN_IDLE_CLOSE_REASON ? "idle_timeout" : "client_closed";
    this.ctx.events.onClientClosed(this, this.reason);
  }

  /** The sweep's deadlines: a close waiting on output, and a frame started but not finished. */
  checkDeadlines(now: number): void {
    if (this.closed) return;
    if (this.closing) {
      if (this.closeDeadline !== 0 && now >= this.closeDeadline) this.ws?.terminate();
      return;
    }
    const o = this.ctx.options;
    if (this.partialSince !== 0 && !this.paused && now - this.partialSince >= o.partialFrameTimeoutMs) return this.close("partial_frame_timeout");
    // TCP's socket deadlines (the reference's read and write deadlines); a paused client is not
    // read from, so its silence is the gateway's doing.
    const { readTimeoutMs = 0, writeTimeoutMs = 0 } = o;
    if (readTimeoutMs > 0 && !this.paused && now - this.lastInputAt >= readTimeoutMs) return this.close("read_timeout");
    if (!this.backedUp && this.queuedBytes === 0) this.outputWaitingSince = 0;
    else if (writeTimeoutMs > 0 && this.outputWaitingSince !== 0 && now - this.outputWaitingSince >= writeTimeoutMs) this.abort("write_timeout");
  }

  // ---- FrameHandler ------------------------------------------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    this.frameDone = true;
    return this.ctx.events.onClientFrame(this, b, off, len);
  }

  onFramingError(reason: ClientViolation): void {
    this.ctx.events.onClientViolation(this, reason);
  }
}

/**
 * The path of a request's URL (Bun gives an absolute URL built from the Host header), or null
 * when it is not a URL at all: a Host of "a b" or "[zz", a port past 65535, or none (HTTP/1.0).
 * Once per request, never per message.
 */
export function requestPath(url: string): string | null {
  if (!URL.canParse(url)) return null;
  return new URL(url).pathname;
}

/** The waiter handed to a gate that never keeps anyone waiting. */
const NEVER_WAITS: AdmissionWaiter = { admissionDecided: () => {} };

/** S: what the layer above binds to each connection (a Session); the listener never looks at it. */
export class WsListener<S = unknown> {
  private server: Server<WsClientPort<S>> | null = null;
  /** The setting that chose the address, for a rotation's ListenError. */
  private key = "server.ws_listen_addr";
  private readonly ports = new Set<WsClientPort<S>>();
  /** Upgrade requests waiting for the admission gate's answer. */
  private waitingUpgrades = 0;
  private ctx: WsContext<S>;
  private readonly now: () => number;
  private readonly otherConnections: () => number;

  private upgradePolicy: UpgradePolicy;
  private readonly held: HeldInputTally;

  constructor(private readonly parts: WsListenerParts<S>) {
    this.upgradePolicy = parts.upgrade ?? ALLOW_EVERY_UPGRADE;
    this.held = parts.heldInput ?? { heldInput: 0 };
    this.now = parts.now ?? Date.now;
    this.otherConnections = parts.otherConnections ?? (() => 0);
    this.ctx = this.context(parts.options);
  }

  private context(options: WsListenerOptions): WsContext<S> {
    return {
      layout: new ClientFrameLayout(options.maxMessageSize),
      events: this.parts.events,
      buffers: this.parts.buffers,
      options,
      admission: this.parts.admission,
      upgrade: this.upgradePolicy,
      held: this.held,
      now: this.now,
      portClosed: (port) => void this.ports.delete(port),
    };
  }

  /** New limits for connections upgraded from now on (Bun's socket options stay as bound). */
  update(options: Omit<WsListenerOptions, "host" | "port" | "path" | "maxPayloadLength" | "idleTimeoutSec" | "sendPings">, upgrade: UpgradePolicy = this.upgradePolicy): void {
    this.upgradePolicy = upgrade;
    this.ctx = this.context({ ...this.ctx.options, ...options });
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  get hostname(): string {
    return this.server?.hostname ?? this.ctx.options.host;
  }

  get connections(): number {
    return this.ports.size;
  }

  sweep(now = this.now()): void {
    for (const port of this.ports) port.checkDeadlines(now);
  }

  /**
   * Binds the listener, serving TLS (wss) when `tls` is given; throws ListenError naming `key`
   * when the address cannot be had. shareable: bind with SO_REUSEPORT, for a dev code reload
   * whose new listener binds before the old one stops (Bun.serve has no reload of handlers for
   * upgraded sockets, as Bun.listen has). TLS binds shareable too, for rotateTls.
   */
  start(key: string, shareable = false, tls: TlsMaterial | null = null): void {
    this.key = key;
    this.server = this.serve(this.ctx.options.port, shareable || tls !== null, tls);
  }

  /**
   * A new certificate for upgrades from now on; open WebSockets keep theirs and carry on.
   * server.reload({ tls }) keeps the old certificate (bun issue 43815), so a second server binds
   * the address with the new one (SO_REUSEPORT), then the old one stops accepting. Throws ListenError.
   */
  rotateTls(tls: TlsMaterial): void {
    const old = this.server;
    if (old === null) return;
    this.server = this.serve(old.port ?? this.ctx.options.port, true, tls);
    void old.stop(false);
  }

  private serve(port: number, reusePort: boolean, tls: TlsMaterial | null): Server<WsClientPort<S>> {
    const o = this.ctx.options;
    try {
      return Bun.serve<WsClientPort<S>>({
        hostname: o.host,
        port,
        reusePort,
        ...(tls === null ? {} : { tls }),
        // Never Bun's development error page: it shows the source, its path and the cwd to anyone.
        development: false,
        fetch: (req, server) => this.upgrade(req, server),
        // Nothing in fetch is meant to throw; if something does, a plain 500 and one throttled log line.
        error: (error) => {
          this.parts.events.onListenerError("ws", error);
          return new Response("internal error\n", { status: 500 });
        },
        websocket: {
          maxPayloadLength: o.maxPayloadLength,
          idleTimeout: o.idleTimeoutSec,
          sendPings: o.sendPings,
          // Our queue stops sending at the first -1, so Bun holds at most one message past this.
          backpressureLimit: o.writeQueueLimit,
          closeOnBackpressureLimit: false,
          perMessageDeflate: false,
          open: (ws) => {
            ws.data.attach(ws);
            this.ports.add(ws.data);
            this.parts.events.onClientOpen(ws.data);
          },
          message: (ws, message) => ws.data.onMessage(message),
          drain: (ws) => ws.data.onDrain(),
          close: (ws, code, reason) => ws.data.onClosed(code, reason),
        },
      });
    } catch (e) {
      throw listenError(this.key, o.host, port, e);
    }
  }

  private upgrade(req: Request, server: Server<WsClientPort<S>>): Response | undefined | Promise<Response | undefined> {
    const ctx = this.ctx;
    const path = requestPath(req.url);
    if (path === null) return new Response("bad request\n", { status: 400 });
    if (path !== ctx.options.path) return new Response("not found\n", { status: 404 });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("this endpoint speaks WebSocket only\n", { status: 426, headers: { upgrade: "websocket" } });
    }
    const peer = server.requestIP(req)?.address ?? "";
    if (peer === "") return this.refuse("unknown", "no_peer_address", 400);
    // Behind a trusted proxy the client is who its X-Forwarded-For says (upgrade-request.ts).
    const forwardedFor = req.headers.get("x-forwarded-for");
    const forwarded = forwardedClientAddress(peer, forwardedFor, ctx.upgrade.trustedProxies);
    if (forwarded.malformed) this.parts.events.onForwardedForMalformed(peer, forwardedFor ?? "");
    const address = forwarded.address;
    if (!ctx.upgrade.origins.allows(req.headers.get("origin"))) return this.refuse(address, "origin_not_allowed", 403);
    if (this.ports.size + this.waitingUpgrades + this.otherConnections() >= ctx.options.maxConnections) return this.refuse(address, "max_connections", 503);
    if (!ctx.admission.answersAtOnce) return this.upgradeWhenAdmitted(req, server, address);
    const refusal = ctx.admission.request(address, NEVER_WAITS);
    if (refusal === ADMISSION_PENDING) throw new Error("an admission gate that answers at once returned pending");
    if (refusal !== null) return this.refuse(address, refusal, refusalHttpStatus(refusal));
    return this.upgradeAdmitted(req, server, address);
  }

  private upgradeAdmitted(req: Request, server: Server<WsClientPort<S>>, address: string): Response | undefined {
    const ctx = this.ctx;
    const port = new WsClientPort<S>(address, ctx, parseTraceparent(req.headers.get("traceparent")));
    if (server.upgrade(req, { data: port })) return undefined;
    ctx.admission.release(address);
    return new Response("WebSocket upgrade failed\n", { status: 400 });
  }

  /**
   * A worker's gate asks the supervisor: the request waits for the answer (Bun upgrades from an
   * async fetch). Counted against max_connections meanwhile, as an open connection would be.
   */
  private upgradeWhenAdmitted(req: Request, server: Server<WsClientPort<S>>, address: string): Promise<Response | undefined> {
    this.waitingUpgrades++;
    return new Promise((resolve) => {
      const waiter: AdmissionWaiter = {
        admissionDecided: (refusal) => {
          this.waitingUpgrades--;
          resolve(refusal === null ? this.upgradeAdmitted(req, server, address) : this.refuse(address, refusal, refusalHttpStatus(refusal)));
        },
      };
      const answer = this.ctx.admission.request(address, waiter);
      if (answer !== ADMISSION_PENDING) waiter.admissionDecided(answer);
    });
  }

  private refuse(address: string, refusal: string, status: number): Response {
    this.parts.events.onConnectionRefused(address, "ws", refusal);
    return new Response(`connection refused: ${refusal}\n`, { status });
  }

  /** Stops accepting; live connections carry on. */
  stop(): void {
    void this.server?.stop(false);
    this.server = null;
  }
}
