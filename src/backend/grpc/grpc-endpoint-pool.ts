import * as grpc from "@grpc/grpc-js";
import type { GatewayMetrics } from "../../admin/metrics.ts";
import type { Logger, ThrottledLog } from "../../log/logger.ts";
import type { CloseReason } from "../../net/client-port.ts";
import { CLIENT_HEADER_SIZE, MAX_CLIENT_BODY, MAX_CLIENT_FRAME, writeClientHeader, readClientMessageId } from "../../protocol/client-frame.ts";
import type { BackendViolation } from "../../protocol/violations.ts";
import type { BackendFrameSource } from "../../session/backend-side.ts";
import type { BackendLink, Session } from "../../session/session.ts";
import { SessionList } from "../../session/session-list.ts";
import { type BackendTally, bump } from "../../telemetry/counters.ts";
import type { Clock, ClockTimer } from "../../time/clock.ts";
import type { BackendPool } from "../backend-pool.ts";
import type { BackendTelemetry } from "../backend-connection.ts";
import { newViolationLog } from "../backend-connection.ts";
import { BreakerState, CircuitBreaker, type BreakerSettings } from "../circuit-breaker.ts";
import { breakerTransitionLog } from "../breaker-log.ts";
import { FairPausing } from "../fair-pausing.ts";
import { PacketType, type SessionPacketFields, connectPacket, disconnectPacket, gamePacket, sessionPacketFields } from "./game-packet.ts";
import { type ReceivedPacket, TOO_MANY_TARGETS } from "./game-packet-codec.ts";

// One backend address speaking the reference's gRPC transport: one GameGatewayService.StreamPackets
// stream per address, opened with request metadata gateway-name, multiplexing every session bound
// there (connect / disconnect lifecycle packets, game messages, kicks, multicast).
//
// Flow control: packets go to the stream while its write() accepts them; once write() returns false
// (HTTP/2 flow control: the backend is not taking them) they wait in a bounded queue for 'drain'.
// Past high water the heaviest senders' clients are paused (FairPausing, as for TCP); at the hard
// bound a client's frame is refused and the client closed (backend_congested).
//
// A lost stream closes its sessions (reason backend_lost) and is opened again after a capped
// exponential back-off with jitter: connection_pool.retry_delay doubling up to
// grpc.reconnect_interval, at most grpc.max_reconnect_attempts times in a row (0: forever).
// grpc.heartbeat_interval is the HTTP/2 keepalive; grpc.connection_timeout bounds each attempt.

export interface GrpcPoolSettings {
  readonly gatewayName: string;
  readonly breaker: BreakerSettings;
  readonly heartbeatIntervalMs: number;
  readonly connectionTimeoutMs: number;
  /** The first re-open waits this long (jittered), doubling per failure up to reconnectIntervalMs. */
  readonly retryDelayMs: number;
  readonly reconnectIntervalMs: number;
  /** Failed attempts in a row before the stream is given up (0: never). */
  readonly maxReconnectAttempts: number;
  /**
   * Packets queued and none accepted by the stream for this long: the stream is given up as lost
   * (write_timeout) and opened again. A backend whose process answers HTTP/2 pings but whose
   * handler stopped reading is found only this way, and a client paused behind it is not read
   * from, so its leaving (the FIN waits behind its unread bytes) is seen only once it is resumed.
   */
  readonly writeTimeoutMs: number;
  /**
   * The largest GamePacket accepted from the backend (grpc.max_receive_message_size). grpc-js has
   * no per-message refusal: a larger packet fails the stream (RESOURCE_EXHAUSTED), closing every
   * session on it, as grpc-go does at its 4 MiB default. A packet under it whose payload does not
   * fit a client frame (64 KiB) is dropped alone (body_too_large).
   */
  readonly maxReceiveMessageSize: number;
  readonly highWater: number;
  readonly limit: number;
  readonly totalLimit: number;
  readonly traceContext: boolean;
}

/** Where packets from the backend go (BackendRelay implements it). */
export interface GrpcPacketHandler {
  /** A client frame (8-byte header + body) for session (hi, lo); frame is reused after the call. */
  onClientFrame(conn: BackendFrameSource, hi: number, lo: number, frame: Uint8Array, off: number, len: number): void;
  /** The same frame to each listed session ((hi, lo) pairs), once per session however often it is listed. */
  onMulticastFrame(conn: BackendFrameSource, targets: readonly number[], frame: Uint8Array, off: number, len: number): void;
  onKick(conn: BackendFrameSource, hi: number, lo: number, reason: string): void;
  onChunkEnd(): void;
  onViolation(conn: BackendFrameSource, reason: BackendViolation): void;
}

