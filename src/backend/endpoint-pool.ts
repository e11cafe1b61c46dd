import type { GatewayMetrics } from "../admin/metrics.ts";
import { type BackendTally, bump } from "../telemetry/counters.ts";
import type { BackendMode } from "../config/types.ts";
import type { Logger, ThrottledLog } from "../log/logger.ts";
import type { BufferPool } from "../net/buffer-pool.ts";
import type { BackendFrameLayout } from "../protocol/layouts.ts";
import type { CloseReason } from "../net/client-port.ts";
import type { Session } from "../session/session.ts";
import type { Clock, ClockTimer } from "../time/clock.ts";
import { BreakerState, CircuitBreaker, type BreakerSettings } from "./circuit-breaker.ts";
import { breakerName, breakerTransitionLog } from "./breaker-log.ts";
import { CloseCause } from "./close-cause.ts";
import type { DialFailure } from "./dial-failure.ts";
import {
  BackendConnection,
  type BackendConnectionOptions,
  type BackendConnectionOwner,
  type BackendFrameHandler,
  type BackendTelemetry,
  newViolationLog,
} from "./backend-connection.ts";

// The connections of one backend endpoint and the sessions bound to it.
//   multiplexed: a fixed number of persistent connections, each shared by many sessions,
//                re-dialled with exponential backoff and jitter when lost.
//   dedicated:   one connection per session, dialled when the session is bound and closed with
//                it; never reused for another session.
//   per_session: as dedicated, speaking the reference gateway's TCP contract (Trans only, no
//                Ping; see BackendConnection); a failed dial is retried max_retries times.
// A shared connection that carries no session for connection_pool.idle_timeout is closed while a
// sibling stays open (the idle life of a backend connection, as in the reference's pool); its slot
// is parked and dialled again once a new session finds every open connection already in use.
// When a shared connection is lost its sessions move to a live sibling (announced again with
// Connect); with no live sibling they are closed with a logged reason. Other endpoints are untouched.
//
// Re-dialling: a connection counts as up only once it proves healthy (a Pong to the Ping sent on
// connect, or any valid frame); only then is the slot's backoff reset, so a backend that accepts
// and then resets or sends garbage is re-dialled at a growing interval, not in a tight loop.
// While the breaker is open the pool dials one probe connection per PROBE_INTERVAL_MS and no
// more; when a probe proves healthy the breaker half-opens at once (the next Pong closes it) and
// every empty slot is dialled, so service resumes about a second after the backend returns
// instead of after open_timeout.

export interface PoolSettings {
  readonly mode: BackendMode;
  readonly breaker: BreakerSettings;
  readonly pingIntervalMs: number;
  /** A Ping unanswered this long closes the connection (backend.ping_timeout). */
  readonly pingTimeoutMs: number;
  /** A shared connection carrying no session this long is closed if a sibling is open (connection_pool.idle_timeout). */
  readonly idleTimeoutMs: number;
  /** The re-dial backoff doubles at most this many times. */
  readonly maxRetries: number;
  readonly connectionsPerEndpoint: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly connection: Omit<BackendConnectionOptions, "endpoint" | "host" | "port" | "initialBuffer">;
}

/** Everything a pool needs from the process, passed once. */
export interface PoolDeps {
  readonly settings: PoolSettings;
  readonly layout: BackendFrameLayout;
  readonly buffers: BufferPool;
  readonly frames: BackendFrameHandler;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly throttledLog: ThrottledLog;
  readonly telemetry: BackendTelemetry;
  /** Re-dial and probe timers and the breakers' windows run on it (the gateway's clock). */
  readonly clock: Clock;
}

const SHARED_INITIAL_BUFFER = 64 * 1024;
const DEDICATED_INITIAL_BUFFER = 4 * 1024;
/**
 * How often an endpoint with an open breaker is dialled, jittered to 0.5-1x so a fleet of gateways
 * does not probe in step: often enough that service resumes about a second after the backend
 * returns, rare enough that a dead backend sees one connection attempt per gateway per second.
 */
const PROBE_INTERVAL_MS = 1_000;

