// The validated, typed configuration the rest of the gateway reads.
// Field names follow the YAML keys (and the reference gateway's keys where it had them),
// so a reader can grep from a YAML line to the code that uses it.
// Every duration is already converted to milliseconds; every size is in bytes.

import type { ProxyProtocolMode } from "../net/proxy-protocol.ts";

export type Millis = number;
export type Bytes = number;

/**
 * round_robin, consistent_hash and realm_based pick exactly as the reference gateway does (crc32
 * mod n); rendezvous_instance and rendezvous_world are ours (src/routing/router.ts).
 */
export type RouteStrategy = "round_robin" | "consistent_hash" | "realm_based" | "rendezvous_instance" | "rendezvous_world";
/**
 * multiplexed: sessions share a few connections per endpoint; dedicated: one connection per session
 * with this gateway's lifecycle messages and Ping; per_session: one connection per session speaking
 * the reference gateway's TCP contract (Trans only, ServerID 0, replies routed by the connection).
 */
export type BackendMode = "multiplexed" | "dedicated" | "per_session";
/** A new session whose route's chosen endpoint has an open breaker: take the strategy's fallback, or refuse (the reference). */
export type WhenBreakerOpen = "fall_back" | "refuse";
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type AccessLogTarget = "stdout" | "off";
export type RateLimitAction = "drop" | "close";

export interface RouteRule {
  /** 0..255, matched against the ServerID's serverType bits. */
  readonly server_type: number;
  /** 0..32767; 0 means any world (the wildcard rule for this server type). */
  readonly world_id: number;
  readonly service_name: string;
  readonly strategy: RouteStrategy;
  /** Carried by the reference's rules; used by no strategy there or here ("" when read from a file). */
  readonly hash_key?: string;
  /** Ours: this rule's backends speak "tcp" (the wire protocol) or "grpc" (StreamPackets); absent: server.use_grpc decides. */
  readonly transport?: "tcp" | "grpc";
  /**
   * "host:port" strings, no duplicates. Empty only for a rule that leaves them to Consul (as the
   * reference's may): with consul.enabled they are filled from there (src/discovery/combine.ts);
   * without it its clients are refused (no_route).
   */
  readonly endpoints: readonly string[];
}

export interface ServerConfig {
  /** ":8080", "0.0.0.0:8080", "127.0.0.1:0" (0 = ephemeral), "[::1]:8080". */
  readonly listen_addr: string;
  /** Admin HTTP port (health, ready, metrics) on listen_addr's host. 0 = ephemeral, -1 = disabled. admin.listen_addr, when set, wins. */
  readonly health_check_port: number;
  /** Accepted for compatibility with the reference config; unused there too (metrics are on the admin port). */
  readonly metrics_port: number;
  /** Empty: falls back to env POD_NAME, then the hostname (resolved by the loader). */
  readonly gateway_name: string;
  /** Every route's backends speak the reference's gRPC transport (GameGatewayService.StreamPackets). */
  readonly use_grpc: boolean;
  /** A connection that has not sent one complete frame by then is closed. */
  readonly first_message_timeout: Millis;
  /** Bytes queued toward one client (its socket would not take them) before it is closed as a slow reader. */
  readonly client_write_queue_limit: Bytes;
  /** A client frame started but not completed within this closes the client (partial_frame_timeout). */
  readonly partial_frame_timeout: Millis;
  /** Pooled bytes all clients' partial frames and input read while paused may hold; past it the client growing it is closed. */
  readonly pending_input_limit: Bytes;
  /** Delay between "not ready" and closing the listener on drain. */
  readonly drain_delay: Millis;
  /** Worker processes sharing the client listeners under a supervisor; 0 = one per CPU within the cgroup's CPU quota, 1 = a single process. */
  readonly workers: number;
  /** Nothing received from a client for this long closes it (reason read_timeout); 0 = off. The reference: connection_pool.read_timeout. */
  readonly client_read_timeout: Millis;
  /** Output queued to a client that its socket takes none of for this long closes it (write_timeout); 0 = off. The reference: connection_pool.write_timeout. */
  readonly client_write_timeout: Millis;
  /** The dedicated WebSocket listener's address; "" = none (handshakes on listen_addr still work). */
  readonly ws_listen_addr: string;
  /** The WebSocket listener's path; upgrades to other paths get 404. */
  readonly ws_path: string;
  /** Largest WebSocket message a client may send (the connection closes with 1009 past it). */
  readonly ws_max_payload_length: Bytes;
  /** A WebSocket client silent this long (pings unanswered) is closed, never before; 0 = off. Bun: up to 4 s after, rounded up to 4 s. */
  readonly ws_idle_timeout: Millis;
  /** Ping a quiet WebSocket client before ws_idle_timeout closes it. */
  readonly ws_send_pings: boolean;
  /** Tell WebSocket handshakes (and plain HTTP, answered 426) from game clients on listen_addr, as the reference. */
  readonly sniff_websocket: boolean;
  /** TLS on the client listeners (ours: the reference had none). */
  readonly tls: ServerTlsConfig;
}

