// Every config key with its default and its bounds. Keys and defaults the reference gateway has
// are kept as it had them, so its config files load unchanged.

import { readRules } from "./rules.ts";
import { isDialableEndpoint } from "./host-port.ts";
import { bool, custom, duration, hostPort, int, issue, oneOf, size, str, type ReadContext, type Section } from "./schema.ts";
import type { AccessLogTarget, LogLevel, RateLimitAction, RouteRule, WhenBreakerOpen } from "./types.ts";
import { CidrBlock } from "../net/cidr.ts";
import { originEntryProblem } from "../net/upgrade-request.ts";
import type { ProxyProtocolMode } from "../net/proxy-protocol.ts";
import { MAX_CLIENT_BODY, MAX_CLIENT_FRAME } from "../protocol/client-frame.ts";
import { MAX_WORKERS } from "../session/session-id.ts";

/** Gate header (9) + multicast count (u16) + 65,535 session IDs (i64) + the largest client body. */
export const DEFAULT_MAX_FRAME_SIZE = 9 + 2 + 8 * 65535 + MAX_CLIENT_BODY;
/** The largest frame the gateway itself sends a backend: server header 20 + traced gate header 33 + body. */
const LARGEST_FRAME_TO_BACKEND = 20 + 33 + MAX_CLIENT_BODY;

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

const anySize = size(1, 1);
const maxMessageSize = custom<number>(
  MAX_CLIENT_BODY,
  (v, p, ctx) => {
    const n = anySize.read(v, p, ctx);
    if (n === undefined || n <= MAX_CLIENT_BODY) return n;
    // The reference's default is 1048576, and it silently truncated larger bodies; its files must
    // still load, so clamp to what the wire can carry, and say so.
    ctx.warnings.push(`${p}: ${n} clamped to ${MAX_CLIENT_BODY}: the client wire protocol's Length field is a u16`);
    return MAX_CLIENT_BODY;
  },
  undefined,
  anySize.traits,
).zeroMeansDefault();

/**
 * The least server.pending_input_limit can be: the pooled buffer that holds one partial frame of
 * the largest size a client may send (MAX_CLIENT_FRAME, in the buffer pool's 65,544-byte class).
 * A smaller budget would close every client that sends one large frame in more than one read.
 */
export const MIN_PENDING_INPUT_LIMIT = 65_544;
const anyPendingInput = size("64MiB", 1);
const pendingInputLimit = custom<number>(
  64 * 1024 * 1024,
  (v, p, ctx) => {
    const n = anyPendingInput.read(v, p, ctx);
    if (n === undefined || n >= MIN_PENDING_INPUT_LIMIT) return n;
    return issue(
      ctx,
      p,
      v,
      `a size of at least ${MIN_PENDING_INPUT_LIMIT}: room for one partial frame of the largest a client may send (${MAX_CLIENT_FRAME} bytes: 8-byte header + ${MAX_CLIENT_BODY}-byte body)`,
    );
  },
  undefined,
  anyPendingInput.traits,
);

