// The one place where the validated config becomes each module's options: one fromConfig per
// module. Modules never read GatewayConfig and Gateway never reads config keys for a module, so a
// new key touches its schema/type and the one function here that hands it to its module.
// Also the fixed tunables that are not keys, named and explained where the options are built.

import type { PoolSettings } from "../backend/endpoint-pool.ts";
import type { GrpcPoolSettings } from "../backend/grpc/grpc-endpoint-pool.ts";
import type { AdmissionOptions } from "../net/admission.ts";
import { type BufferPoolOptions, DEFAULT_CLASSES } from "../net/buffer-pool.ts";
import { CidrBlock, CidrList } from "../net/cidr.ts";
import type { TlsFiles } from "../net/tls-material.ts";
import type { WsListenerOptions } from "../net/ws-listener.ts";
import { bunIdleTimeoutSeconds } from "../net/ws-idle-timeout.ts";
import { OriginAllowList, type UpgradePolicy } from "../net/upgrade-request.ts";
import type { ProxyProtocolOptions, TcpListenerOptions, TcpListenerSettings } from "../net/tcp-listener.ts";
import type { SessionSettings } from "../session/session-service.ts";
import { BackendFrameLayout } from "../protocol/layouts.ts";
import { parseHostPort } from "./host-port.ts";
import type { GatewayConfig, RouteRule } from "./types.ts";

/**
 * Re-dial backoff never waits longer than this, whatever connection_pool.retry_delay doubles to
 * (a larger retry_delay is its own cap): past a few seconds a longer wait only delays recovery.
 */
export const MAX_REDIAL_DELAY_MS = 5_000;

/**
 * Returned pooled buffers kept for reuse; past it they go to the GC. Sized for a busy gateway's
 * working set (a few thousand clients' buffers) so steady traffic allocates nothing.
 */
export const BUFFER_POOL_MAX_IDLE_BYTES = 64 * 1024 * 1024;

export function bufferPoolFromConfig(): BufferPoolOptions {
  return { classes: DEFAULT_CLASSES, maxIdleBytes: BUFFER_POOL_MAX_IDLE_BYTES };
}

/** backend, circuit_breaker, connection_pool's dial settings and tracing: every endpoint pool's settings. */
export function poolSettingsFromConfig(c: GatewayConfig): PoolSettings {
  const cp = c.connection_pool;
  const cb = c.circuit_breaker;
  // per_session is the reference gateway's TCP contract: Trans only, dials retried as it retried
  // them, and its read/write timeouts as socket deadlines in place of Ping.
  const perSession = c.backend.mode === "per_session";
  return {
    mode: c.backend.mode,
    breaker: {
      failureThreshold: cb.failure_threshold,
      windowMs: cb.window,
      openTimeoutMs: cb.open_timeout,
      halfOpenMaxRequests: cb.half_open_max_requests,
    },
    pingIntervalMs: c.backend.ping_interval,
    pingTimeoutMs: c.backend.ping_timeout,
    idleTimeoutMs: cp.idle_timeout,
    maxRetries: cp.max_retries,
    connectionsPerEndpoint: c.backend.connections_per_endpoint,
    retryDelayMs: cp.retry_delay,
    maxRetryDelayMs: Math.max(MAX_REDIAL_DELAY_MS, cp.retry_delay),
    connection: {
      gatewayName: c.server.gateway_name,
      lifecycleMessages: c.backend.lifecycle_messages && !perSession,
      dialTimeoutMs: cp.dial_timeout,
      highWater: c.backend.write_queue_high_water,
      limit: c.backend.write_queue_limit,
      totalLimit: c.backend.write_queue_total_limit,
      traceContext: c.tracing.enable_trace_propagation,
      perSession,
      dialRetries: perSession ? cp.max_retries : 0,
      dialRetryDelayMs: cp.retry_delay,
      writeTimeoutMs: perSession ? cp.write_timeout : 0,
      keepAliveMs: cp.read_timeout,
    },
  };
}

