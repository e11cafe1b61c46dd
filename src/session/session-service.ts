import type { AccessLog } from "../admin/access-log.ts";
import type { GatewayMetrics } from "../admin/metrics.ts";
import { type RoutingError, bump } from "../telemetry/counters.ts";
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
import { closeStatus, NO_SESSION_FIELDS } from "./close-status.ts";


// Client -> backend: binds a connection to a session on its first frame and forwards the rest.
// The session is registered before anything reaches the backend, so a reply can never arrive
// for a session the gateway does not know yet. Also enforces the first-message and idle timeouts.

/** How the reference counts each client violation in routing_errors_total. */
const ROUTING_ERROR_OF: Readonly<Record<ClientViolation, RoutingError>> = {
  no_route: "not_found",
  client_body_too_large: "message_too_large",
};

export interface SessionTimeouts {
  readonly firstMessageMs: number;
  /** A session with no traffic in either direction for this long is closed... */
  readonly idleMs: number;
  /** ...when next checked: idle sessions are looked for this often (a walk over every session). */
  readonly idleCheckMs: number;
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
  /**
   * A route's chosen endpoint has an open breaker: true, the strategy falls back to another
   * endpoint; false, the client is refused, as the reference gateway does.
   */
  readonly fallBackPastOpenBreakers: boolean;
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
  /** Where the per-connection access records go; null = no access log. */
  readonly accessLog: AccessLog | null;
  /** Exports each connection's spans (OTEL_EXPORTER_OTLP_ENDPOINT set); null or absent = no export. */
  readonly tracer?: ConnectionTracer | null;
  /** Milliseconds since the epoch (default Date.now); tests pass a clock they advance themselves. */
  readonly now?: () => number;
}

export class SessionService implements ClientEvents {
  /** The first endpoint a pick found with an open breaker: the one the failed bind is counted against. */
  private firstRefused: string | null = null;
  private readonly admits = (endpoint: string): boolean => {
    if (this.backends.admits(endpoint)) return true;
    this.firstRefused ??= endpoint;
    return false;
  };
  /** Connections that have not completed a first frame yet, with their accept time. */
  private readonly awaitingFirst = new Map<ClientPort, number>();
  /**
   * Opened connections refused at admission or upgrade (their refusal is counted), until their
   * close: bounded by the open connections, each refused one being closed at once.
   */
  private readonly refusedPorts = new Set<ClientPort>();
  /** Connections refused for their first frame's route, until closed: that frame's ServerID. */
  private readonly unrouted = new Map<ClientPort, number>();
  private readonly sessions: SessionManager;
  private router: Router;
  private readonly backends: BackendEndpoints;
  private timeouts: SessionTimeouts;
  private rateLimit: MessageRateLimit;
  private fallBackPastOpenBreakers: boolean;
  private readonly metrics: GatewayMetrics;
  private readonly log: Logger;
  private readonly throttled: ThrottledLog;
  /** Sessions get a trace ID and span ID: trace propagation or span export is on. */
  private readonly tracing: boolean;
  private readonly tracer: ConnectionTracer | null;
  private readonly accessLog: AccessLog | null;
  private readonly now: () => number;
  /** When sweep() next looks for idle sessions. */
  private nextIdleCheckAt: number;

  constructor(o: SessionServiceOptions) {
    this.sessions = o.sessions;
    this.router = o.router;
    this.backends = o.backends;
    this.timeouts = o.timeouts;
    this.rateLimit = o.rateLimit;
    this.fallBackPastOpenBreakers = o.fallBackPastOpenBreakers;
    this.metrics = o.metrics;
    this.log = o.log;
    this.throttled = o.throttledLog;
    this.tracer = o.tracer ?? null;
    this.tracing = o.tracing || this.tracer !== null;
    this.accessLog = o.accessLog;
    this.now = o.now ?? Date.now;
    this.nextIdleCheckAt = this.now() + o.timeouts.idleCheckMs;
  }

  /**
   * Routes for sessions created from now on (live sessions keep their endpoint; round robin
   * counters carry over); timeouts and rate limit for all. Tracing cannot change on a reload.
   */
  reconfigure(router: Router, settings: SessionSettings): void {
    router.continueCountersFrom(this.router);
    this.router = router;
    this.timeouts = settings.timeouts;
    // A shorter interval applies from now; a longer one from the check already due.
    this.nextIdleCheckAt = Math.min(this.nextIdleCheckAt, this.now() + settings.timeouts.idleCheckMs);
    this.rateLimit = settings.rateLimit;
    this.fallBackPastOpenBreakers = settings.fallBackPastOpenBreakers;
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
      s = this.bind(port, b, off, openedAt);
      // Refused ports stay listed until closed: their access record times the connection from it.
      if (s === null) return false;
      this.awaitingFirst.delete(port);
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
    this.metrics.countRoutingError(ROUTING_ERROR_OF[reason]);
    const what = reason === "no_route" ? "no routing rule for the client's server type and world; closing client" : "client frame broke the wire contract; closing client";
    this.throttled.warn(`client-violation:${reason}`, what, {
      client: port.remoteAddress,
      session: port.session?.id,
      reason,
    });
    port.close(reason === "no_route" ? "no_route" : "malformed_frame");
  }