/** Why an endpoint is not reachable: a failed dial, or a connection that closed before it proved healthy. */
export type UnreachableCause = DialFailure | "closed_before_healthy";

/** Whether the endpoint answers, as last observed; logged when it changes, not per attempt. */
type Reachability =
  | { readonly kind: "unknown" }
  | { readonly kind: "reachable" }
  | { readonly kind: "unreachable"; readonly cause: UnreachableCause; readonly since: number };

export class EndpointPool implements BackendConnectionOwner {
  /** Sessions bound to this endpoint; each is in the SessionList of the connection carrying it. */
  private sessionCount = 0;
  private readonly slots: (BackendConnection | null)[];
  private readonly failures: number[];
  private readonly redialTimers: (ClockTimer | null)[];
  /** Per slot: when its connection was first seen carrying no session (-1: it carries some). */
  private readonly emptySince: number[];
  /** Per slot: closed for idleness, dialled again only when sessions need it. */
  private readonly parked: boolean[];
  private readonly dedicated = new Set<BackendConnection>();
  private readonly tally: BackendTally;
  /** Open dedicated connections; each carries exactly one session. */
  private openDedicated = 0;
  private closed = false;
  /** While the breaker is open: the one pending probe dial (see PROBE_INTERVAL_MS). */
  private probeTimer: ClockTimer | null = null;
  /** Dedicated mode's probe: a connection carrying no session, closed once it proves healthy. */
  private prober: BackendConnection | null = null;
  private reach: Reachability = { kind: "unknown" };
  readonly breaker: CircuitBreaker;
  readonly violationLog = newViolationLog();
  readonly transport = "tcp";

  constructor(
    readonly endpoint: string,
    private readonly host: string,
    private readonly port: number,
    private readonly deps: PoolDeps,
  ) {
    const n = deps.settings.mode === "multiplexed" ? deps.settings.connectionsPerEndpoint : 0;
    this.slots = new Array(n).fill(null);
    this.failures = new Array(n).fill(0);
    this.redialTimers = new Array(n).fill(null);
    this.emptySince = new Array(n).fill(-1);
    this.parked = new Array(n).fill(false);
    this.tally = deps.metrics.backendTally(endpoint);
    deps.metrics.circuitBreakerState.set({ backend: endpoint }, BreakerState.Closed);
    // Every per-backend series exists from the pool's start (at 0), so rate() has something to read.
    deps.metrics.backendTimeouts.inc({ backend: endpoint }, 0);
    deps.metrics.backendRetries.inc({ backend: endpoint }, 0);
    deps.metrics.backendConnectionsActive.inc({ backend: endpoint }, 0);
    const logTransition = breakerTransitionLog(deps.log, endpoint);
    this.breaker = new CircuitBreaker(
      deps.settings.breaker,
      (state) => {
        deps.metrics.circuitBreakerState.set({ backend: endpoint }, state);
        logTransition(state);
      },
      deps.clock.now,
    );
  }

  /** The endpoint answered since it last failed to (for /ready and the status page). */
  get reachable(): boolean {
    return this.reach.kind === "reachable";
  }

  /** Whether a new session may be routed here now (spends a half-open probe when it says yes). */
  admits(): boolean {
    if (this.closed) return false;
    if (this.breaker.tryAcquire()) return true;
    bump(this.tally.errors, "circuit_breaker_open");
    return false;
  }

  /** Ping silent connections, drop unresponsive ones (called from the gateway's sweep). */
  healthCheck(now: number): void {
    const { pingIntervalMs, pingTimeoutMs } = this.deps.settings;
    // Half-open: probe at once. A Pong is the success that closes the breaker; an open
    // connection alone is not (a backend that accepts but never answers must stay out).
    const interval = this.breaker.state === BreakerState.HalfOpen ? 0 : pingIntervalMs;
    for (const c of this.slots) c?.healthCheck(now, interval, pingTimeoutMs);
    for (const c of this.dedicated) c.healthCheck(now, interval, pingTimeoutMs);
    this.closeIdleSlots(now);
  }