/** The gRPC streams' settings (grpc.*, with the queue bounds and breaker the TCP pools use). */
export function grpcPoolSettingsFromConfig(c: GatewayConfig): GrpcPoolSettings {
  const tcp = poolSettingsFromConfig(c);
  return {
    gatewayName: c.server.gateway_name,
    breaker: tcp.breaker,
    heartbeatIntervalMs: c.grpc.heartbeat_interval,
    connectionTimeoutMs: c.grpc.connection_timeout,
    retryDelayMs: Math.min(c.connection_pool.retry_delay, c.grpc.reconnect_interval),
    reconnectIntervalMs: c.grpc.reconnect_interval,
    maxReconnectAttempts: c.grpc.max_reconnect_attempts,
    writeTimeoutMs: c.connection_pool.write_timeout,
    maxReceiveMessageSize: c.grpc.max_receive_message_size,
    highWater: c.backend.write_queue_high_water,
    limit: c.backend.write_queue_limit,
    totalLimit: c.backend.write_queue_total_limit,
    traceContext: c.tracing.enable_trace_propagation,
  };
}

/** The endpoints whose rules name the gRPC transport: a rule's own transport, else server.use_grpc. */
export function grpcEndpointsFromConfig(c: GatewayConfig): Set<string> {
  return grpcEndpointsOf(c.routing.rules, c.server.use_grpc);
}

/**
 * The endpoints of these rules that speak gRPC: a rule's own transport, else server.use_grpc.
 * The same decision for every rule in force, whether from the file, Redis or Consul.
 */
export function grpcEndpointsOf(rules: readonly RouteRule[], useGrpc: boolean): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    if ((r.transport ?? (useGrpc ? "grpc" : "tcp")) !== "grpc") continue;
    for (const e of r.endpoints) out.add(e);
  }
  return out;
}

export function sessionSettingsFromConfig(c: GatewayConfig): SessionSettings {
  const s = c.security;
  return {
    timeouts: {
      firstMessageMs: c.server.first_message_timeout,
      // session.*, not connection_pool.idle_timeout: that is a backend connection's idle life, as in the reference.
      idleMs: c.session.idle_timeout,
      idleCheckMs: c.session.idle_check_interval,
    },
    rateLimit: { rate: s.message_rate_limit, burst: s.message_rate_burst, action: s.message_rate_action },
    tracing: c.tracing.enable_trace_propagation,
    fallBackPastOpenBreakers: c.routing.when_breaker_open === "fall_back",
  };
}

/** One live session per client connection at most: the session cap is connection_pool.max_connections. */
export function maxSessionsFromConfig(c: GatewayConfig): number {
  return c.connection_pool.max_connections;
}

/** How backend frames are read: backend.max_frame_size bounds a frame's Length. */
export function backendFrameLayoutFromConfig(c: GatewayConfig): BackendFrameLayout {
  return new BackendFrameLayout(c.backend.max_frame_size);
}

export function admissionFromConfig(c: GatewayConfig): AdmissionOptions {
  const s = c.security;
  return { maxPerIp: s.max_connections_per_ip, ratePerSec: s.connection_rate_limit, maxTrackedIps: s.max_tracked_ips };
}

function trustedProxiesFromConfig(c: GatewayConfig): CidrList {
  return new CidrList(c.security.trusted_proxies.map((t) => CidrBlock.parse(t)!)); // validated by the loader
}

export function proxyProtocolFromConfig(c: GatewayConfig): ProxyProtocolOptions {
  return {
    mode: c.security.proxy_protocol,
    trusted: trustedProxiesFromConfig(c),
    headerTimeoutMs: c.security.proxy_header_timeout,
    maxPendingHeaders: c.security.max_pending_proxy_headers,
  };
}

/** What a WebSocket upgrade is checked against, on both ways in: allowed origins, proxies believed for X-Forwarded-For. */
export function upgradePolicyFromConfig(c: GatewayConfig): UpgradePolicy {
  return { origins: new OriginAllowList(c.security.allowed_origins), trustedProxies: trustedProxiesFromConfig(c) };
}