  /**
   * A connection refused before it could carry a session: counted, logged (throttled per reason,
   * with how many were left out since the last line) and given an access record with status
   * "rejected" (within the access log's budget for refusals; past it, summarised).
   */
  onConnectionRefused(client: string, protocol: ClientProtocol, refusal: string, port?: ClientPort): void {
    // Counted here once: the port's close (reason "rejected") is then not a client close too.
    if (port !== undefined) this.refusedPorts.add(port);
    this.metrics.connectionRefused(refusal);
    this.throttled.warn(`refused:${refusal}`, "connection refused", { client, reason: refusal });
    this.accessLog?.rejected({
      ...NO_SESSION_FIELDS,
      endedAtMs: this.now(),
      clientAddress: client,
      protocol,
      status: "rejected",
      reason: "rejected",
      errorMessage: `connection refused: ${refusal}`,
      durationMs: 0,
      refusal,
    });
  }

  /** A listener's unexpected error (the request got a plain 500): one throttled line, no stack. */
  onListenerError(protocol: ClientProtocol, error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    this.throttled.warn(`listener-error:${protocol}`, "unexpected error answering a request; answered 500", {
      protocol,
      "error.type": e.name,
      "error.message": e.message.slice(0, 200),
    });
  }

  /** A trusted proxy sent an X-Forwarded-For that names no address: counted and logged (throttled). */
  onForwardedForMalformed(peer: string, value: string): void {
    bump(this.metrics.clientViolations, "forwarded_for_malformed");
    this.throttled.warn("forwarded-for-malformed", "X-Forwarded-For from a trusted proxy is not a list of addresses; the proxy's address stands for the client", {
      client: peer,
      x_forwarded_for: value.slice(0, 200),
    });
  }

  /** The client's socket is gone: tear the session down and tell its backend. */
  onClientClosed(port: ClientPort, reason: CloseReason): void {
    const openedAt = this.awaitingFirst.get(port);
    this.awaitingFirst.delete(port);
    this.metrics.connectionsActive.dec();
    if (!this.refusedPorts.delete(port)) this.metrics.clientCloses.inc({ reason });
    const s = port.session;
    if (s === null) {
      // Never a session (no first frame, or refused by it): its two connection spans only.
      if (openedAt !== undefined) this.tracer?.connectionEnded(port.remoteAddress, openedAt, reason, port.traceParent);
      // Refused connections got their record from onConnectionRefused.
      if (reason !== "rejected") this.recordUnbound(port, reason, openedAt);
      this.unrouted.delete(port);
      return;
    }
    s.closeReason = reason;
    this.sessions.remove(s);
    this.metrics.sessionsActive.dec();
    const backend = s.endpoint;
    s.link?.release(s, reason);
    if (s.spans !== null) this.tracer!.sessionEnded(s, s.spans, reason);
    if (this.log.enabled("debug")) this.log.debug("session ended", { session: s.id, trace_id: s.traceId?.toHex(), reason, backend });
    this.recordEnd(port, s, backend, reason);
  }

  /**
   * A forced exit (a second stop signal) ends the process before any close event: each live
   * connection gets its access record now, with the reason it is about to end for.
   */
  recordLiveSessions(reason: CloseReason): void {
    for (const s of this.sessions) this.recordEnd(s.client, s, s.endpoint, reason);
    for (const [port, openedAt] of this.awaitingFirst) if (port.session === null) this.recordUnbound(port, reason, openedAt);
  }

  private recordEnd(port: ClientPort, s: Session, backend: string | null, reason: CloseReason): void {
    if (this.accessLog === null) return;
    const { status, errorMessage } = closeStatus(reason);
    this.accessLog.record({
      endedAtMs: this.now(),
      clientAddress: port.remoteAddress,
      protocol: port.protocol,
      status,
      reason,
      errorMessage,
      durationMs: this.now() - s.connectedAt,
      traceId: s.traceId === null ? "" : s.traceId.toHex(),
      // The span ID the backend saw in the gate header: gateway.forward_connection's when exporting.
      spanId: s.spanId === null ? "" : s.spanId.toHex(),
      sessionId: s.id.toString(),
      serverType: s.serverType,
      worldId: s.worldId,
      serverAddress: backend ?? "",
      bytesReceived: s.bytesIn,
      bytesSent: s.bytesOut,
      messagesReceived: s.messagesIn,
      messagesSent: s.messagesOut,
    });
  }