export interface GrpcPoolDeps {
  readonly settings: GrpcPoolSettings;
  readonly handler: GrpcPacketHandler;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly throttledLog: ThrottledLog;
  readonly telemetry: BackendTelemetry;
  /** The service's client constructor (grpc-transport.ts). */
  readonly clientConstructor: grpc.ServiceClientConstructor;
  /** Re-open timers and the breaker's windows run on it (the gateway's clock). */
  readonly clock: Clock;
}

type StreamState = "connecting" | "open" | "down" | "given_up" | "closed";

/** Packets go out already encoded (game-packet.ts) and come in decoded by game-packet-codec.ts (grpc-transport.ts). */
type PacketStream = grpc.ClientDuplexStream<Buffer, ReceivedPacket>;

export class GrpcEndpointPool implements BackendPool, BackendLink, BackendFrameSource {
  readonly breaker: CircuitBreaker;
  readonly violationLog = newViolationLog();
  readonly transport = "grpc";
  /** Every session bound here: the stream carries them all. */
  private readonly bound = new SessionList();
  /** The stream as the relay sees an endpoint's links (a Broadcast would reach them all). */
  private readonly links: readonly { readonly sessions: SessionList }[] = [{ sessions: this.bound }];
  private readonly fields = new Map<Session, SessionPacketFields>();
  private readonly tally: BackendTally;
  private readonly pausing: FairPausing;
  private readonly client: grpc.Client & Record<string, unknown>;
  private state: StreamState = "down";
  private call: PacketStream | null = null;
  /** Packets waiting for the stream: it is opening, or its write() said wait for 'drain'. */
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  /**
   * Sizes of the packets given to the stream whose write has not completed (handed to the socket),
   * oldest first: they count against the bounds as much as those still waiting.
   */
  private readonly inFlight: number[] = [];
  private inFlightHead = 0;
  /** Bytes waiting plus bytes in flight: what the queue bounds are held against. */
  private queued = 0;
  /** The stream's write() returned false: wait for 'drain'. */
  private blocked = false;
  /** Counts opened streams: a write completing on a stream since lost is not this one's. */
  private generation = 0;
  /** Passed high water; relieved once the queue is at half of it. */
  private congestedFlag = false;
  private failures = 0;
  /** Writes the stream has completed; compared at each health check (the write deadline). */
  private writesDone = 0;
  private writesAtCheck = 0;
  /** When a health check first found packets queued and no write completed since the previous one; -1: not stuck. */
  private writeStuckSince = -1;
  private reopenTimer: ClockTimer | null = null;
  private reachableFlag = false;
  private flushScheduled = false;
  private flushedOnClose = false;
  /** The routes no longer name this address: a lost stream is not opened again. */
  private retired = false;
  private readonly scratch = new Uint8Array(MAX_CLIENT_FRAME);

  constructor(
    readonly endpoint: string,
    private readonly deps: GrpcPoolDeps,
  ) {
    const s = deps.settings;
    this.tally = deps.metrics.backendTally(endpoint);
    this.pausing = new FairPausing(s.highWater, s.limit, this, this.tally);
    deps.metrics.circuitBreakerState.set({ backend: endpoint }, BreakerState.Closed);
    deps.metrics.backendTimeouts.inc({ backend: endpoint }, 0);
    deps.metrics.backendRetries.inc({ backend: endpoint }, 0);
    deps.metrics.backendConnectionsActive.inc({ backend: endpoint }, 0);
    const logTransition = breakerTransitionLog(deps.log, endpoint);
    this.breaker = new CircuitBreaker(
      s.breaker,
      (state) => {
        deps.metrics.circuitBreakerState.set({ backend: endpoint }, state);
        logTransition(state);
      },
      deps.clock.now,
    );
    this.client = new deps.clientConstructor(endpoint, grpc.credentials.createInsecure(), {
      "grpc.keepalive_time_ms": s.heartbeatIntervalMs,
      "grpc.keepalive_timeout_ms": s.connectionTimeoutMs,
      "grpc.keepalive_permit_without_calls": 1,
      // A stream is never retried by the channel (a lost one is the pool's to re-open); without
      // this, grpc-js buffers every message of the call in case of a retry.
      "grpc.enable_retries": 0,
      // No per-call and per-message channelz bookkeeping: nothing here reads it.
      "grpc.enable_channelz": 0,
      // The gateway's own back-off decides when to try again, not the channel's.
      "grpc.initial_reconnect_backoff_ms": s.retryDelayMs,
      "grpc.max_reconnect_backoff_ms": s.reconnectIntervalMs,
      "grpc.max_receive_message_length": s.maxReceiveMessageSize,
    }) as grpc.Client & Record<string, unknown>;
  }