/** The client listener's limits: what a reload may change (host and port cannot). */
export function listenerLimitsFromConfig(c: GatewayConfig): Omit<TcpListenerOptions, "host" | "port"> {
  return {
    maxMessageSize: c.security.max_message_size,
    writeQueueLimit: c.server.client_write_queue_limit,
    closeTimeoutMs: c.connection_pool.write_timeout,
    maxConnections: c.connection_pool.max_connections,
    partialFrameTimeoutMs: c.server.partial_frame_timeout,
    pendingInputLimit: c.server.pending_input_limit,
    readTimeoutMs: c.server.client_read_timeout,
    writeTimeoutMs: clientWriteTimeout(c),
    sniffWebSocket: c.server.sniff_websocket,
    wsMaxPayloadLength: c.server.ws_max_payload_length,
    wsIdleTimeoutMs: c.server.ws_idle_timeout,
    wsSendPings: c.server.ws_send_pings,
  };
}

/** server.client_write_timeout when set; else, in per_session mode, the reference's connection_pool.write_timeout. */
function clientWriteTimeout(c: GatewayConfig): number {
  if (c.server.client_write_timeout > 0) return c.server.client_write_timeout;
  return c.backend.mode === "per_session" ? c.connection_pool.write_timeout : 0;
}

export function listenerFromConfig(c: GatewayConfig): TcpListenerOptions {
  const listen = parseHostPort(c.server.listen_addr)!; // validated by the loader
  return { host: listen.host, port: listen.port, ...listenerLimitsFromConfig(c) };
}

/** Everything the config decides for the client listener: its address and limits, and the PROXY protocol. */
export function listenerSettingsFromConfig(c: GatewayConfig): TcpListenerSettings {
  return { options: listenerFromConfig(c), proxy: proxyProtocolFromConfig(c), upgrade: upgradePolicyFromConfig(c) };
}

/** The dedicated WebSocket listener's limits: what a reload may change. */
export function wsListenerLimitsFromConfig(c: GatewayConfig) {
  const tcp = listenerLimitsFromConfig(c);
  return {
    maxMessageSize: tcp.maxMessageSize,
    writeQueueLimit: tcp.writeQueueLimit,
    closeTimeoutMs: tcp.closeTimeoutMs,
    maxConnections: tcp.maxConnections,
    partialFrameTimeoutMs: tcp.partialFrameTimeoutMs,
    pendingInputLimit: tcp.pendingInputLimit,
    readTimeoutMs: tcp.readTimeoutMs ?? 0,
    writeTimeoutMs: tcp.writeTimeoutMs ?? 0,
  };
}

/** The client listeners' TLS files (server.tls.*); read by src/net/tls-material.ts. */
export function tlsFilesFromConfig(c: GatewayConfig): TlsFiles {
  return { certFile: c.server.tls.cert_file, keyFile: c.server.tls.key_file, clientCaFile: c.server.tls.client_ca_file };
}

/** The dedicated WebSocket listener (server.ws_listen_addr), or null when it is off. */
export function wsListenerFromConfig(c: GatewayConfig): WsListenerOptions | null {
  if (c.server.ws_listen_addr === "") return null;
  const listen = parseHostPort(c.server.ws_listen_addr)!; // validated by the loader
  return {
    host: listen.host,
    port: listen.port,
    path: c.server.ws_path,
    maxPayloadLength: c.server.ws_max_payload_length,
    // Whole seconds on Bun's 4 s tick, chosen so no client is closed before the setting.
    idleTimeoutSec: bunIdleTimeoutSeconds(c.server.ws_idle_timeout),
    sendPings: c.server.ws_send_pings,
    ...wsListenerLimitsFromConfig(c),
  };
}

/** admin.listen_addr when set; else server.health_check_port (-1: none) on the client listener's host. */
export function adminAddressFromConfig(c: GatewayConfig): { host: string; port: number } | null {
  if (c.admin.listen_addr !== "") return parseHostPort(c.admin.listen_addr)!;
  if (c.server.health_check_port < 0) return null;
  return { host: parseHostPort(c.server.listen_addr)!.host, port: c.server.health_check_port };
}