  /** A connection that ended before a session was bound (no first frame, or a bad one). */
  private recordUnbound(port: ClientPort, reason: CloseReason, openedAt: number | undefined): void {
    if (this.accessLog === null) return;
    const { status, errorMessage } = closeStatus(reason);
    const now = this.now();
    const asked = this.unrouted.get(port);
    this.accessLog.record({
      ...NO_SESSION_FIELDS,
      ...(asked === undefined ? {} : { serverType: serverIdType(asked), worldId: serverIdWorld(asked) }),
      endedAtMs: now,
      clientAddress: port.remoteAddress,
      protocol: port.protocol,
      status,
      reason,
      errorMessage,
      durationMs: openedAt === undefined ? 0 : now - openedAt,
    });
  }

  /**
   * Closes connections past their first-message deadline (every call: that deadline is meant to
   * be precise) and, every idleCheckMs, sessions idle past idleMs.
   */
  sweep(now = this.now()): void {
    const { firstMessageMs, idleMs, idleCheckMs } = this.timeouts;
    for (const [port, openedAt] of this.awaitingFirst) {
      // Left listed until its close event: its access record times the connection from openedAt.
      if (now - openedAt >= firstMessageMs && !port.closing) port.close("first_message_timeout");
    }
    if (now < this.nextIdleCheckAt) return;
    this.nextIdleCheckAt = now + idleCheckMs;
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
    // A rule with no endpoints (the reference's Consul would fill them) still claims its address.
    if (rule === undefined || rule.endpoints.length === 0) {
      // Kept until the close event, so the access record says what the client asked for.
      this.unrouted.set(port, serverId);
      this.onClientViolation(port, "no_route");
      return null;
    }
    const instId = serverIdInst(serverId);
    const s = this.sessions.create(port, { serverType, worldId, instId });
    if (s === null) {
      this.metrics.countRoutingError("session_limit");
      port.close("backend_unavailable");
      return null;
    }
    port.session = s;
    s.connectedAt = openedAt;
    if (this.tracing) {
      // A traceparent on the WebSocket upgrade: the session joins the caller's trace.
      const parent = port.traceParent;
      s.traceParent = parent;
      s.traceId = parent === null ? TraceId.random() : parent.traceId;
      s.spanId = SpanId.random();
      if (this.tracer !== null) s.spans = this.tracer.sessionStarted(s, openedAt);
    }
    this.metrics.sessionsActive.inc();
    this.firstRefused = null;
    const endpoint = this.fallBackPastOpenBreakers
      ? rule.pick(worldId, instId, s.lo ^ s.hi, this.admits)
      : refusedIfDown(rule.pick(worldId, instId, s.lo ^ s.hi), this.admits);
    if (endpoint === null) {
      if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, null);
      // Counted against the endpoint the strategy would have picked first, as the reference
      // (which checks the chosen backend's breaker) counts it.
      const refused = this.firstRefused;
      if (refused !== null) this.metrics.sessionBindFailed(this.metrics.backendTally(refused), "circuit_breaker_open");
      else this.metrics.countRoutingError("circuit_breaker_open");
      this.throttled.warn(`circuit-open:${serverType}:${worldId}`, "every endpoint of the route has an open breaker; closing client", {
        server_type: serverType,
        world: worldId,
        client: port.remoteAddress,
      });
      port.close("backend_unavailable");
      return null;
    }
    s.endpoint = endpoint;
    const pool = this.backends.pool(endpoint);
    if (!pool.attach(s)) {
      if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, null);
      // Counted by the pool (routing_errors_total{error_type="connection_failed"}, backend_requests_total{status="error"}).
      this.throttled.warn(`unavailable:${pool.endpoint}`, "no backend connection for a new session; closing client", {
        backend: pool.endpoint,
        client: port.remoteAddress,
      });
      port.close("backend_unavailable");
      return null;
    }
    if (s.spans !== null) this.tracer!.sessionRouted(s, s.spans, pool.endpoint, pool.transport);
    this.metrics.connectionSetupLatency.observe({ service_type: String(serverType) }, (this.now() - openedAt) / 1000);
    if (this.log.enabled("debug")) {
      const traceId = s.traceId === null ? undefined : s.traceId.toHex();
      this.log.debug("session bound", { session: s.id, trace_id: traceId, client: port.remoteAddress, backend: pool.endpoint, server_type: serverType, world: worldId });
    }
    return s;
  }
}

/** The reference's policy: the strategy's choice, or nothing when that endpoint's breaker is open. */
function refusedIfDown(endpoint: string | null, admits: (endpoint: string) => boolean): string | null {
  return endpoint !== null && admits(endpoint) ? endpoint : null;
}