/** consul.address: "" or an http(s) URL with a host. */
function readConsulAddress(v: unknown, p: string, ctx: ReadContext): string | undefined {
  if (v === "") return "";
  if (typeof v === "string" && /^https?:\/\/[^/?#\s]+\/?$/.test(v)) return v;
  return issue(ctx, p, v, `"" (http://$NODE_IP:8500) or an agent URL such as "http://127.0.0.1:8500"`);
}

/** The reference's backend.*_service: "host:port" strings (or "" for none). */
const serviceAddress = custom<string>("", (v, p, ctx) =>
  v === "" || (typeof v === "string" && isDialableEndpoint(v)) ? (v as string) : issue(ctx, p, v, `"host:port" with a host and a port 1..65535, or ""`),
);

// Why keys are accepted but not acted on; a later version that implements one removes its marker.
const REDIS_CONNECTIONS = "Redis connection tuning: two connections (commands, pub/sub), each command bounded by redis.read_timeout";
const DEFAULT_SERVICES = "the reference's default service addresses: routes come from routing.rules, there from Redis";
const GOROUTINE_POOL = "tuning of the reference's goroutine pool and accept queue: this gateway has neither: one event loop serves every connection";

function readCidrList(value: unknown, path: string, ctx: ReadContext): readonly string[] | undefined {
  if (!Array.isArray(value)) return issue(ctx, path, value, 'a list of CIDR blocks like ["10.0.0.0/8", "::1/128"]');
  let ok = true;
  value.forEach((v, i) => {
    if (typeof v !== "string" || CidrBlock.parse(v) === undefined) {
      ok = false;
      issue(ctx, `${path}[${i}]`, v, 'a CIDR block like "10.0.0.0/8" or an address like "192.168.1.10"');
    }
  });
  return ok ? (value as string[]) : undefined;
}

function readOriginList(value: unknown, path: string, ctx: ReadContext): readonly string[] | undefined {
  if (!Array.isArray(value)) return issue(ctx, path, value, 'a list of origins like ["https://play.example.com", "https://*.example.com"] ([]: every origin)');
  let ok = true;
  value.forEach((v, i) => {
    const problem = typeof v === "string" ? originEntryProblem(v) : "an origin string";
    if (problem !== null) {
      ok = false;
      issue(ctx, `${path}[${i}]`, v, problem);
    }
  });
  return ok ? (value as string[]) : undefined;
}

// "" keeps the reference's layout: the admin port is server.health_check_port on the client
// listener's host. Set, it wins over both.
const anyListenAddr = hostPort("", 0, false);
const adminListenAddr = custom<string>("", (v, p, ctx) => (v === "" ? "" : anyListenAddr.read(v, p, ctx)));

const wsIdle = duration("120s", 0);
const WS_IDLE_MAX_MS = 960_000;

export const GATEWAY_SCHEMA = {
  server: {
    listen_addr: hostPort(":8080", 0, false).zeroMeansDefault(),
    health_check_port: int(9090, -1, 65535, "a port 1..65535 (0: the default 9090), or -1 to disable").zeroMeansDefault(),
    metrics_port: int(9091, 0, 65535, "a port 0..65535")
      .zeroMeansDefault()
      .notActedOn("unused there too: metrics are on the admin port, server.health_check_port"),
    gateway_name: str(""),
    use_grpc: bool(false),
    first_message_timeout: duration("10s", "positive"),
    client_write_queue_limit: size("1MiB", 1),
    partial_frame_timeout: duration("10s", "positive"),
    pending_input_limit: pendingInputLimit,
    drain_delay: duration("0s", 0),
    // Ours: worker processes sharing the client listeners (SO_REUSEPORT) under a supervisor; 0 (or
    // unset) = one per CPU within the cgroup's CPU quota, 1 = one process and no supervisor (src/supervisor).
    workers: int(0, 0, MAX_WORKERS, `0 (one per CPU) or 1..${MAX_WORKERS} worker processes`).zeroMeansDefault(),
    // The reference's connection_pool.read_timeout / write_timeout as client socket deadlines; 0s: off.
    client_read_timeout: duration("0s", 0),
    client_write_timeout: duration("0s", 0),
    // The dedicated WebSocket listener (Bun's native WebSocket); "" = off. WebSocket handshakes on
    // listen_addr are accepted either way, as the reference accepts them.
    ws_listen_addr: adminListenAddr,
    ws_path: custom<string>("/ws", (v, p, ctx) =>
      typeof v === "string" && v.startsWith("/") ? v : issue(ctx, p, v, 'a URL path starting with "/", e.g. "/ws"'),
    ),
    ws_max_payload_length: size("1MiB", 1, 2 ** 32 - 1),
    ws_idle_timeout: custom<number>(120_000, (v, p, ctx) => {
      const ms = wsIdle.read(v, p, ctx);
      if (ms === undefined || ms <= WS_IDLE_MAX_MS) return ms;
      return issue(ctx, p, v, "a duration from 0s (off) to 960s (Bun's WebSocket idle timeout is at most 960 seconds)");
    }),
    ws_send_pings: bool(true),
    // The reference's sniffing of listen_addr: WebSocket handshakes there become WebSocket clients,
    // other HTTP gets 426. false: every connection there is a game client, whatever its first bytes.
    sniff_websocket: bool(true),
    // Ours (the reference had no TLS): TLS on listen_addr and ws_listen_addr. Both files "" = plain.
    // A reload re-reads the files and rotates the certificate without dropping live sessions.
    tls: {
      cert_file: str(""),
      key_file: str(""),
      // Set: every client must present a certificate this CA signed.
      client_ca_file: str(""),
    },
  },
  connection_pool: {
    max_connections: int(1000, 1).zeroMeansDefault(),
    max_connections_per_service: int(100, 1).zeroMeansDefault().notActedOn("per-service backend connection cap: not implemented yet"),
    // The reference's meaning (a pooled backend connection's idle life); client sessions have session.idle_timeout.
    idle_timeout: duration("5m", "positive").zeroMeansDefault(),
    dial_timeout: duration("5s", "positive").zeroMeansDefault(),
    read_timeout: duration("30s", "positive").zeroMeansDefault(),
    write_timeout: duration("30s", "positive").zeroMeansDefault(),
    max_retries: int(3, 0).zeroMeansDefault(),
    retry_delay: duration("100ms", 0).zeroMeansDefault(),
    max_goroutines: int(0, 0).notActedOn(GOROUTINE_POOL),
    goroutine_expiry: duration("10s", "positive").zeroMeansDefault().notActedOn(GOROUTINE_POOL),
    connection_queue_size: int(1000, 1).zeroMeansDefault().notActedOn(GOROUTINE_POOL),
  },
  backend: {
    account_service: serviceAddress.notActedOn(DEFAULT_SERVICES),
    version_service: serviceAddress.notActedOn(DEFAULT_SERVICES),
    game_service: serviceAddress.notActedOn(DEFAULT_SERVICES),
    mode: oneOf("multiplexed", ["multiplexed", "dedicated", "per_session"]),
    lifecycle_messages: bool(true),
    connections_per_endpoint: int(2, 1, 64),
    max_frame_size: size(DEFAULT_MAX_FRAME_SIZE, 9 + MAX_CLIENT_BODY, 2 ** 31 - 1),
    write_queue_high_water: size("1MiB", 1),
    // Below one frame, the largest client messages could never be queued at all.
    write_queue_limit: size("8MiB", LARGEST_FRAME_TO_BACKEND),
    write_queue_total_limit: size("64MiB", LARGEST_FRAME_TO_BACKEND),
    ping_interval: duration("10s", "positive"),
    ping_timeout: duration("30s", "positive"),
  },
  circuit_breaker: {
    failure_threshold: int(5, 1),
    window: duration("10s", "positive"),
    open_timeout: duration("30s", "positive"),
    half_open_max_requests: int(1, 1),
  },
  security: {
    max_message_size: maxMessageSize,
    max_connections_per_ip: int(10, 1).zeroMeansDefault(),
    connection_rate_limit: int(5, 1).zeroMeansDefault(),
    max_tracked_ips: int(100_000, 1),
    message_rate_limit: int(0, 0),
    message_rate_burst: int(0, 0),
    message_rate_action: oneOf<RateLimitAction>("drop", ["drop", "close"]),
    proxy_protocol: oneOf<ProxyProtocolMode>("off", ["off", "optional", "required"]),
    // Also the peers whose X-Forwarded-For names the client on a WebSocket upgrade (both ways in).
    trusted_proxies: custom<readonly string[]>([], readCidrList),
    // Ours: Origins a browser page may open a WebSocket from; [] = every origin, as the reference.
    allowed_origins: custom<readonly string[]>([], readOriginList),
    proxy_header_timeout: duration("3s", "positive"),
    max_pending_proxy_headers: int(100, 1),
  },
  routing: {
    refresh_interval: duration("10s", "positive").zeroMeansDefault(),
    realm_refresh_interval: duration("5s", "positive").zeroMeansDefault(),
    // Ours: false routes realm_based by the hash alone, as the reference's code does (its docs promise the map).
    use_realm_mapping: bool(true),
    when_breaker_open: oneOf<WhenBreakerOpen>("fall_back", ["fall_back", "refuse"]),
    rules: custom<readonly RouteRule[]>([], readRules),
  },
  session: {
    sweep_interval: duration("1s", "positive"),
    // The reference's session sweep: 30 idle minutes, checked every 5 (its connection_pool.idle_timeout is a backend's).
    idle_timeout: duration("30m", "positive"),
    idle_check_interval: duration("5m", "positive"),
  },
  redis: {
    // "" (the default) = no Redis: unlike the reference, which dials localhost:6379 unasked.
    addr: custom<string>("", (v, p, ctx) =>
      v === "" || (typeof v === "string" && isDialableEndpoint(v)) ? (v as string) : issue(ctx, p, v, `"host:port" with a host and a port 1..65535, or "" for no Redis`),
    ),
    password: str(""),
    db: int(0, 0),
    key_prefix: str("game-gateway:").zeroMeansDefault(),
    pool_size: int(10, 1).zeroMeansDefault().notActedOn(REDIS_CONNECTIONS),
    min_idle_conns: int(5, 0).zeroMeansDefault().notActedOn(REDIS_CONNECTIONS),
    dial_timeout: duration("5s", "positive").zeroMeansDefault(),
    read_timeout: duration("3s", "positive").zeroMeansDefault(),
    write_timeout: duration("3s", "positive").zeroMeansDefault().notActedOn(REDIS_CONNECTIONS),
  },
  consul: {
    enabled: bool(false),
    // Ours: "" = the reference's agent, http://$NODE_IP:8500 (http://127.0.0.1:8500 without NODE_IP).
    address: custom<string>("", readConsulAddress),
    service_name: str(""),
    namespace: str(""),
    refresh_interval: duration("10s", "positive").zeroMeansDefault(),
  },
  grpc: {
    heartbeat_interval: duration("30s", "positive").zeroMeansDefault(),
    connection_timeout: duration("10s", "positive").zeroMeansDefault(),
    reconnect_interval: duration("5s", "positive").zeroMeansDefault(),
    /** 0 = unlimited, as there. */
    max_reconnect_attempts: int(0, 0),
    // Ours (the reference has no key: Go's default, 4 MiB, applies there). grpc-js checks it per
    // message and fails the whole stream on a larger one, as grpc-go does.
    max_receive_message_size: size("4MiB", 1024, 2 ** 31 - 1),
  },
  tracing: {
    enable_trace_propagation: bool(false),
  },
  log: {
    // "info" unless env LOG_LEVEL says otherwise; the loader applies that.
    level: oneOf<LogLevel>("info", LOG_LEVELS),
    access_log: oneOf<AccessLogTarget>("stdout", ["stdout", "off"]),
  },
  admin: {
    listen_addr: adminListenAddr,
    max_connections: int(64, 1),
    idle_timeout: duration("5s", "positive"),
    debug_token: str(""),
  },
  graceful_shutdown_timeout: duration("30s", 0).zeroMeansDefault(),
} satisfies Section;