  // ---- BackendPool ---------------------------------------------------------------------------

  get sessions(): number {
    return this.bound.size;
  }

  get reachable(): boolean {
    return this.reachableFlag;
  }

  get openConnections(): number {
    return this.state === "open" ? 1 : 0;
  }

  get queuedBytes(): number {
    return this.queued;
  }

  get pausedClients(): number {
    return this.pausing.pausedCount;
  }

  /** For FairPausing: the queue passed high water and has not been relieved since. */
  get congested(): boolean {
    return this.congestedFlag;
  }

  /** Closed, and what was queued (the sessions' disconnect packets included) has gone to the socket. */
  get finished(): boolean {
    return this.state === "closed" && this.flushedOnClose;
  }

  admits(): boolean {
    if (this.state === "closed" || this.state === "given_up") return false;
    if (this.breaker.tryAcquire()) return true;
    bump(this.tally.errors, "circuit_breaker_open");
    return false;
  }

  start(): void {
    this.open();
  }

  healthCheck(now: number): void {
    // HTTP/2 keepalive (grpc.heartbeat_interval) finds a dead peer; a lost stream reports itself.
    // A live peer that stopped reading is found by the write deadline.
    if (this.state === "open" && this.deps.settings.writeTimeoutMs > 0 && this.writeDeadlinePassed(now)) {
      this.lost("write_timeout", "the backend accepted nothing for connection_pool.write_timeout");
    }
  }

  /**
   * Sampled at each health check, as for TCP backends: stuck means packets queued and no write
   * completed since the previous check. It fires between write_timeout and write_timeout plus one
   * session.sweep_interval after the backend stopped reading.
   */
  private writeDeadlinePassed(now: number): boolean {
    const progressed = this.writesDone !== this.writesAtCheck;
    this.writesAtCheck = this.writesDone;
    if (progressed || this.queued === 0) {
      this.writeStuckSince = -1;
      return false;
    }
    if (this.writeStuckSince < 0) this.writeStuckSince = now;
    return now - this.writeStuckSince >= this.deps.settings.writeTimeoutMs;
  }

  attach(session: Session): boolean {
    // Between a lost stream and its re-open, a session would wait on a stream that is not there.
    if (this.state === "closed" || this.state === "given_up" || this.state === "down") {
      this.deps.metrics.sessionBindFailed(this.tally, "connection_failed");
      return false;
    }
    this.bound.add(session);
    session.link = this;
    this.pausing.join(session);
    const f = sessionPacketFields(session, this.deps.settings.traceContext);
    this.fields.set(session, f);
    this.sendConnect(session);
    if (this.state === "open") this.reached(session);
    this.updateGauges();
    return true;
  }

  retire(): void {
    this.retired = true;
  }

  close(): void {
    if (this.state === "closed") return;
    this.clearReopen();
    const call = this.call;
    const wasOpen = this.state === "open";
    this.state = "closed";
    this.call = null;
    if (wasOpen) this.deps.metrics.backendConnectionsActive.dec({ backend: this.endpoint });
    if (call !== null) {
      // What was queued goes first (Disconnects included); then the stream is half-closed, and
      // 'finish' says every write has been handed to the socket. The registry waits for that
      // (bounded): a process that exits sooner loses the sessions' disconnect packets.
      this.writeQueued(call, true);
      call.once("finish", () => {
        this.flushedOnClose = true;
        this.client.close();
      });
      call.end();
    } else {
      this.flushedOnClose = true;
      this.dropQueue();
      this.client.close();
    }
    this.pausing.resumeAll();
  }

  // ---- BackendLink ---------------------------------------------------------------------------

  sendConnect(session: Session): void {
    const f = this.fields.get(session);
    if (f === undefined) return;
    if (!this.enqueue(connectPacket(f, session), true)) bump(this.tally.errors, "notification_failed");
  }