  /**
   * Closes shared connections that have carried no session for idle_timeout, keeping at least one
   * open (it answers for the endpoint's health and serves the next player without a dial).
   * Sampled at each health check, so a connection goes between idle_timeout and one check later.
   */
  private closeIdleSlots(now: number): void {
    let open = 0;
    for (const c of this.slots) if (c?.state === "open") open++;
    for (let i = 0; i < this.slots.length; i++) {
      const c = this.slots[i];
      if (c == null || c.state !== "open" || c.sessions.size > 0) {
        this.emptySince[i] = -1;
        continue;
      }
      if (this.emptySince[i]! < 0) this.emptySince[i] = now;
      else if (open > 1 && now - this.emptySince[i]! >= this.deps.settings.idleTimeoutMs) {
        open--;
        // Out of the slot first: until its socket has closed, no new session may be bound to it.
        this.slots[i] = null;
        this.parked[i] = true;
        this.emptySince[i] = -1;
        c.close(CloseCause.Idle, true);
        this.updatePoolGauges();
      }
    }
  }

  /** Dials the shared connections (multiplexed mode). */
  start(): void {
    for (let i = 0; i < this.slots.length; i++) this.dialSlot(i);
  }

  /** Sessions bound to this endpoint, whatever connection carries them. */
  get sessions(): number {
    return this.sessionCount;
  }

  /** Every live connection, shared or dedicated (a Broadcast reaches their sessions). */
  links(): BackendConnection[] {
    const out: BackendConnection[] = [];
    for (const c of this.slots) if (c !== null) out.push(c);
    for (const c of this.dedicated) out.push(c);
    return out;
  }

  /** Open shared connections (for stats and tests). */
  get openConnections(): number {
    let n = this.openDedicated;
    for (const c of this.slots) if (c?.state === "open") n++;
    return n;
  }

  /** Clients paused for the congestion of this endpoint's connections (for stats and tests). */
  get pausedClients(): number {
    let n = 0;
    for (const c of this.slots) if (c !== null) n += c.pausedClients;
    for (const c of this.dedicated) n += c.pausedClients;
    return n;
  }

  /** Bytes waiting toward this endpoint across its connections. */
  get queuedBytes(): number {
    let n = 0;
    for (const c of this.slots) if (c !== null) n += c.queuedBytes;
    for (const c of this.dedicated) n += c.queuedBytes;
    return n;
  }

  /**
   * Binds a new session to a connection of this endpoint and announces it (Connect). Returns
   * false when no connection is open or being dialled: the caller closes the client.
   */
  attach(session: Session): boolean {
    if (this.closed) {
      this.deps.metrics.sessionBindFailed(this.tally, "connection_failed");
      return false;
    }
    let conn: BackendConnection | null;
    if (this.deps.settings.mode !== "multiplexed") {
      conn = this.newConnection(DEDICATED_INITIAL_BUFFER);
      this.dedicated.add(conn);
      conn.dial();
    } else {
      conn = this.leastLoaded();
      if (conn === null) {
        this.deps.metrics.sessionBindFailed(this.tally, "connection_failed");
        return false;
      }
    }
    this.sessionCount++;
    conn.adopt(session);
    conn.sendConnect(session);
    // A connection still dialling counts its sessions when it opens (onOpen) or fails (closeSessions).
    if (conn.state === "open") this.reached(session, 0);
    this.updatePoolGauges();
    return true;
  }

  /** The session ended: tell the backend and forget it. */
  detach(session: Session, reason: CloseReason): void {
    // Sessions closed because their connection was lost already left it (closeSessions).
    const conn = session.link as BackendConnection | null;
    if (conn === null || !conn.sessions.has(session)) return;
    this.sessionCount--;
    conn.sendDisconnect(session, reason);
    if (this.dedicated.has(conn)) {
      // A backend this far behind may never read it: drop it now (counted in
      // backend_queue_dropped_bytes_total) rather than hold it for a session that is gone.
      if (conn.lagging) conn.dropQueued();
      else conn.closeAfterFlush();
    }
    this.updatePoolGauges();
  }

