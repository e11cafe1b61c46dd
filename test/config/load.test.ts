import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { ConfigError, defaultConfig, loadConfigFile, parseConfig, parseRouteRules } from "../../src/config/load.ts";
import type { RouteRule } from "../../src/config/types.ts";

const ENV = { POD_NAME: "gw-0" };

function errorOf(yaml: string, env: Record<string, string | undefined> = ENV): ConfigError {
  try {
    parseConfig(yaml, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

/** The one message line for this path. */
function lineFor(yaml: string, path: string, env?: Record<string, string | undefined>): string {
  const lines = errorOf(yaml, env).message.split("\n").filter((l) => l.startsWith(`${path}: `));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("defaults", () => {
  test("an empty document gives the reference's defaults and this version's new ones", () => {
    for (const text of ["", "# only a comment\n", "---\n", "~\n"]) {
      const { config, warnings } = parseConfig(text, ENV);
      expect(warnings).toEqual([]);
      expect(config).toEqual({
        server: {
          listen_addr: ":8080",
          health_check_port: 9090,
          metrics_port: 9091,
          gateway_name: "gw-0",
          use_grpc: false,
          first_message_timeout: 10_000,
          client_write_queue_limit: 1024 * 1024,
          partial_frame_timeout: 10_000,
          pending_input_limit: 64 * 1024 * 1024,
          drain_delay: 0,
          workers: 0,
          client_read_timeout: 0,
          client_write_timeout: 0,
          ws_listen_addr: "",
          ws_path: "/ws",
          ws_max_payload_length: 1024 * 1024,
          ws_idle_timeout: 120_000,
          ws_send_pings: true,
          sniff_websocket: true,
          tls: { cert_file: "", key_file: "", client_ca_file: "" },
        },
        connection_pool: {
          max_connections: 1000,
          max_connections_per_service: 100,
          idle_timeout: 5 * 60_000,
          dial_timeout: 5000,
          read_timeout: 30_000,
          write_timeout: 30_000,
          max_retries: 3,
          retry_delay: 100,
          max_goroutines: 0,
          goroutine_expiry: 10_000,
          connection_queue_size: 1000,
        },
        backend: {
          account_service: "",
          version_service: "",
          game_service: "",
          mode: "multiplexed",
          lifecycle_messages: true,
          connections_per_endpoint: 2,
          max_frame_size: 9 + 2 + 8 * 65535 + 65535,
          write_queue_high_water: 1024 * 1024,
          write_queue_limit: 8 * 1024 * 1024,
          write_queue_total_limit: 64 * 1024 * 1024,
          ping_interval: 10_000,
          ping_timeout: 30_000,
        },
        circuit_breaker: { failure_threshold: 5, window: 10_000, open_timeout: 30_000, half_open_max_requests: 1 },
        // The reference's 1048576 is more than the u16 Length can carry: its effective value is the default.
        security: {
          max_message_size: 65535,
          max_connections_per_ip: 10,
          connection_rate_limit: 5,
          max_tracked_ips: 100_000,
          message_rate_limit: 0,
          message_rate_burst: 0,
          message_rate_action: "drop",
          proxy_protocol: "off",
          trusted_proxies: [],
      allowed_origins: [],
          proxy_header_timeout: 3000,
          max_pending_proxy_headers: 100,
        },
        routing: { refresh_interval: 10_000, realm_refresh_interval: 5000, use_realm_mapping: true, when_breaker_open: "fall_back", rules: [] },
        session: { sweep_interval: 1000, idle_timeout: 30 * 60_000, idle_check_interval: 5 * 60_000 },
        redis: {
          addr: "",
          password: "",
          db: 0,
          key_prefix: "game-gateway:",
          pool_size: 10,
          min_idle_conns: 5,
          dial_timeout: 5000,
          read_timeout: 3000,
          write_timeout: 3000,
        },
        consul: { enabled: false, address: "", service_name: "", namespace: "", refresh_interval: 10_000 },
        grpc: { heartbeat_interval: 30_000, connection_timeout: 10_000, reconnect_interval: 5000, max_reconnect_attempts: 0, max_receive_message_size: 4 * 1024 * 1024 },
        tracing: { enable_trace_propagation: false },
        log: { level: "info", access_log: "stdout" },
        admin: { listen_addr: "", max_connections: 64, idle_timeout: 5000, debug_token: "" },
        graceful_shutdown_timeout: 30_000,
      });
    }
  });

  test("empty sections and null keys take defaults", () => {
    const { config } = parseConfig("server:\nredis:\n  addr:\n  db: ~\n", ENV);
    expect(config).toEqual(defaultConfig(ENV));
  });

  test("defaultConfig is parseConfig of nothing", () => {
    expect(defaultConfig(ENV)).toEqual(parseConfig("", ENV).config);
  });

  test("the result is deeply frozen", () => {
    const { config } = parseConfig("routing:\n  rules: [{server_type: 1, endpoints: ['a:1']}]\n", ENV);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.routing.rules)).toBe(true);
    expect(Object.isFrozen(config.routing.rules[0])).toBe(true);
    expect(Object.isFrozen(config.routing.rules[0]!.endpoints)).toBe(true);
    expect(() => {
      (config.server as { listen_addr: string }).listen_addr = "x";
    }).toThrow();
  });
});

describe("values", () => {
  test("durations, sizes, addresses, YAML 1.1 booleans and merge keys, as Go's yaml reads them", () => {
    const { config, warnings } = parseConfig(
      `
redis: &timeouts {dial_timeout: 1.5s, read_timeout: 1h30m, write_timeout: 250us}
connection_pool:
  <<: *timeouts
  idle_timeout: 0.5s
  retry_delay: 100ms
server:
  client_write_queue_limit: 64KiB
  listen_addr: "[::1]:0"
  health_check_port: -1
backend:
  write_queue_limit: 1MB
  write_queue_high_water: 65536
  lifecycle_messages: no
consul:
  enabled: Yes
`,
      ENV,
    );
    expect(config.connection_pool).toMatchObject({ dial_timeout: 1500, read_timeout: 5_400_000, write_timeout: 0.25, idle_timeout: 500, retry_delay: 100 });
    expect(config.server).toMatchObject({ client_write_queue_limit: 65536, listen_addr: "[::1]:0", health_check_port: -1 });
    expect(config.backend).toMatchObject({ write_queue_limit: 1_000_000, write_queue_high_water: 65536, lifecycle_messages: false });
    expect(config.consul.enabled).toBe(true);
    // Consul is acted on now; of these keys only Redis' connection tuning is not.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("redis.write_timeout (Redis connection tuning");
    expect(warnings[0]).not.toContain("consul");
  });
});

// Go's yaml.v3 decodes a plain scalar into a string field as its source text, so reference files
// with `gateway_name: 123` or `password: 0123` load there; the yaml library has made them numbers.
describe("string keys take an unquoted scalar exactly as written", () => {
  test.each([
    ["123", "123"],
    ["0123", "0123"],
    ["1e3", "1e3"],
    ["0x1F", "0x1F"],
    ["-0", "-0"],
    ["1.50", "1.50"],
    [".inf", ".inf"],
    ["true", "true"],
    ["False", "False"],
  ])("gateway_name: %s is %p", (written, value) => {
    expect(parseConfig(`server:\n  gateway_name: ${written}\n`, {}).config.server.gateway_name).toBe(value);
  });

  test("in every string key, in rules, and through merge keys", () => {
    const { config } = parseConfig(
      [
        "redis: { password: 012345, key_prefix: 7 }",
        "consul: { service_name: 1e3, namespace: 010 }",
        "admin: { debug_token: 00042 }",
        "routing:",
        "  rules:",
        '    - &base { server_type: 10, service_name: 007, hash_key: 0.10, endpoints: ["127.0.0.1:1"] }',
        "    - { <<: *base, server_type: 11 }",
      ].join("\n"),
      {},
    );
    expect([config.redis.password, config.redis.key_prefix, config.consul.service_name, config.consul.namespace, config.admin.debug_token]).toEqual([
      "012345",
      "7",
      "1e3",
      "010",
      "00042",
    ]);
    expect(config.routing.rules.map((r) => [r.service_name, r.hash_key])).toEqual([["007", "0.10"], ["007", "0.10"]]);
  });

  test("rules from JSON (the Redis key) still need a JSON string, as Go's encoding/json does", () => {
    expect(() => parseRouteRules([{ server_type: 10, service_name: 7, endpoints: ["127.0.0.1:1"] }])).toThrow(
      "routing.rules[0].service_name: expected a string (quote it), got 7",
    );
  });
});

describe("rejections name the key path, the value and what was expected", () => {
  test.each([
    ["connection_pool:\n  dial_timeout: 5 seconds", 'connection_pool.dial_timeout: expected a Go-style duration like "5s", got "5 seconds"'],
    ["connection_pool:\n  dial_timeout: 5", 'connection_pool.dial_timeout: expected a Go-style duration like "5s", got 5'],
    ["connection_pool:\n  dial_timeout: -1s", "connection_pool.dial_timeout: expected a duration greater than 0s, got \"-1s\""],
    ["server:\n  drain_delay: -1s", 'server.drain_delay: expected a duration of at least 0s, got "-1s"'],
    // A timer holds at most 2^31-1 ms: a longer one fired after 1 ms (TimeoutOverflowWarning).
    ["connection_pool:\n  dial_timeout: 1000h", 'connection_pool.dial_timeout: expected a duration of at most 596h31m23.647s (what a timer can hold), got "1000h"'],
    ["admin:\n  idle_timeout: 596h31m23.648s", 'admin.idle_timeout: expected a duration of at most 596h31m23.647s (what a timer can hold), got "596h31m23.648s"'],
    ["server:\n  drain_delay: 99999999h", 'server.drain_delay: expected a duration of at most 596h31m23.647s (what a timer can hold), got "99999999h"'],
    ["server:\n  listen_addr: 8080", "server.listen_addr: expected \"host:port\", \":port\" or \"[ipv6]:port\" with a port 0..65535, got 8080"],
    ["server:\n  listen_addr: ':70000'", 'server.listen_addr: expected "host:port", ":port" or "[ipv6]:port" with a port 0..65535, got ":70000"'],
    ["server:\n  health_check_port: -2", "server.health_check_port: expected a port 1..65535 (0: the default 9090), or -1 to disable, got -2"],
    ["server:\n  metrics_port: 65536", "server.metrics_port: expected a port 0..65535, got 65536"],
    ["server:\n  gateway_name: [12]", "server.gateway_name: expected a string, got [12]"],
    ["redis:\n  key_prefix: { a: 1 }", 'redis.key_prefix: expected a string, got {"a":1}'],
    ["server:\n  use_grpc: 1", "server.use_grpc: expected true or false, got 1"],
    ["server:\n  ws_listen_addr: 8081", 'server.ws_listen_addr: expected "host:port", ":port" or "[ipv6]:port" with a port 0..65535, got 8081'],
    [
      "server:\n  pending_input_limit: 10",
      "server.pending_input_limit: expected a size of at least 65544: room for one partial frame of the largest a client may send (65543 bytes: 8-byte header + 65535-byte body), got 10",
    ],
    ["server:\n  pending_input_limit: 64KiB", "server.pending_input_limit: expected a size of at least 65544"],
    ["server:\n  ws_path: ws", 'server.ws_path: expected a URL path starting with "/", e.g. "/ws", got "ws"'],
    [
      "security:\n  allowed_origins: ['https://play.example.com:443']",
      'security.allowed_origins[0]: expected the origin without its default port (browsers send "https://play.example.com", never ":443", so this entry could never match), got "https://play.example.com:443"',
    ],
    [
      "security:\n  allowed_origins: ['https://*.com']",
      'security.allowed_origins[0]: expected a wildcard under a domain of two labels or more ("https://*.com" would allow every site under the public suffix ".com"), got "https://*.com"',
    ],
    ["server:\n  ws_idle_timeout: 20m", 'server.ws_idle_timeout: expected a duration from 0s (off) to 960s (Bun\'s WebSocket idle timeout is at most 960 seconds), got "20m"'],
    [
      "routing:\n  rules:\n    - { server_type: 1, endpoints: ['a:1'], transport: grpc }\n    - { server_type: 2, endpoints: ['a:1'] }",
      'routing.rules[1].transport: expected the transport routing.rules[0] gives endpoint a:1 ("grpc"): an endpoint speaks one transport, got "(unset)"',
    ],
    ["routing:\n  rules:\n    - { server_type: 1, endpoints: ['a:1'], transport: http }", 'routing.rules[0].transport: expected one of'],
    ["server:\n  client_write_queue_limit: 1 meg", 'server.client_write_queue_limit: expected a byte size: an integer or a string like "64KiB", "4MiB", "1MB", got "1 meg"'],
    ["connection_pool:\n  max_connections: -1", "connection_pool.max_connections: expected an integer >= 1, got -1"],
    ["connection_pool:\n  max_retries: 1.5", "connection_pool.max_retries: expected an integer >= 0, got 1.5"],
    ["connection_pool:\n  max_retries: '3'", 'connection_pool.max_retries: expected an integer >= 0, got "3"'],
    ["backend:\n  mode: pooled", 'backend.mode: expected one of multiplexed, dedicated, per_session, got "pooled"'],
    ["backend:\n  connections_per_endpoint: 65", "backend.connections_per_endpoint: expected an integer 1..64, got 65"],
    ["backend:\n  max_frame_size: 64KiB", 'backend.max_frame_size: expected a size of at least 65544 and at most 2147483647, got "64KiB"'],
    ["backend:\n  lifecycle_messages: maybe", 'backend.lifecycle_messages: expected true or false, got "maybe"'],
    ["backend:\n  write_queue_limit: 64KiB", 'backend.write_queue_limit: expected a size of at least 65588, got "64KiB"'],
    ["backend:\n  write_queue_total_limit: 1KiB", 'backend.write_queue_total_limit: expected a size of at least 65588, got "1KiB"'],
    ["backend:\n  write_queue_high_water: 16MiB", 'backend.write_queue_high_water: expected a size no larger than backend.write_queue_limit (8MiB), got "16MiB"'],
    ["security:\n  max_message_size: -1", "security.max_message_size: expected a byte size: an integer or a string like \"64KiB\", \"4MiB\", \"1MB\", got -1"],
    ["redis:\n  addr: ':6379'", 'redis.addr: expected "host:port" with a host and a port 1..65535, or "" for no Redis, got ":6379"'],
    ["log:\n  level: verbose", 'log.level: expected one of debug, info, warn, error, silent, got "verbose"'],
    ["graceful_shutdown_timeout: 30", 'graceful_shutdown_timeout: expected a Go-style duration like "5s", got 30'],
    ["server: [1, 2]", "server: expected a mapping with keys listen_addr, health_check_port"],
    ["- a\n- b", '(root): expected a mapping with keys server, connection_pool'],
  ])("%p", (yaml, line) => {
    const path = line.slice(0, line.indexOf(": "));
    expect(lineFor(yaml, path)).toStartWith(line);
  });

  test("unknown keys, top-level and nested, list the allowed keys", () => {
    expect(lineFor("servr:\n  listen_addr: ':1'", "servr")).toBe(
      "servr: expected one of the keys at the top level: server, connection_pool, backend, circuit_breaker, security, routing, session, redis, consul, grpc, tracing, log, admin, graceful_shutdown_timeout, got an unknown key; did you mean \"server\"?",
    );
    const e = errorOf("connection_pool:\n  dial_timout: 5s\n");
    expect(e.issues).toEqual([
      {
        path: "connection_pool.dial_timout",
        value: "5s",
        got: "an unknown key",
        expected: expect.stringContaining("under connection_pool: max_connections, max_connections_per_service, idle_timeout, dial_timeout,"),
        atKey: true,
        hint: 'did you mean "dial_timeout"?',
        at: { line: 2, col: 3 },
      },
    ]);
  });

  test("every problem in a file is reported at once", () => {
    const e = errorOf("server:\n  use_grpc: 2\n  listen_addr: nope\nredis:\n  db: -1\nextra: 1\n");
    expect(e.issues.map((i) => i.path).sort()).toEqual(["extra", "redis.db", "server.listen_addr", "server.use_grpc"]);
    expect(e.message.split("\n")).toHaveLength(4);
  });

  test("YAML syntax errors and duplicate keys", () => {
    expect(lineFor("server:\n  listen_addr: [\n", "(yaml)")).toStartWith("(yaml): expected a YAML mapping of config sections, got invalid YAML (");
    expect(lineFor("redis:\n  db: 1\n  db: 2\n", "(yaml)")).toContain("unique");
    expect(lineFor("redis: *nowhere\n", "(yaml)")).toContain("alias");
    expect(lineFor("redis: {}\n---\nserver: {}\n", "(yaml)")).toContain("multiple documents");
  });
});

describe("security.max_message_size", () => {
  test("above the u16 wire limit is clamped with a warning (reference files say 1048576)", () => {
    const { config, warnings } = parseConfig("security:\n  max_message_size: 1048576\n", ENV);
    expect(config.security.max_message_size).toBe(65535);
    expect(warnings).toEqual(["security.max_message_size: 1048576 clamped to 65535: the client wire protocol's Length field is a u16"]);
  });

  test("within the limit is kept silently, sizes included", () => {
    for (const [v, n] of [["1", 1], ["4KiB", 4096], ["65535", 65535]] as const) {
      const { config, warnings } = parseConfig(`security:\n  max_message_size: ${v}\n`, ENV);
      expect(config.security.max_message_size).toBe(n);
      expect(warnings).toEqual([]);
    }
  });
});

describe("routing.rules", () => {
  const expected: RouteRule[] = [
    { server_type: 10, world_id: 3, service_name: "account", strategy: "consistent_hash", endpoints: ["a:1", "b:1"] },
    { server_type: 10, world_id: 0, service_name: "", strategy: "round_robin", endpoints: ["c:1"] },
  ];

  test("a YAML list", () => {
    const { config } = parseConfig(
      `
routing:
  rules:
    - {server_type: 10, world_id: 3, service_name: account, strategy: consistent_hash, endpoints: ["a:1", "b:1"]}
    - {server_type: 10, endpoints: ["c:1"]}
`,
      ENV,
    );
    expect(config.routing.rules).toEqual(expected);
  });

  const redisJson = '{"10":{"server_type":10,"service_name":"account","strategy":"round_robin","endpoints":["account:19711"]},"200":{"endpoints":["[::1]:7000"]}}';
  const redisRules: RouteRule[] = [
    { server_type: 10, world_id: 0, service_name: "account", strategy: "round_robin", endpoints: ["account:19711"] },
    { server_type: 200, world_id: 0, service_name: "", strategy: "round_robin", endpoints: ["[::1]:7000"] },
  ];

  test("the reference's Redis shape: a mapping keyed by server type (server_type taken from the key)", () => {
    const { config } = parseConfig(`routing:\n  rules: ${redisJson}\n`, ENV);
    expect(config.routing.rules).toEqual(redisRules);
  });

  test("the Redis shape as the JSON string stored in Redis", () => {
    const { config } = parseConfig(`routing:\n  rules: '${redisJson}'\n`, ENV);
    expect(config.routing.rules).toEqual(redisRules);
    expect(parseConfig(`routing:\n  rules: '[{"server_type": 5, "endpoints": ["h:1"]}]'\n`, ENV).config.routing.rules[0]!.server_type).toBe(5);
  });

  test("parseRouteRules validates rules from Redis directly", () => {
    expect(parseRouteRules(redisJson)).toEqual(redisRules);
    expect(() => parseRouteRules('{"10":{"endpoints":"a:1"}}')).toThrow("routing.rules.10.endpoints: expected a list of");
  });

  test.each([
    ["rules: '{\"10\": '", 'routing.rules: expected a list of rules, a mapping keyed by server type, or a JSON string of either (JSON.parse: '],
    ["rules: 5", "routing.rules: expected a list of rules, a mapping keyed by server type, or a JSON string of either, got 5"],
    ["rules: [5]", "routing.rules[0]: expected a rule mapping with keys server_type, world_id, service_name, strategy, hash_key, transport, endpoints, got 5"],
    ["rules: [{endpoints: ['a:1']}]", "routing.rules[0].server_type: expected an integer 0..255 (required), got nothing"],
    ["rules: [{server_type: 256, endpoints: ['a:1']}]", "routing.rules[0].server_type: expected an integer 0..255, got 256"],
    ["rules: [{server_type: 1, world_id: 32768, endpoints: ['a:1']}]", "routing.rules[0].world_id: expected an integer 0..32767, got 32768"],
    ["rules: [{server_type: 1, endpoints: ['a:1']}, {server_type: 1, endpoints: ['a:1'], strategy: random}]", 'routing.rules[1].strategy: expected one of round_robin, consistent_hash, realm_based, rendezvous_instance, rendezvous_world, got "random"'],
    ["rules: [{server_type: 1, endpoints: 'a:1'}]", 'routing.rules[0].endpoints: expected a list of'],
    ["rules: [{server_type: 1, endpoints: ['a:1', 'b']}]", 'routing.rules[0].endpoints[1]: expected "host:port" with a host and a port 1..65535, got "b"'],
    ["rules: [{server_type: 1, endpoints: ['a:0']}]", 'routing.rules[0].endpoints[0]: expected "host:port" with a host and a port 1..65535, got "a:0"'],
    ["rules: [{server_type: 1, endpoints: [':80']}]", 'routing.rules[0].endpoints[0]: expected "host:port" with a host and a port 1..65535, got ":80"'],
    ["rules: [{server_type: 1, endpoints: ['a:1', 'b:1', 'a:1']}]", 'routing.rules[0].endpoints[2]: expected an endpoint not already listed (duplicate of routing.rules[0].endpoints[0]), got "a:1"'],
    ["rules: [{server_type: 1, endpoints: ['a:1'], weight: 3}]", "routing.rules[0].weight: expected one of the keys under routing.rules[0]: server_type, world_id, service_name, strategy, hash_key, transport, endpoints, got an unknown key"],
    ["rules: {'10': {server_type: 11, endpoints: ['a:1']}}", "routing.rules.10.server_type: expected 10, the key this rule is stored under, got 11"],
    ["rules: {'010': {endpoints: ['a:1']}}", 'routing.rules.010: expected a server type key 0..255 in decimal (got key "010"), got {"endpoints":["a:1"]}'],
    ["rules: {'300': {endpoints: ['a:1']}}", 'routing.rules.300: expected a server type key 0..255 in decimal (got key "300"), got {"endpoints":["a:1"]}'],
  ])("%p", (rules, line) => {
    const path = line.slice(0, line.indexOf(": "));
    expect(lineFor(`routing:\n  ${rules}\n`, path)).toStartWith(line);
  });

  test("two rules for the same (server_type, world_id) name both indexes", () => {
    const yaml = `
routing:
  rules:
    - {server_type: 1, world_id: 2, endpoints: ["a:1"]}
    - {server_type: 1, endpoints: ["a:1"]}
    - {server_type: 1, world_id: 2, endpoints: ["b:1"]}
`;
    expect(errorOf(yaml).message).toBe(
      'routing.rules[2]: expected a (server_type, world_id) pair not already used by routing.rules[0], got {"server_type":1,"world_id":2}',
    );
  });
});

describe("environment", () => {
  test("gateway_name: the file, else POD_NAME, else the hostname", () => {
    expect(parseConfig("server:\n  gateway_name: gw-file\n", ENV).config.server.gateway_name).toBe("gw-file");
    expect(parseConfig("", { POD_NAME: "pod-7" }).config.server.gateway_name).toBe("pod-7");
    expect(parseConfig("", {}).config.server.gateway_name).toBe(hostname() || "game-gateway");
    expect(parseConfig("", { POD_NAME: "" }).config.server.gateway_name).toBe(hostname() || "game-gateway");
  });

  test("log.level: the file wins over LOG_LEVEL, which wins over info", () => {
    expect(parseConfig("", { LOG_LEVEL: "debug" }).config.log.level).toBe("debug");
    expect(parseConfig("", { LOG_LEVEL: "WARN" }).config.log.level).toBe("warn");
    expect(parseConfig("log:\n  level: error\n", { LOG_LEVEL: "debug" }).config.log.level).toBe("error");
    expect(parseConfig("", { LOG_LEVEL: "" }).config.log.level).toBe("info");
    expect(parseConfig("", {}).config.log.level).toBe("info");
  });

  test("an unknown LOG_LEVEL means info, as in the reference, with a warning naming it (also when the file sets the level)", () => {
    const warning = 'env LOG_LEVEL: expected one of debug, info, warn, error, silent, got "loud"; logging at info';
    const fromEnv = parseConfig("", { LOG_LEVEL: "loud" });
    expect(fromEnv.config.log.level).toBe("info");
    expect(fromEnv.warnings).toContain(warning);
    const fromFile = parseConfig("log:\n  level: error\n", { LOG_LEVEL: "loud" });
    expect(fromFile.config.log.level).toBe("error");
    expect(fromFile.warnings).toContain(warning);
  });
});

describe("loadConfigFile", () => {
  test("a missing file is a ConfigError at (file) naming the path", async () => {
    const path = "/nonexistent/gateway.yaml";
    const e = await loadConfigFile(path, ENV).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).message).toBe(`${path}: (file): expected a readable YAML config file, got "${path}", which does not exist`);
  });

  test("reads and validates a file", async () => {
    const path = `${process.env.TMPDIR ?? "/tmp"}/gateway-config-test-${process.pid}.yaml`;
    await Bun.write(path, "server:\n  listen_addr: 127.0.0.1:0\nrouting:\n  rules: [{ server_type: 1, endpoints: ['a:1'] }]\n");
    try {
      const { config } = await loadConfigFile(path, ENV);
      expect(config.server.listen_addr).toBe("127.0.0.1:0");
    } finally {
      await Bun.file(path).delete();
    }
  });
});