  sendTrans(session: Session, b: Uint8Array, off: number, len: number): boolean {
    const f = this.fields.get(session);
    if (f === undefined) return false;
    // The encoded size, to within the few bytes of msg_id and tags: checked before encoding, so a
    // refused frame costs no Buffer.
    const bodyLen = len - CLIENT_HEADER_SIZE;
    const estimate = bodyLen + f.idField.length + f.traceEncoded.length + 8;
    if (this.deps.telemetry.totalQueued.queued + estimate > this.deps.settings.totalLimit) {
      this.tally.totalLimitRejections++;
      return false;
    }
    if (this.queued + estimate > this.deps.settings.limit) {
      this.tally.connectionLimitRejections++;
      return false;
    }
    // Encoded now: the client's read buffer is reused once this returns.
    const packet = gamePacket(f, readClientMessageId(b, off), b, off + CLIENT_HEADER_SIZE, bodyLen);
    this.enqueue(packet, true); // within the bound, as estimated (an estimate is never below the size)
    this.tally.framesOut++;
    this.tally.bytesOut += packet.length;
    this.pausing.onQueued(session, packet.length);
    return true;
  }


  release(session: Session, reason: CloseReason): void {
    this.pausing.forget(session.client);
    if (!this.bound.has(session)) return; // closed with its lost stream already
    const f = this.fields.get(session);
    this.bound.remove(session);
    this.fields.delete(session);
    if (f !== undefined && this.state !== "closed") {
      if (!this.enqueue(disconnectPacket(f, reason, Date.now()), true)) bump(this.tally.errors, "notification_failed");
    }
    this.updateGauges();
  }

  // ---- BackendFrameSource --------------------------------------------------------------------

  get endpointLinks(): Iterable<{ readonly sessions: SessionList }> {
    return this.links;
  }

  inCurrentChunk(_b: Uint8Array): boolean {
    return false;
  }

  countError(errorType: string): void {
    bump(this.tally.errors, errorType);
  }

  violationLogGate(reason: string, now: number): number {
    return this.violationLog.admit(reason, now);
  }

  // ---- the stream ----------------------------------------------------------------------------

  private open(): void {
    this.reopenTimer = null;
    if (this.state === "closed") return;
    this.state = "connecting";
    const startedAt = performance.now();
    this.client.waitForReady(Date.now() + this.deps.settings.connectionTimeoutMs, (error) => {
      if (this.state !== "connecting") return;
      if (error) return this.lost(error.message.includes("Deadline") ? "timeout" : "connection_failed", error.message);
      this.onReady((performance.now() - startedAt) / 1000);
    });
  }

  private onReady(setupSeconds: number): void {
    const md = new grpc.Metadata();
    md.set("gateway-name", this.deps.settings.gatewayName);
    const call = (this.client.StreamPackets as (md: grpc.Metadata) => PacketStream)(md);
    this.call = call;
    this.state = "open";
    this.failures = 0;
    this.blocked = false;
    const generation = ++this.generation;
    // One callback per stream, not per packet: writes complete in order, so each completion is the oldest in flight.
    this.writeDone = () => {
      if (generation === this.generation) this.onWriteDone();
    };
    const m = this.deps.metrics;
    m.backendConnectionsActive.inc({ backend: this.endpoint });
    m.backendConnectionSetupLatency.observe({ backend: this.endpoint }, setupSeconds);
    this.breaker.recordSuccess();
    this.markReachable();
    call.on("data", (p: ReceivedPacket) => this.onPacket(p));
    call.on("drain", () => this.onDrain(call));
    call.on("error", (e: grpc.ServiceError) => {
      if (call === this.call) this.lost("connection_lost", e.details || e.message);
    });
    call.on("end", () => {
      if (call === this.call) this.lost("connection_lost", "the backend ended the stream");
    });
    for (let s = this.bound.first; s !== null; s = s.nextOnLink) this.reached(s);
    this.writeQueued(call, false);
    this.updateGauges();
  }

