import type { Socket } from "bun";
import type { BufferPool } from "../net/buffer-pool.ts";
import { copyBytes } from "../bytes/copy-bytes.ts";
import { FrameReader } from "../net/frame-reader.ts";
import { BatchedSocketWriter, type SharedQueueTally } from "../net/socket-writer.ts";
import { CLIENT_HEADER_SIZE, MAX_CLIENT_BODY } from "../protocol/client-frame.ts";
import type { BackendFrameLayout } from "../protocol/layouts.ts";
import {
  BACKEND_FRAME_PREFIX,
  GATE_HEADER_SIZE,
  GATE_HEADER_TRACE_SIZE,
  OpCode,
  SERVER_HEADER_SIZE,
  PING_BODY_SIZE,
  isOpCode,
  readOpCode,
  readServerType,
  readSessionIdHi,
  readSessionIdLo,
  writeBackendFrameHeader,
  writeTrans,
  writeTransWithTrace,
  clearServerId,
} from "../protocol/server-frame.ts";
import type { BackendFramingViolation, BackendViolation } from "../protocol/violations.ts";
import type { CloseReason } from "../net/client-port.ts";
import type { BackendLink, Session } from "../session/session.ts";
import { SessionList } from "../session/session-list.ts";
import { LatencyDirection, type BackendTally, bump } from "../telemetry/counters.ts";
import type { LatencyHistogram } from "../telemetry/latency-histogram.ts";
import { type SpanIdSource, TraceId } from "../protocol/trace-context.ts";
import { LogThrottle } from "../log/logger.ts";
import { CloseCause, type ConnectionCloseCause, framingViolationCause } from "./close-cause.ts";
import { type DialFailure, classifyDialError } from "./dial-failure.ts";
import { FairPausing } from "./fair-pausing.ts";
import { PingHealth } from "./ping-health.ts";

// One TCP connection to a backend endpoint, shared by many sessions (or owned by one, in
// dedicated mode): the transport and the frame dispatch. Outgoing frames are encoded straight into
// a batched writer; incoming frames are validated here and handed to the session layer with their
// fields already checked. Which clients to pause while the queue is congested is FairPausing's;
// when to Ping and when silence means the backend is gone is PingHealth's.
//
// In per_session mode the connection speaks the reference gateway's TCP contract instead: it
// carries exactly one session, sends nothing but Trans (ServerID 0), never Pings, and hands every
// reply to that session whatever the gate header's session ID says. With no Ping, a dead backend
// is found by the socket: TCP keep-alive after connection_pool.read_timeout of silence, and a write
// deadline (connection_pool.write_timeout) on bytes the backend stops accepting.

/** Where validated backend->gateway frames go (implemented by the session layer). */
export interface BackendFrameHandler {
  /** A Trans for session (hi, lo): frame at b[off, off+len), Type and body size already in range. */
  onTrans(conn: BackendConnection, hi: number, lo: number, b: Uint8Array, off: number, len: number): void;
  onKick(conn: BackendConnection, hi: number, lo: number, reason: string): void;
  /** Multicast, structure checked: `count` i64 IDs at idsOff, client body at bodyOff. */
  onMulticast(conn: BackendConnection, b: Uint8Array, off: number, count: number, idsOff: number, bodyOff: number, bodyLen: number): void;
  onBroadcast(conn: BackendConnection, b: Uint8Array, off: number, len: number): void;
  /** Every frame of one received chunk has been handled: write what they queued for clients. */
  onChunkEnd(): void;
  /** A frame dropped (framing intact) or, for framing violations, the connection is closing. */
  onViolation(conn: BackendConnection, reason: BackendViolation): void;
}

