import type { AccessLog } from "../admin/access-log.ts";
import type { GatewayMetrics } from "../admin/metrics.ts";
import { bump } from "../telemetry/counters.ts";
import type { Logger, ThrottledLog } from "../log/logger.ts";
import {
  readClientServerId,
  serverIdInst,
  serverIdType,
  serverIdWorld,
} from "../protocol/client-frame.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import type { Router } from "../routing/router.ts";
import type { BackendEndpoints } from "./backend-side.ts";
import type { ClientEvents, ClientPort, ClientProtocol, CloseReason } from "./client-port.ts";
import type { Session } from "./session.ts";
import type { SessionManager } from "./session-manager.ts";
import { SpanId, TraceId } from "../protocol/trace-context.ts";
import type { ConnectionTracer } from "./connection-tracer.ts";
import { takeToken } from "../net/token-bucket.ts";

// Client -> backend: binds a connection to a session on its first frame and forwards the rest.
// The session is registered before anything reaches the backend, so a reply can never arrive
// for a session the gateway does not know yet. Also enforces the first-message and idle timeouts.

export interface SessionTimeouts {
  readonly firstMessageMs: number;
  readonly idleMs: number;
}

/** Per-session message rate limit; rate 0 = off. */
export interface MessageRateLimit {
  readonly rate: number;
  readonly burst: number;
  readonly action: "drop" | "close";
}

/** The settings a SessionService takes from the config (config/module-options.ts builds them). */
export interface SessionSettings {
  readonly timeouts: SessionTimeouts;
  readonly rateLimit: MessageRateLimit;
  /** Give each session a W3C trace ID (trace propagation); fixed for the process's life. */
  readonly tracing: boolean;
}

/** What a SessionService is built from: its settings and its collaborators, by name. */
export interface SessionServiceOptions extends SessionSettings {
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly backends: BackendEndpoints;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /** For warnings a misbehaving client could repeat at line rate. */
  readonly throttledLog: ThrottledLog;
  /** Where session-end records go; null = no access log. */
  readonly accessLog: AccessLog | null;
  /** Exports each connection's spans (OTEL_EXPORTER_OTLP_ENDPOINT set); null or absent = no export. */
  readonly tracer?: ConnectionTracer | null;
  /** Milliseconds since the epoch (default Date.now); tests pass a clock they advance themselves. */
  readonly now?: () => number;
}

export class SessionService implements ClientEvents {
  private readonly admits = (endpoint: string): boolean => this.backends.admits(endpoint);
  /** Connections that have not completed a first frame yet, with their accept time. */
  private readonly awaitingFirst = new Map<ClientPort, number>();
  private readonly sessions: SessionManager;
  private router: Router;
  private readonly backends: BackendEndpoints;
  private timeouts: SessionTimeouts;
  private rateLimit: MessageRateLimit;
  private readonly metrics: GatewayMetrics;
  private readonly log: Logger;
  private readonly throttled: ThrottledLog;
  /** Sessions get a trace ID and span ID: trace propagation or span export is on. */
  private readonly tracing: boolean;
  private readonly tracer: ConnectionTracer | null;
  private readonly accessLog: AccessLog | null;
  private readonly now: () => number;

  constructor(o: SessionServiceOptions) {
    this.sessions = o.sessions;
    this.router = o.router;
    this.backends = o.backends;
    this.timeouts = o.timeouts;
    this.rateLimit = o.rateLimit;
    this.metrics = o.metrics;
    this.log = o.log;
    this.throttled = o.throttledLog;
    this.tracer = o.tracer ?? null;
    this.tracing = o.tracing || this.tracer !== null;
    this.accessLog = o.accessLog;
    this.now = o.now ?? Date.now;
  }

  /**
   * Routes for sessions created from now on (live sessions keep their endpoint); timeouts and rate
   * limit for all. Tracing cannot change on a reload.
   */
  reconfigure(router: Router, settings: SessionSettings): void {
    this.router = router;
    this.timeouts = settings.timeouts;
    this.rateLimit = settings.rateLimit;
    this.backends.retain(router.endpoints());
  }