  /**
   * Stops re-dialling and closes every connection once what is queued on it (Disconnects
   * included) has been written. Sessions are the caller's to close first.
   */
  close(): void {
    this.closed = true;
    if (this.probeTimer !== null) this.deps.clock.clearTimer(this.probeTimer);
    this.probeTimer = null;
    for (let i = 0; i < this.slots.length; i++) {
      const t = this.redialTimers[i];
      if (t) this.deps.clock.clearTimer(t);
      this.slots[i]?.shutDown();
    }
    for (const c of this.dedicated) c.shutDown();
  }

  /** TCP pools keep re-dialling a lost shared connection while sessions are bound (they move there); reapRetired closes them. */
  retire(): void {}

  /** True once close() was called and every connection has closed. */
  get finished(): boolean {
    return this.closed && this.openConnections === 0 && this.slots.every((c) => c === null || c.state === "closed");
  }

  // ---- BackendConnectionOwner ------------------------------------------------------------------

  onOpen(conn: BackendConnection): void {
    const slot = this.slots.indexOf(conn);
    if (slot < 0) this.openDedicated++;
    const m = this.deps.metrics;
    m.backendConnectionsActive.inc({ backend: this.endpoint });
    m.backendConnectionSetupLatency.observe({ backend: this.endpoint }, conn.setupSeconds);
    // Sessions that waited for this dial (a dedicated connection's one session, or sessions bound
    // to a shared connection while it was dialling) waited at most the dial's time.
    for (let s = conn.sessions.first; s !== null; s = s.nextOnLink) this.reached(s, conn.setupSeconds);
    this.updatePoolGauges();
    this.deps.log.debug("backend connection open", { backend: this.endpoint, slot });
  }

  onDialRetry(_conn: BackendConnection): void {
    this.deps.metrics.backendRetries.inc({ backend: this.endpoint });
  }

  onClosed(conn: BackendConnection, wasOpen: boolean): void {
    const m = this.deps.metrics;
    const cause = conn.closeCause;
    if (wasOpen) {
      m.backendConnectionsActive.dec({ backend: this.endpoint });
      bump(this.tally.closes, cause.label);
    } else if (cause.by === "gateway") {
      bump(this.tally.closes, cause.label); // a dial given up on purpose (session ended, shutting down)
    } else {
      // The reference's values: a dial that timed out is a timeout, any other failed dial connection_failed.
      bump(this.tally.errors, cause === CloseCause.DialTimeout ? "timeout" : "connection_failed");
      bump(this.tally.closes, cause === CloseCause.DialTimeout ? "dial_timeout" : "dial_failed");
    }
    if (cause.by === "timeout") m.backendTimeouts.inc({ backend: this.endpoint });
    if (!this.closed && cause.by !== "gateway") {
      this.breaker.recordFailure();
      if (wasOpen && cause.by !== "violation") bump(this.tally.errors, cause.by === "timeout" ? "timeout" : cause.label);
      if (!wasOpen) this.markUnreachable(conn.dialFailure ?? "error", "");
      else if (!conn.healthy) this.markUnreachable("closed_before_healthy", cause.label);
    }
    if (conn === this.prober) this.prober = null;

    const orphans = conn.sessions.drain();
    if (this.dedicated.delete(conn)) {
      if (wasOpen) this.openDedicated--;
      this.closeSessions(orphans, wasOpen ? "backend_lost" : "backend_unavailable");
    } else {
      const slot = this.slots.indexOf(conn);
      if (slot >= 0) {
        this.slots[slot] = null;
        if (!this.closed && !this.parked[slot]) this.scheduleRedial(slot, conn);
      }
      this.rehome(orphans, wasOpen);
    }
    if (!this.closed && this.breaker.state === BreakerState.Open) this.scheduleProbe();
    this.updatePoolGauges();
  }

  onPong(_conn: BackendConnection, rttSeconds: number): void {
    this.deps.metrics.backendPingRtt.observe({ backend: this.endpoint }, rttSeconds);
  }