/** PEM files; cert_file and key_file both "" = plain TCP and WebSocket. Re-read on every reload. */
export interface ServerTlsConfig {
  readonly cert_file: string;
  readonly key_file: string;
  /** Set: clients must present a certificate signed by this CA. */
  readonly client_ca_file: string;
}

export interface ConnectionPoolConfig {
  /** Global cap on concurrent client connections. */
  readonly max_connections: number;
  /** Accepted for compatibility (reference per-service pool size); not acted on yet. */
  readonly max_connections_per_service: number;
  /** The reference's idle life of a pooled backend connection (not a client's: session.idle_timeout). */
  readonly idle_timeout: Millis;
  readonly dial_timeout: Millis;
  /** Backend sockets: TCP keep-alive probes start after this much silence (a dead peer is found without closing idle players). */
  readonly read_timeout: Millis;
  /**
   * per_session mode: bytes queued toward the backend or the client and none accepted for this long
   * closes that session. All modes: how long a closing client may take to read what was queued for it.
   */
  readonly write_timeout: Millis;
  readonly max_retries: number;
  /** Base delay of the exponential re-dial backoff. */
  readonly retry_delay: Millis;
  /** The reference's goroutine pool size (0 = 10 x CPUs there); accepted, not acted on. */
  readonly max_goroutines: number;
  /** The reference's goroutine pool idle expiry; accepted, not acted on. */
  readonly goroutine_expiry: Millis;
  /** The reference's accept queue length; accepted, not acted on. */
  readonly connection_queue_size: number;
}

/** The reference's gRPC backend transport settings (server.use_grpc, a rule's transport grpc). */
export interface GrpcConfig {
  readonly heartbeat_interval: Millis;
  readonly connection_timeout: Millis;
  readonly reconnect_interval: Millis;
  /** 0 = unlimited. */
  readonly max_reconnect_attempts: number;
  /** Bytes: the largest GamePacket taken from a backend; a larger one fails the stream. */
  readonly max_receive_message_size: number;
}

export interface BackendConfig {
  /** The reference's default service addresses ("host:port" or ""); accepted, not acted on: routes come from routing.rules. */
  readonly account_service: string;
  readonly version_service: string;
  readonly game_service: string;
  /** See BackendMode. */
  readonly mode: BackendMode;
  /** Send Connect/Disconnect (opcodes 2/3). Off for backends that only know Trans. */
  readonly lifecycle_messages: boolean;
  /** Persistent connections per endpoint in multiplexed mode. */
  readonly connections_per_endpoint: number;
  /** Largest backend frame Length accepted (gate header + body); larger closes that connection. */
  readonly max_frame_size: Bytes;
  /** Bytes queued toward one backend connection before clients sending to it are paused. */
  readonly write_queue_high_water: Bytes;
  /** Hard bound: a frame that would push the queue past it closes the sending client. */
  readonly write_queue_limit: Bytes;
  /** Hard bound on the bytes queued toward all backend connections together; past it, as write_queue_limit. */
  readonly write_queue_total_limit: Bytes;
  /** A connection that has received nothing for this long is sent a Ping (not in per_session mode). */
  readonly ping_interval: Millis;
  /** A Ping not answered by a Pong within this closes the connection (connection_pool.read_timeout before). */
  readonly ping_timeout: Millis;
}

export interface CircuitBreakerConfig {
  /** Failures within `window` that open the breaker. */
  readonly failure_threshold: number;
  readonly window: Millis;
  /** How long an open breaker refuses new sessions before half-opening. */
  readonly open_timeout: Millis;
  /** New sessions let through while half-open. */
  readonly half_open_max_requests: number;
}