  get pendingConnections(): number {
    return this.awaitingFirst.size;
  }

  onClientOpen(port: ClientPort): void {
    this.awaitingFirst.set(port, this.now());
    this.metrics.connectionsTotal.inc();
    this.metrics.connectionsActive.inc();
  }

  /** One whole client frame. Returns false once the port is closing (stop reading). */
  onClientFrame(port: ClientPort, b: Uint8Array, off: number, len: number): boolean {
    let s = port.session;
    if (s === null) {
      const openedAt = this.awaitingFirst.get(port) ?? this.now();
      this.awaitingFirst.delete(port);
      s = this.bind(port, b, off, openedAt);
      if (s === null) return false;
    }
    const now = this.now();
    s.lastActive = now;
    const limit = this.rateLimit;
    if (limit.rate > 0 && !takeToken((s.rate ??= { tokens: Number.POSITIVE_INFINITY, at: now }), now, limit.rate, limit.burst > 0 ? limit.burst : limit.rate)) {
      this.metrics.rateLimitRejections++;
      if (limit.action === "close") {
        port.close("rate_limited");
        return false;
      }
      bump(this.metrics.drops, "rate_limited");
      return true;
    }
    s.messagesIn++;
    s.bytesIn += len;
    this.metrics.messagesIn[s.serverType]!++;
    const link = s.link;
    if (link === null || !link.sendTrans(s, b, off, len)) {
      bump(this.metrics.drops, link === null ? "backend_unavailable" : "backend_congested");
      port.close(link === null ? "backend_unavailable" : "backend_congested");
      return false;
    }
    return !port.closing;
  }

  /** The client broke the contract: close it with the reason, logged and counted. */
  onClientViolation(port: ClientPort, reason: ClientViolation): void {
    bump(this.metrics.clientViolations, reason);
    this.throttled.warn(`client-violation:${reason}`, "client frame broke the wire contract; closing client", {
      client: port.remoteAddress,
      session: port.session?.id,
      reason,
    });
    port.close(reason === "no_route" ? "no_route" : "malformed_frame");
  }

  /**
   * A connection refused before it could carry a session: counted, logged (throttled per reason,
   * with how many were left out since the last line) and one access record with reason "rejected".
   */
  onConnectionRefused(client: string, protocol: ClientProtocol, refusal: string): void {
    this.metrics.connectionRejected.inc({ reason: refusal });
    this.throttled.warn(`refused:${refusal}`, "connection refused", { client, reason: refusal });
    this.accessLog?.record({
      time: new Date(this.now()).toISOString(),
      client,
      protocol,
      session: "",
      server_type: 0,
      world: 0,
      backend: null,
      bytes_in: 0,
      bytes_out: 0,
      msgs_in: 0,
      msgs_out: 0,
      duration_ms: 0,
      reason: "rejected",
      refusal,
    });
  }

  /** The client's socket is gone: tear the session down and tell its backend. */
  onClientClosed(port: ClientPort, reason: CloseReason): void {
    const unboundSince = this.awaitingFirst.get(port);
    this.awaitingFirst.delete(port);
    if (unboundSince !== undefined) this.tracer?.connectionEnded(port.remoteAddress, unboundSince, reason);
    this.metrics.connectionsActive.dec();
    this.metrics.clientCloses.inc({ reason });
    const s = port.session;
    if (s === null) return;
    s.closeReason = reason;
    this.sessions.remove(s);
    this.metrics.sessionsActive.dec();
    const backend = s.link?.endpoint ?? null;
    s.link?.release(s, reason);
    if (s.spans !== null) this.tracer!.sessionEnded(s, s.spans, reason);
    if (this.log.enabled("debug")) this.log.debug("session ended", { session: s.id, trace_id: s.traceId?.toHex(), reason, backend });
    this.recordEnd(port, s, backend, reason);
  }

  /**
   * A forced exit (a second stop signal) ends the process before any close event: each live
   * session gets its access record now, with the reason it is about to end for.
   */
  recordLiveSessions(reason: CloseReason): void {
    for (const s of this.sessions) this.recordEnd(s.client, s, s.link?.endpoint ?? null, reason);
  }