  /** The stream failed to open or was lost: its sessions close, and it is opened again after a back-off. */
  private lost(errorType: "timeout" | "connection_failed" | "connection_lost" | "write_timeout", detail: string): void {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open";
    const call = this.call;
    this.call = null;
    this.state = "down";
    if (call !== null) call.cancel();
    this.generation++;
    this.writeStuckSince = -1;
    const m = this.deps.metrics;
    if (wasOpen) m.backendConnectionsActive.dec({ backend: this.endpoint });
    if (errorType === "timeout" || errorType === "write_timeout") m.backendTimeouts.inc({ backend: this.endpoint });
    bump(this.tally.errors, errorType);
    bump(this.tally.closes, errorType === "write_timeout" ? "write_timeout" : wasOpen ? "connection_lost" : errorType === "timeout" ? "dial_timeout" : "dial_failed");
    this.breaker.recordFailure();
    this.dropQueue();
    this.pausing.resumeAll();
    this.closeSessions(wasOpen ? "backend_lost" : "backend_unavailable");
    if (this.retired) {
      // Its sessions are closed above; nothing will be routed here again.
      this.deps.log.info("gRPC backend left the routes; its stream is not re-opened", { backend: this.endpoint });
      this.reachableFlag = false;
      this.close();
      return;
    }
    this.failures++;
    const max = this.deps.settings.maxReconnectAttempts;
    if (this.reachableFlag || this.failures === 1) {
      // Throttled per endpoint: a stream lost every few seconds is counted, not logged each time.
      const what = wasOpen ? "gRPC stream to backend lost; re-opening" : "gRPC backend unreachable";
      this.deps.throttledLog.warn(`${wasOpen ? "lost" : "unreachable"}:${this.endpoint}`, what, { backend: this.endpoint, cause: errorType, detail });
    }
    this.reachableFlag = false;
    if (max > 0 && this.failures > max) {
      this.state = "given_up";
      this.deps.log.error("gRPC backend given up after grpc.max_reconnect_attempts failed attempts", { backend: this.endpoint, attempts: this.failures });
      this.updateGauges();
      return;
    }
    const { retryDelayMs, reconnectIntervalMs } = this.deps.settings;
    const base = Math.min(retryDelayMs * 2 ** Math.min(this.failures - 1, 30), reconnectIntervalMs);
    const delay = base / 2 + Math.random() * (base / 2); // jitter: a fleet must not re-open in step
    m.backendRetries.inc({ backend: this.endpoint });
    this.reopenTimer = this.deps.clock.setTimer(() => this.open(), delay);
    this.updateGauges();
  }

  private closeSessions(reason: CloseReason): void {
    const orphans = this.bound.drain();
    if (orphans.length === 0) return;
    this.deps.throttledLog.warn(`unavailable:${this.endpoint}`, "backend unavailable; closing its sessions", {
      backend: this.endpoint,
      sessions: orphans.length,
      reason,
    });
    for (const s of orphans) {
      s.link = null;
      this.fields.delete(s);
      if (!s.backendReached) this.deps.metrics.sessionBindFailed(this.tally, "connection_failed");
      s.client.close(reason);
    }
  }

  /** Completes one write of the current stream (set per stream in onReady). */
  private writeDone: () => void = () => {};

  /**
   * Writes the packet now, or queues it while the stream is opening or waiting for 'drain'.
   * control: a connect or disconnect packet, which may pass the bound by its own size (it is
   * refused only once the queue is past the bound already).
   */
  private enqueue(p: Buffer, control: boolean): boolean {
    const size = p.length;
    if (control ? this.queued > this.deps.settings.limit : this.queued + size > this.deps.settings.limit) return false;
    this.queued += size;
    this.deps.telemetry.totalQueued.queued += size;
    if (this.queued > this.deps.settings.highWater) this.congestedFlag = true;
    const call = this.call;
    if (call !== null && !this.blocked && this.queueHead === this.queue.length) this.write(call, p, size);
    else this.queue.push(p);
    return true;
  }

  private write(call: PacketStream, p: Buffer, size: number): void {
    this.inFlight.push(size);
    if (!call.write(p, this.writeDone)) this.blocked = true;
  }

  private onWriteDone(): void {
    const size = this.inFlight[this.inFlightHead++]!;
    if (this.inFlightHead === this.inFlight.length) {
      this.inFlight.length = 0;
      this.inFlightHead = 0;
    }
    this.queued -= size;
    this.deps.telemetry.totalQueued.queued -= size;
    this.writesDone++;
    this.checkRelief();
  }

  private onDrain(call: PacketStream): void {
    if (call !== this.call) return;
    this.blocked = false;
    this.writeQueued(call, false);
  }