/** Connection lifecycle, for the endpoint pool that owns the connection. */
export interface BackendConnectionOwner {
  /** Every connection of the owner's endpoint: their sessions are the endpoint's (a Broadcast goes to all). */
  links(): Iterable<BackendConnection>;
  onOpen(conn: BackendConnection): void;
  /** A dial attempt failed and another follows after the retry delay (per_session mode). */
  onDialRetry(conn: BackendConnection): void;
  /**
   * The backend proved it works: a Pong, or (first: true, once per connection) the first valid
   * frame of any kind. A TCP connect alone proves nothing (a backend may accept and then reset).
   */
  onHealthy(conn: BackendConnection, first: boolean): void;
  /** A Ping sent by this gateway was answered after rttSeconds. */
  onPong(conn: BackendConnection, rttSeconds: number): void;
  /** A session carried by conn ended. */
  detach(session: Session, reason: CloseReason): void;
  /** wasOpen: false when the dial itself failed or timed out. */
  onClosed(conn: BackendConnection, wasOpen: boolean): void;
  /**
   * The endpoint's violation log throttle, shared by its connections: a backend that breaks the
   * contract on every connection (and is re-dialled) would otherwise log once per dial.
   */
  readonly violationLog: LogThrottle;
}

export interface BackendConnectionOptions {
  readonly endpoint: string;
  readonly host: string;
  readonly port: number;
  readonly gatewayName: string;
  readonly lifecycleMessages: boolean;
  readonly dialTimeoutMs: number;
  readonly highWater: number;
  readonly limit: number;
  /** Bound on the bytes queued toward all backends together (backend.write_queue_total_limit). */
  readonly totalLimit: number;
  readonly initialBuffer: number;
  /** Send Trans with the 33-byte gate header carrying the session's W3C trace context. */
  readonly traceContext: boolean;
  /** The reference gateway's contract (backend.mode per_session): see the comment at the top. */
  readonly perSession: boolean;
  /** Dial attempts after a failed one (connection_pool.max_retries in per_session mode, else 0). */
  readonly dialRetries: number;
  /** The wait between those attempts (connection_pool.retry_delay). */
  readonly dialRetryDelayMs: number;
  /** Bytes queued and none accepted by the socket for this long closes the connection; 0: no deadline. */
  readonly writeTimeoutMs: number;
  /** TCP keep-alive probes start after this much silence from the backend (connection_pool.read_timeout). */
  readonly keepAliveMs: number;
}

export type BackendConnectionState = "dialing" | "open" | "closed";

export type { ConnectionCloseCause } from "./close-cause.ts";

/** Process-wide instruments and shared counts a connection reports to. */
export interface BackendTelemetry {
  readonly latency: LatencyHistogram<"upstream" | "downstream">;
  /** Span IDs for the frames of a session that has none of its own (session.spanId). */
  readonly spans: SpanIdSource;
  /** Bytes queued toward all backends, held against BackendConnectionOptions.totalLimit. */
  readonly totalQueued: SharedQueueTally;
}

/**
 * A backend's wire-contract violations are logged at most once per reason and endpoint per 10 s
 * (with the count suppressed since): every one is counted in backend_violations_total.
 */