  private recordEnd(port: ClientPort, s: Session, backend: string | null, reason: CloseReason): void {
    const traceId = s.traceId === null ? undefined : s.traceId.toHex();
    this.accessLog?.record({
      time: new Date(this.now()).toISOString(),
      client: port.remoteAddress,
      protocol: port.protocol,
      session: s.id.toString(),
      trace_id: traceId,
      server_type: s.serverType,
      world: s.worldId,
      backend,
      bytes_in: s.bytesIn,
      bytes_out: s.bytesOut,
      msgs_in: s.messagesIn,
      msgs_out: s.messagesOut,
      duration_ms: Date.now() - s.createdAt, // createdAt is wall-clock time (Session), whatever clock this service was given
      reason,
    });
  }

  /** Closes connections past their first-message deadline and sessions idle past idle_timeout. */
  sweep(now = this.now()): void {
    const { firstMessageMs, idleMs } = this.timeouts;
    for (const [port, openedAt] of this.awaitingFirst) {
      if (now - openedAt >= firstMessageMs) {
        this.awaitingFirst.delete(port);
        this.tracer?.connectionEnded(port.remoteAddress, openedAt, "first_message_timeout");
        port.close("first_message_timeout");
      }
    }
    for (const s of this.sessions.idleSince(now - idleMs)) s.client.close("idle_timeout");
  }

  /** Closes every client (shutdown). */
  closeAll(reason: CloseReason): void {
    for (const port of [...this.awaitingFirst.keys()]) port.close(reason);
    for (const s of [...this.sessions]) s.client.close(reason);
  }

  private bind(port: ClientPort, b: Uint8Array, off: number, openedAt: number): Session | null {
    const serverId = readClientServerId(b, off);
    const serverType = serverIdType(serverId);
    const worldId = serverIdWorld(serverId);
    const rule = this.router.ruleFor(serverType, worldId);
    if (rule === undefined) {
      this.tracer?.connectionEnded(port.remoteAddress, openedAt, "no_route");
      this.metrics.routingErrors.inc({ error_type: "no_route" });
      this.onClientViolation(port, "no_route");
      return null;
    }
    const instId = serverIdInst(serverId);
    const s = this.sessions.create(port, { serverType, worldId, instId });
    if (s === null) {
      this.metrics.routingErrors.inc({ error_type: "session_limit" });
      port.close("backend_unavailable");
      return null;
    }
    port.session = s;
    if (this.tracing) {
      s.traceId = TraceId.random();
      s.spanId = SpanId.random();
      if (this.tracer !== null) s.spans = this.tracer.sessionStarted(s, openedAt);
    }
    this.metrics.sessionsActive.inc();
    const endpoint = rule.pick(worldId, instId, s.lo ^ s.hi, this.admits);
    if (endpoint === null) {
      if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, null);
      this.metrics.routingErrors.inc({ error_type: "circuit_open" });
      this.throttled.warn(`circuit-open:${serverType}:${worldId}`, "every endpoint of the route has an open breaker; closing client", {
        server_type: serverType,
        world: worldId,
        client: port.remoteAddress,
      });
      port.close("backend_unavailable");
      return null;
    }
    const pool = this.backends.pool(endpoint);
    if (!pool.attach(s)) {
      if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, null);
      this.metrics.routingErrors.inc({ error_type: "backend_unavailable" });
      this.throttled.warn(`unavailable:${pool.endpoint}`, "no backend connection for a new session; closing client", {
        backend: pool.endpoint,
        client: port.remoteAddress,
      });
      port.close("backend_unavailable");
      return null;
    }
    if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, pool.endpoint);
    this.metrics.connectionSetupLatency.observe({ service_type: String(serverType) }, (this.now() - openedAt) / 1000);
    if (this.log.enabled("debug")) {
      const traceId = s.traceId === null ? undefined : s.traceId.toHex();
      this.log.debug("session bound", { session: s.id, trace_id: traceId, client: port.remoteAddress, backend: pool.endpoint, server_type: serverType, world: worldId });
    }
    return s;
  }
}