  /** Gives queued packets to the stream until it says wait (or all of them when ending). */
  private writeQueued(call: PacketStream, all: boolean): void {
    const q = this.queue;
    while (this.queueHead < q.length && (all || !this.blocked)) {
      const p = q[this.queueHead]!;
      q[this.queueHead++] = undefined as unknown as Buffer;
      this.write(call, p, p.length);
    }
    if (this.queueHead === q.length) {
      q.length = 0;
      this.queueHead = 0;
    }
  }

  /** Relieved at half of high water: paused clients come back; emptied: shares are counted afresh. */
  private checkRelief(): void {
    if (this.congestedFlag && this.queued <= this.deps.settings.highWater / 2) {
      this.congestedFlag = false;
      this.resumePaused();
    } else if (!this.congestedFlag && this.queued === 0) {
      this.pausing.newWindow();
    }
  }

  private readonly resumeNext = (): void => {
    if (this.state === "closed" || this.congestedFlag) return;
    this.resumePaused();
  };

  /** A batch of paused clients back (RESUME_BATCH); the rest on the next turns, if the queue stays relieved. */
  private resumePaused(): void {
    if (this.pausing.resumeBatch()) setImmediate(this.resumeNext);
  }

  /** The stream is gone: what waited or was in flight on it is dropped (counted). */
  private dropQueue(): void {
    this.tally.queueDroppedBytes += this.queued;
    this.deps.telemetry.totalQueued.queued -= this.queued;
    this.queued = 0;
    this.queue.length = 0;
    this.queueHead = 0;
    this.inFlight.length = 0;
    this.inFlightHead = 0;
    this.blocked = false;
    this.congestedFlag = false;
  }

  private onPacket(p: ReceivedPacket): void {
    this.tally.framesIn++;
    // A packet is the proof of health that takes a half-open breaker (the stream's re-open was the
    // first) to closed, as a Pong does for TCP: gRPC has no Ping of its own here.
    if (this.breaker.state !== BreakerState.Closed) this.breaker.recordSuccess();
    const payload = p.payload;
    this.tally.bytesIn += payload.length;
    const type = p.packetType;
    if (type === PacketType.ServerDisconnect) return this.deps.handler.onKick(this, p.sessionHi, p.sessionLo, p.reason);
    if (type === PacketType.ServerConnect) return; // informational: the backend accepted the login
    if (type !== "") return this.deps.handler.onViolation(this, "unexpected_opcode");
    if (p.msgId < 0 || p.msgId > 0xffff) return this.deps.handler.onViolation(this, "type_out_of_range");
    if (payload.length > MAX_CLIENT_BODY) return this.deps.handler.onViolation(this, "body_too_large");
    const frame = this.scratch;
    writeClientHeader(frame, 0, payload.length, p.msgId, 0);
    frame.set(payload, CLIENT_HEADER_SIZE);
    const len = CLIENT_HEADER_SIZE + payload.length;
    const targets = p.targets;
    if (targets === TOO_MANY_TARGETS) return this.deps.handler.onViolation(this, "multicast_malformed");
    if (targets.length > 0) {
      this.deps.handler.onMulticastFrame(this, targets, frame, 0, len);
    } else {
      this.deps.handler.onClientFrame(this, p.sessionHi, p.sessionLo, frame, 0, len);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushClients);
    }
  }

  /** Clients written once per batch of packets rather than once per packet. */
  private readonly flushClients = (): void => {
    this.flushScheduled = false;
    this.deps.handler.onChunkEnd();
  };

  private reached(s: Session): void {
    if (s.backendReached) return;
    s.backendReached = true;
    this.deps.metrics.sessionBound(this.tally);
    this.deps.metrics.backendConnectionLatency.observe({ backend: this.endpoint }, 0);
  }

  private markReachable(): void {
    const was = this.reachableFlag;
    this.reachableFlag = true;
    if (!was && this.failures === 0) this.deps.log.info("gRPC stream to backend open", { backend: this.endpoint });
  }

  private clearReopen(): void {
    if (this.reopenTimer !== null) this.deps.clock.clearTimer(this.reopenTimer);
    this.reopenTimer = null;
  }

  private updateGauges(): void {
    const open = this.state === "open";
    this.deps.metrics.backendPoolActive.set({ backend: this.endpoint }, open && this.bound.size > 0 ? 1 : 0);
    this.deps.metrics.backendPoolIdle.set({ backend: this.endpoint }, open && this.bound.size === 0 ? 1 : 0);
  }
}