export interface SecurityConfig {
  /** Largest client body accepted; larger closes the client. At most 65535 (u16 Length). */
  readonly max_message_size: Bytes;
  readonly max_connections_per_ip: number;
  /** New connections per second per IP (token bucket; burst = the same number). */
  readonly connection_rate_limit: number;
  /** Bound on client IPs whose rate state is remembered; the least recently seen is forgotten past it. */
  readonly max_tracked_ips: number;
  /** Client frames per second per session; 0 = unlimited. */
  readonly message_rate_limit: number;
  /** Frames a session may send at once above the rate; 0 = message_rate_limit. */
  readonly message_rate_burst: number;
  /** Over the limit: drop the frame (counted) or close the client. */
  readonly message_rate_action: RateLimitAction;
  /** PROXY protocol v1/v2 on the client listener: off, optional or required for trusted peers. */
  readonly proxy_protocol: ProxyProtocolMode;
  /** CIDR blocks of load balancers allowed to send a PROXY header, and whose X-Forwarded-For is believed on a WebSocket upgrade. */
  readonly trusted_proxies: readonly string[];
  /** Origins allowed to open a WebSocket ([] = all; "scheme://host[:port]", "scheme://*.domain", "*"). */
  readonly allowed_origins: readonly string[];
  /** A trusted peer that has not sent its whole PROXY header by then is refused (proxy_timeout). */
  readonly proxy_header_timeout: Millis;
  /** Trusted connections that may wait for their header at once; more are refused (proxy_pending_limit). */
  readonly max_pending_proxy_headers: number;
}

export interface RoutingConfig {
  readonly refresh_interval: Millis;
  readonly realm_refresh_interval: Millis;
  /** realm_based sends a realm listed in Redis {key_prefix}realm:mapping to its address (false: the hash alone, as the reference's code). */
  readonly use_realm_mapping: boolean;
  /**
   * fall_back: skip an endpoint whose circuit breaker is open (round robin: the next turn;
   * consistent_hash / realm_based: the next index; rendezvous: the runner-up). refuse: the
   * strategy's choice or nothing, the client closed as the reference does.
   */
  readonly when_breaker_open: WhenBreakerOpen;
  readonly rules: readonly RouteRule[];
}

export interface SessionConfig {
  /** How often first-message and partial-frame deadlines (and backend health) are checked. */
  readonly sweep_interval: Millis;
  /** A client session with no traffic in either direction for this long is closed (the reference: 30m). */
  readonly idle_timeout: Millis;
  /** How often sessions are checked against idle_timeout (the reference: every 5m). */
  readonly idle_check_interval: Millis;
}

export interface RedisConfig {
  /** "host:port" of the Redis holding routing rules and the realm map; "" = none (routes from the file only). */
  readonly addr: string;
  readonly password: string;
  readonly db: number;
  readonly key_prefix: string;
  readonly pool_size: number;
  readonly min_idle_conns: number;
  readonly dial_timeout: Millis;
  readonly read_timeout: Millis;
  readonly write_timeout: Millis;
}

export interface ConsulConfig {
  readonly enabled: boolean;
  /** The agent's base URL; "" = http://$NODE_IP:8500, the reference's. */
  readonly address: string;
  readonly service_name: string;
  readonly namespace: string;
  readonly refresh_interval: Millis;
}

export interface GatewayConfig {
  readonly server: ServerConfig;
  readonly connection_pool: ConnectionPoolConfig;
  readonly backend: BackendConfig;
  readonly circuit_breaker: CircuitBreakerConfig;
  readonly security: SecurityConfig;
  readonly routing: RoutingConfig;
  readonly session: SessionConfig;
  readonly redis: RedisConfig;
  readonly consul: ConsulConfig;
  readonly grpc: GrpcConfig;
  readonly tracing: { readonly enable_trace_propagation: boolean };
  readonly log: {
    readonly level: LogLevel;
    /** One JSON record per session end, batched; "off" disables it. */
    readonly access_log: AccessLogTarget;
  };
  readonly admin: {
    /** Where the admin HTTP port listens; "" = server.health_check_port on server.listen_addr's host. */
    readonly listen_addr: string;
    /** Admin connections open at once; more are refused at accept (503, closed). */
    readonly max_connections: number;
    /** An admin connection whose request has not arrived (or whose response stalls) this long is closed. */
    readonly idle_timeout: Millis;
    /** Enables /debug/stats, /debug/heap and /debug/pprof/* for requests carrying this token; "" keeps them off. */
    readonly debug_token: string;
  };
  readonly graceful_shutdown_timeout: Millis;
}