  onHealthy(conn: BackendConnection, first: boolean): void {
    // Open -> half-open -> closed: one step per proof, so a half-open breaker still lets only
    // half_open_max_requests sessions through until a second proof (the half-open Ping's Pong).
    this.breaker.recordSuccess();
    if (!first || this.closed) return;
    const slot = this.slots.indexOf(conn);
    if (slot >= 0) this.failures[slot] = 0;
    this.markReachable();
    if (conn === this.prober) {
      this.prober = null;
      conn.closeAfterFlush();
    }
    if (this.breaker.state !== BreakerState.Open) this.dialEmptySlots();
  }

  // ---- internals -------------------------------------------------------------------------------

  private rehome(orphans: Session[], wasOpen: boolean): void {
    if (orphans.length === 0) return;
    const target = this.closed ? null : this.leastLoaded();
    if (target === null) {
      this.closeSessions(orphans, wasOpen ? "backend_lost" : "backend_unavailable");
      return;
    }
    this.deps.log.warn("backend connection lost; sessions moved to a sibling connection", {
      backend: this.endpoint,
      sessions: orphans.length,
    });
    const targetOpen = target.state === "open";
    for (const s of orphans) {
      target.adopt(s);
      target.sendConnect(s);
      if (targetOpen) this.reached(s, 0);
    }
  }

  /**
   * The session has an open connection here, `waitedSeconds` after it was bound: counted once
   * per session (backend_requests_total{status="success"}, backend_connection_latency_seconds).
   */
  private reached(s: Session, waitedSeconds: number): void {
    if (s.backendReached) return;
    s.backendReached = true;
    this.deps.metrics.sessionBound(this.tally);
    this.deps.metrics.backendConnectionLatency.observe({ backend: this.endpoint }, waitedSeconds);
  }

  private closeSessions(sessions: Session[], reason: CloseReason): void {
    if (sessions.length === 0) return;
    // Throttled per endpoint: in dedicated mode every session's connection dies on its own, and a
    // dead backend under load would log a line per session.
    this.deps.throttledLog.warn(`unavailable:${this.endpoint}`, "backend unavailable; closing its sessions", {
      backend: this.endpoint,
      sessions: sessions.length,
      reason,
    });
    for (const s of sessions) {
      s.link = null; // nothing more can be sent for it on the dead connection
      this.sessionCount--;
      if (!s.backendReached) this.deps.metrics.sessionBindFailed(this.tally, "connection_failed");
      s.client.close(reason);
    }
  }

  /**
   * The open connection carrying fewest sessions; else one being dialled; else null. When even
   * that one carries sessions already, a slot parked for idleness is dialled for the next ones.
   */
  private leastLoaded(): BackendConnection | null {
    let best: BackendConnection | null = null;
    let dialing: BackendConnection | null = null;
    for (const c of this.slots) {
      if (c === null) continue;
      if (c.state === "open") {
        if (best === null || c.sessions.size < best.sessions.size) best = c;
      } else if (c.state === "dialing" && dialing === null) {
        dialing = c;
      }
    }
    const chosen = best ?? dialing;
    if (chosen !== null && chosen.sessions.size > 0) this.unparkOne();
    return chosen;
  }

  /** probe: the pool's one probe dial while the breaker is open; other dials wait for it then. */
  private dialSlot(slot: number, probe = false): void {
    this.redialTimers[slot] = null;
    if (this.closed) return;
    this.parked[slot] = false;
    if (!probe && this.breaker.state === BreakerState.Open) return this.scheduleProbe();
    const conn = this.newConnection(SHARED_INITIAL_BUFFER);
    this.slots[slot] = conn;
    conn.dial();
  }