export function newViolationLog(): LogThrottle {
  // 16 keys: one per reason, so the union's size is plenty.
  return new LogThrottle(10_000, 16);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

const socketHandlers = {
  binaryType: "uint8array" as const,
  open(socket: Socket<BackendConnection>) {
    socket.data.onSocketOpen(socket);
  },
  data(socket: Socket<BackendConnection>, chunk: Uint8Array) {
    socket.data.onSocketData(chunk);
  },
  drain(socket: Socket<BackendConnection>) {
    socket.data.onSocketDrain();
  },
  close(socket: Socket<BackendConnection>) {
    socket.data.onSocketClosed(socket);
  },
  error(socket: Socket<BackendConnection>) {
    socket.data.onSocketClosed(socket);
  },
  connectError(socket: Socket<BackendConnection>, error: Error) {
    socket.data.onDialError(error);
  },
};

export class BackendConnection implements BackendLink {
  readonly endpoint: string;
  state: BackendConnectionState = "dialing";
  /** Sessions whose link is this connection. */
  readonly sessions = new SessionList();
  private socket: Socket<BackendConnection> | null = null;
  private readonly writer: BatchedSocketWriter;
  private readonly gateSize: number;
  private readonly reader: FrameReader<BackendFramingViolation>;
  private readonly pausing: FairPausing;
  private readonly pings = new PingHealth(Date.now());
  private dialTimer: ReturnType<typeof setTimeout> | null = null;
  /** Dial attempts that failed and were retried (per_session mode). */
  private dialRetries = 0;
  /** A dial attempt is in flight and has not timed out: its connect error, if any, is the current one. */
  private attemptInFlight = false;
  /** Socket writes that moved bytes, and the check that last saw the queue stuck (write deadline). */
  private writes = 0;
  private writesAtCheck = 0;
  private writeStuckSince = -1;
  private endWhenFlushed = false;
  /** The chunk whose frames are being handled (frames completed in the reader's ring are not in it). */
  private chunk: Uint8Array | null = null;
  private readonly dialStartedAt = performance.now();
  /** Trans frames queued since the last write, and when the first of them was queued. */
  private unsentFrames = 0;
  private unsentSince = 0;
  /** Ping and Pong frames received: they reach no client, so they are not downstream latency. */
  private healthFrames = 0;
  /** Why it closed; the first cause wins (a close after a timeout is still the timeout's). */
  closeCause: ConnectionCloseCause = CloseCause.PeerClosed;
  /** Why the dial failed (null while it has not). */
  dialFailure: DialFailure | null = null;
  /** Set by the first Pong or valid frame; until then the connection is only a TCP connect. */
  healthy = false;

  constructor(
    private readonly options: BackendConnectionOptions,
    layout: BackendFrameLayout,
    pool: BufferPool,
    private readonly owner: BackendConnectionOwner,
    private readonly handler: BackendFrameHandler,
    private readonly tally: BackendTally,
    private readonly telemetry: BackendTelemetry,
  ) {
    this.endpoint = options.endpoint;
    this.gateSize = options.traceContext ? GATE_HEADER_TRACE_SIZE : GATE_HEADER_SIZE;
    this.writer = new BatchedSocketWriter(
      options.initialBuffer,
      options.highWater,
      options.limit,
      () => this.onRelieved(),
      () => this.onWritten(),
      telemetry.totalQueued,
    );
    this.pausing = new FairPausing(options.highWater, options.limit, this.writer, tally);
    this.reader = new FrameReader(layout, this, pool);
  }

  /** Counts a backend_errors_total event for this endpoint (allocation-free for a known type). */
  countError(errorType: string): void {
    bump(this.tally.errors, errorType);
  }

  /**
   * Whether a violation of this reason should be logged now (see newViolationLog): -1 to
   * stay quiet, else how many were suppressed since the last line.
   */
  violationLogGate(reason: BackendViolation, now: number): number {
    return this.owner.violationLog.admit(reason, now);
  }

  /** Seconds the dial took, once open. */
  setupSeconds = 0;

  dial(): void {
    this.attemptInFlight = true;
    this.dialTimer = setTimeout(this.onDialTimeout, this.options.dialTimeoutMs);
    Bun.connect({ hostname: this.options.host, port: this.options.port, socket: socketHandlers, data: this }).catch(() => {
      // connectError already reported it; a rejection here must not become unhandled.
    });
  }

  private readonly onDialTimeout = (): void => {
    this.dialTimer = null;
    this.attemptInFlight = false;
    if (this.retryDial()) return;
    this.dialFailure = "timeout";
    this.close(CloseCause.DialTimeout);
  };

  /**
   * A dial attempt failed: tries again after the retry delay while attempts are left (per_session
   * mode, as the reference) and the session still wants the connection. An attempt that timed out
   * may still connect later; the first socket to open is kept and any later one closed.
   */
  private retryDial(): boolean {
    if (this.state !== "dialing" || this.dialRetries >= this.options.dialRetries || this.endWhenFlushed) return false;
    this.dialRetries++;
    this.clearDialTimer();
    this.owner.onDialRetry(this);
    this.dialTimer = setTimeout(() => {
      this.dialTimer = null;
      if (this.state === "dialing") this.dial();
    }, this.options.dialRetryDelayMs);
    return true;
  }

  /** This connection and its siblings: together they carry every session of the endpoint. */
  get endpointLinks(): Iterable<BackendConnection> {
    return this.owner.links();
  }

  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  /** The queue passed high water and has not drained to half of it since. */
  get lagging(): boolean {
    return this.writer.lagging;
  }

  /** Clients paused for this connection's congestion (for stats and tests). */
  get pausedClients(): number {
    return this.pausing.pausedCount;
  }

  // ---- BackendLink ---------------------------------------------------------------------------

  sendConnect(session: Session): void {
    if (!this.options.lifecycleMessages) return;
    const json = JSON.stringify({
      client_ip: session.client.remoteAddress,
      protocol: session.client.protocol,
      connect_time: session.createdAt,
      gateway: this.options.gatewayName,
    });
    this.sendControl(session, OpCode.Connect, textEncoder.encode(json));
  }

  sendTrans(session: Session, b: Uint8Array, off: number, len: number): boolean {
    const size = SERVER_HEADER_SIZE + this.gateSize + len - CLIENT_HEADER_SIZE;
    if (this.telemetry.totalQueued.queued + size > this.options.totalLimit) {
      this.tally.totalLimitRejections++;
      return false;
    }
    const at = this.writer.reserve(size);
    if (at < 0) {
      this.tally.connectionLimitRejections++;
      return false;
    }
    const w = this.writer;
    if (this.gateSize === GATE_HEADER_TRACE_SIZE) {
      writeTransWithTrace(w.bytes, w.view, at, b, off, len, session.hi, session.lo, session.traceId ?? TraceId.INVALID, session.spanId ?? this.telemetry.spans);
    } else {
      writeTrans(w.bytes, w.view, at, b, off, len, session.hi, session.lo);
    }
    if (this.options.perSession) clearServerId(w.bytes, at); // the reference sends its backends ServerID 0
    if (this.unsentFrames++ === 0) this.unsentSince = performance.now();
    this.tally.framesOut++;
    this.tally.bytesOut += size;
    this.pausing.onQueued(session, size);
    return true;
  }

  release(session: Session, reason: CloseReason): void {
    this.pausing.forget(session.client);
    this.owner.detach(session, reason);
  }

  /** Opcode 3 (when lifecycle messages are on); the connection forgets the session. */
  sendDisconnect(session: Session, reason: CloseReason): void {
    if (this.options.lifecycleMessages && this.state !== "closed") {
      this.sendControl(session, OpCode.Disconnect, textEncoder.encode(JSON.stringify({ reason, disconnect_time: Date.now() })));
    }
    this.sessions.remove(session);
  }

  /** Binds a session to this connection (it was routed here, or moved here from a lost sibling). */
  adopt(session: Session): void {
    this.sessions.add(session);
    session.link = this;
    this.pausing.join(session);
  }

  /** Drops what is queued and closes at once (a dedicated session ended while its backend lags). */
  dropQueued(): void {
    this.close(CloseCause.SessionEnded);
  }

  /**
   * Closes the connection; the owner hears about it through onClosed. A graceful close sends FIN
   * after what the kernel holds; otherwise (a broken or unresponsive backend) it is dropped at once.
   */
  close(cause: ConnectionCloseCause, graceful = false): void {
    if (this.state === "closed") return;
    if (this.closeCause === CloseCause.PeerClosed) this.closeCause = cause;
    if (this.socket === null) this.finish();
    else if (graceful) this.socket.end();
    else this.socket.terminate();
  }

  /**
   * Ends the socket once what is queued has been written (a dedicated connection whose session
   * ended). One still dialling writes it once open (within dial_timeout): a session that ends
   * before its dial completes still reaches its backend with Connect, its frames and Disconnect.
   */
  closeAfterFlush(): void {
    this.endWhenFlushed = true;
    if (this.state === "open") this.onSocketDrain();
  }

  /** The pool is shutting down: as closeAfterFlush, but a dial still in flight is abandoned. */
  shutDown(): void {
    if (this.state === "dialing") this.close(CloseCause.PoolClosing, true);
    else this.closeAfterFlush();
  }

  // ---- socket events -------------------------------------------------------------------------

  onSocketOpen(socket: Socket<BackendConnection>): void {
    if (this.state !== "dialing") {
      // Timed out while the dial was still in flight, or an earlier retried attempt opened first.
      socket.terminate();
      return;
    }
    this.clearDialTimer();
    this.socket = socket;
    this.state = "open";
    this.setupSeconds = (performance.now() - this.dialStartedAt) / 1000;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.options.keepAliveMs);
    this.writer.attach(socket);
    if (this.options.perSession) {
      // No Ping in this contract: the connect is all the proof there is.
      this.owner.onOpen(this);
      this.proveHealthy();
    } else {
      // Asked at once, so a backend that is back proves it within a round trip, not a ping_interval.
      this.sendPing(Date.now());
      this.owner.onOpen(this);
    }
    if (this.endWhenFlushed) this.onSocketDrain();
  }

  onDialError(error: Error): void {
    // An attempt that timed out (and was retried) may still fail later: that is no news.
    if (this.state !== "dialing" || !this.attemptInFlight) return;
    this.attemptInFlight = false;
    if (this.retryDial()) return;
    this.dialFailure ??= classifyDialError(error);
    this.finish();
  }

  /** True for bytes of the chunk being handled: they stay intact until its onChunkEnd. */
  inCurrentChunk(b: Uint8Array): boolean {
    return b === this.chunk;
  }

  onSocketData(chunk: Uint8Array): void {
    this.chunk = chunk;
    const startedAt = performance.now();
    this.pings.onReceived(Date.now());
    const framesBefore = this.tally.framesIn - this.healthFrames;
    this.tally.bytesIn += chunk.length;
    this.reader.feed(chunk);
    this.handler.onChunkEnd();
    this.chunk = null;
    // The chunk's frames have now been written to their clients: one observation per chunk.
    // Ping/Pong reach no client: they are not part of the downstream latency.
    const frames = this.tally.framesIn - this.healthFrames - framesBefore;
    if (frames > 0) {
      this.telemetry.latency.observe(LatencyDirection.Downstream, (performance.now() - startedAt) / 1000, frames);
    }
  }

  onSocketDrain(): void {
    this.writer.flush();
    if (this.endWhenFlushed && this.writer.queuedBytes === 0) this.close(CloseCause.SessionEnded, true);
  }

  onSocketClosed(socket: Socket<BackendConnection>): void {
    if (this.socket !== null && socket !== this.socket) return; // a surplus attempt, closed on open
    this.finish();
  }

  // ---- FrameHandler (called by the reader) ---------------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    this.tally.framesIn++;
    const opcode = readOpCode(b, off);
    switch (opcode) {
      case OpCode.Trans: {
        const reason = checkClientBound(b, off, len - BACKEND_FRAME_PREFIX);
        if (reason !== null) this.handler.onViolation(this, reason);
        else {
          if (!this.healthy) this.proveHealthy();
          if (this.options.perSession) this.transForOwnSession(b, off, len);
          else this.handler.onTrans(this, readSessionIdHi(b, off), readSessionIdLo(b, off), b, off, len);
        }
        break;
      }
      case OpCode.Multicast:
        this.multicast(b, off, len);
        break;
      case OpCode.Broadcast: {
        const reason = checkClientBound(b, off, len - BACKEND_FRAME_PREFIX);
        if (reason !== null) this.handler.onViolation(this, reason);
        else {
          if (!this.healthy) this.proveHealthy();
          this.handler.onBroadcast(this, b, off, len);
        }
        break;
      }
      case OpCode.Kick: {
        if (!this.healthy) this.proveHealthy();
        const own = this.options.perSession ? this.sessions.first : null;
        if (own !== null) this.handler.onKick(this, own.hi, own.lo, kickReason(b, off, len));
        else this.handler.onKick(this, readSessionIdHi(b, off), readSessionIdLo(b, off), kickReason(b, off, len));
        break;
      }
      case OpCode.Ping:
        this.healthFrames++;
        if (len - BACKEND_FRAME_PREFIX !== PING_BODY_SIZE) this.handler.onViolation(this, "ping_malformed");
        else {
          if (!this.healthy) this.proveHealthy();
          this.sendPong(b, off);
        }
        break;
      case OpCode.Pong:
        this.healthFrames++;
        if (len - BACKEND_FRAME_PREFIX !== PING_BODY_SIZE) this.handler.onViolation(this, "ping_malformed");
        else this.onPong();
        break;
      default:
        this.handler.onViolation(this, isOpCode(opcode) ? "unexpected_opcode" : "unknown_opcode");
    }
    return this.state !== "closed";
  }

  onFramingError(reason: BackendFramingViolation): void {
    this.handler.onViolation(this, reason);
    this.close(framingViolationCause(reason));
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * per_session: the connection is the session, so the gate header's session ID is not read, and
   * the client gets ServerID 0 (as from the reference). A reply after the session ended is dropped.
   */
  private transForOwnSession(b: Uint8Array, off: number, len: number): void {
    const own = this.sessions.first;
    if (own === null) return this.handler.onViolation(this, "unknown_session");
    clearServerId(b, off);
    this.handler.onTrans(this, own.hi, own.lo, b, off, len);
  }

  private multicast(b: Uint8Array, off: number, len: number): void {
    const bodyStart = off + BACKEND_FRAME_PREFIX;
    const bodyLen = len - BACKEND_FRAME_PREFIX;
    if (bodyLen < 2) return this.handler.onViolation(this, "multicast_malformed");
    const count = b[bodyStart]! | (b[bodyStart + 1]! << 8);
    const clientBodyLen = bodyLen - 2 - count * 8;
    if (clientBodyLen < 0) return this.handler.onViolation(this, "multicast_malformed");
    const reason = checkClientBound(b, off, clientBodyLen);
    if (reason !== null) return this.handler.onViolation(this, reason);
    if (!this.healthy) this.proveHealthy();
    this.handler.onMulticast(this, b, off, count, bodyStart + 2, bodyStart + 2 + count * 8, clientBodyLen);
  }

  private sendControl(session: Session, opcode: OpCode, body: Uint8Array): void {
    const at = this.writer.reserve(BACKEND_FRAME_PREFIX + body.length);
    if (at < 0) {
      bump(this.tally.errors, "notification_failed"); // at the hard bound: the session is being closed anyway
      return;
    }
    const out = this.writer.bytes;
    writeBackendFrameHeader(this.writer.view, at, GATE_HEADER_SIZE + body.length, 0, 0, opcode, session.hi, session.lo);
    out.set(body, at + BACKEND_FRAME_PREFIX);
    this.tally.framesOut++;
    this.tally.bytesOut += BACKEND_FRAME_PREFIX + body.length;
  }

  /**
   * Active health check, called periodically: Ping a connection that has been silent for
   * pingIntervalMs; close one whose Ping went unanswered for pingTimeoutMs (cause ping_timeout).
   * In per_session mode there is no Ping: only the write deadline is checked.
   */
  healthCheck(now: number, pingIntervalMs: number, pingTimeoutMs: number): void {
    if (this.state !== "open") return;
    if (this.options.writeTimeoutMs > 0 && this.writeDeadlinePassed(now)) return this.close(CloseCause.WriteTimeout);
    if (this.options.perSession) return;
    const due = this.pings.check(now, pingIntervalMs, pingTimeoutMs);
    if (due === "timeout") this.close(CloseCause.PingTimeout);
    else if (due === "ping") this.sendPing(now);
  }

  /**
   * The write deadline, sampled at each health check rather than timed per write: stuck means
   * bytes queued and no socket write moved any since the previous check. So it fires between
   * write_timeout and write_timeout plus one check interval after the backend stopped reading.
   */
  private writeDeadlinePassed(now: number): boolean {
    const progressed = this.writes !== this.writesAtCheck;
    this.writesAtCheck = this.writes;
    if (progressed || this.writer.queuedBytes === 0) {
      this.writeStuckSince = -1;
      return false;
    }
    if (this.writeStuckSince < 0) this.writeStuckSince = now;
    return now - this.writeStuckSince >= this.options.writeTimeoutMs;
  }

  private sendPing(now: number): void {
    const at = this.writer.reserve(BACKEND_FRAME_PREFIX + PING_BODY_SIZE);
    if (at < 0) return;
    const out = this.writer.bytes;
    writeBackendFrameHeader(this.writer.view, at, GATE_HEADER_SIZE + PING_BODY_SIZE, 0, 0, OpCode.Ping, 0, 0);
    // The body is opaque to the backend; the gateway times the round trip itself.
    out.fill(0, at + BACKEND_FRAME_PREFIX, at + BACKEND_FRAME_PREFIX + PING_BODY_SIZE);
    this.pings.onPingSent(now, performance.now());
  }

  private onPong(): void {
    const rttSeconds = this.pings.onPong(performance.now());
    if (rttSeconds < 0) return; // unsolicited: nothing to time
    this.owner.onPong(this, rttSeconds);
    const first = !this.healthy;
    this.healthy = true;
    this.owner.onHealthy(this, first);
  }

  private proveHealthy(): void {
    this.healthy = true;
    this.pings.onValidFrame();
    this.owner.onHealthy(this, true);
  }

  private sendPong(b: Uint8Array, off: number): void {
    const at = this.writer.reserve(BACKEND_FRAME_PREFIX + PING_BODY_SIZE);
    if (at < 0) return;
    const out = this.writer.bytes;
    writeBackendFrameHeader(this.writer.view, at, GATE_HEADER_SIZE + PING_BODY_SIZE, 0, 0, OpCode.Pong, 0, 0);
    copyBytes(b, off + BACKEND_FRAME_PREFIX, out, at + BACKEND_FRAME_PREFIX, PING_BODY_SIZE);
  }

  private onWritten(): void {
    this.writes++;
    this.recordUpstreamLatency();
    if (this.writer.queuedBytes === 0) this.pausing.newWindow();
  }

  /** Every Trans queued since the last write has now reached the socket. */
  private recordUpstreamLatency(): void {
    if (this.unsentFrames === 0) return;
    this.telemetry.latency.observe(LatencyDirection.Upstream, (performance.now() - this.unsentSince) / 1000, this.unsentFrames);
    this.unsentFrames = 0;
  }

  /** The queue has drained to half of high water: resume a batch of paused clients (see RESUME_BATCH). */
  private onRelieved(): void {
    if (this.pausing.resumeBatch()) this.writer.requestRelief();
  }

  private finish(): void {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    this.state = "closed";
    this.clearDialTimer();
    this.reader.stop();
    this.tally.queueDroppedBytes += this.writer.queuedBytes;
    this.writer.detach();
    this.socket = null;
    this.pausing.resumeAll();
    this.owner.onClosed(this, wasOpen);
  }

  private clearDialTimer(): void {
    if (this.dialTimer !== null) clearTimeout(this.dialTimer);
    this.dialTimer = null;
  }
}

/** Checks that a backend frame can become a client frame: Type fits a u16, body fits a u16 Length. */
function checkClientBound(b: Uint8Array, off: number, clientBodyLen: number): BackendViolation | null {
  const type = readServerType(b, off);
  if (type < 0 || type > 0xffff) return "type_out_of_range";
  if (clientBodyLen > MAX_CLIENT_BODY) return "body_too_large";
  return null;
}

function kickReason(b: Uint8Array, off: number, len: number): string {
  if (len <= BACKEND_FRAME_PREFIX) return "";
  try {
    const parsed: unknown = JSON.parse(textDecoder.decode(b.subarray(off + BACKEND_FRAME_PREFIX, off + len)));
    if (parsed !== null && typeof parsed === "object" && "reason" in parsed) return String(parsed.reason).slice(0, 200);
  } catch {
    // an unparseable reason is still a kick
  }
  return "";
}