  /** lost: the connection that closed; a healthy one lost is logged here, failed dials by markUnreachable. */
  private scheduleRedial(slot: number, lost: BackendConnection): void {
    const { retryDelayMs, maxRetryDelayMs, maxRetries } = this.deps.settings;
    const attempt = this.failures[slot]!++;
    const base = Math.min(retryDelayMs * 2 ** Math.min(attempt, maxRetries), maxRetryDelayMs);
    const delay = base / 2 + Math.random() * (base / 2); // jitter: a fleet must not re-dial in step
    this.deps.metrics.backendRetries.inc({ backend: this.endpoint });
    if (lost.healthy && lost.closeCause.by !== "gateway") {
      this.deps.throttledLog.warn(`redial:${this.endpoint}`, "backend connection down; re-dialling", {
        backend: this.endpoint,
        cause: lost.closeCause.label,
        delay_ms: Math.round(delay),
      });
    }
    this.redialTimers[slot] = this.deps.clock.setTimer(() => this.dialSlot(slot), delay);
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== null || this.closed) return;
    const delay = PROBE_INTERVAL_MS / 2 + Math.random() * (PROBE_INTERVAL_MS / 2);
    this.probeTimer = this.deps.clock.setTimer(this.probe, delay);
  }

  private readonly probe = (): void => {
    this.probeTimer = null;
    if (this.closed) return;
    if (this.breaker.state !== BreakerState.Open) return this.dialEmptySlots(); // half-opened meanwhile
    if (this.deps.settings.mode !== "multiplexed") {
      if (this.prober !== null) return;
      this.prober = this.newConnection(DEDICATED_INITIAL_BUFFER);
      this.dedicated.add(this.prober);
      this.prober.dial();
      return;
    }
    // One probe per interval: an empty slot if there is one; a connection dialling or open
    // already answers for the endpoint.
    const slot = this.slots.indexOf(null);
    if (slot < 0) return;
    const t = this.redialTimers[slot];
    if (t) this.deps.clock.clearTimer(t);
    this.dialSlot(slot, true);
  };

  /** Every open connection carries sessions: dial a slot parked for idleness, if any. */
  private unparkOne(): void {
    const slot = this.parked.indexOf(true);
    if (slot < 0 || this.slots[slot] !== null) return;
    this.parked[slot] = false;
    this.dialSlot(slot);
  }

  /** The endpoint answers again: dial every empty slot (but the parked) now rather than at its backoff. */
  private dialEmptySlots(): void {
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i] !== null || this.parked[i]) continue;
      const t = this.redialTimers[i];
      if (t) this.deps.clock.clearTimer(t);
      this.dialSlot(i);
    }
  }

  private markUnreachable(cause: UnreachableCause, detail: string): void {
    const r = this.reach;
    if (r.kind === "unreachable") {
      // Logged once per outage: a backend that resets on accept alternates between causes
      // (error, closed_before_healthy) on every dial, and a line per change was a line a second.
      if (r.cause !== cause && this.deps.log.enabled("debug")) this.deps.log.debug("backend still unreachable", { backend: this.endpoint, cause });
      return;
    }
    this.reach = { kind: "unreachable", cause, since: Date.now() };
    this.deps.log.warn("backend unreachable", {
      backend: this.endpoint,
      cause,
      ...(detail === "" ? {} : { close_cause: detail }),
      breaker: breakerName(this.breaker.state),
    });
  }

  private markReachable(): void {
    const r = this.reach;
    this.reach = { kind: "reachable" };
    if (r.kind === "unreachable") {
      this.deps.log.info("backend reachable again", { backend: this.endpoint, was: r.cause, down_ms: Date.now() - r.since });
    }
  }

  private newConnection(initialBuffer: number): BackendConnection {
    const d = this.deps;
    return new BackendConnection(
      { ...d.settings.connection, endpoint: this.endpoint, host: this.host, port: this.port, initialBuffer },
      d.layout,
      d.buffers,
      this,
      d.frames,
      this.tally,
      d.telemetry,
    );
  }

  /** Called per session bind/unbind and connection change, never per message. */
  private updatePoolGauges(): void {
    let active = this.openDedicated;
    let idle = 0;
    for (const c of this.slots) {
      if (c?.state !== "open") continue;
      if (c.sessions.size > 0) active++;
      else idle++;
    }
    this.deps.metrics.backendPoolActive.set({ backend: this.endpoint }, active);
    this.deps.metrics.backendPoolIdle.set({ backend: this.endpoint }, idle);
  }
}

export { breakerName } from "./breaker-log.ts";
