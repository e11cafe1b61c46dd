// Issue 12, item 1: the reference gateway's own config file loads unchanged. Its keys, zeros and
// rules are read as its Go loader read them; what this version does not act on is named once.
import { describe, expect, test } from "bun:test";
import { ConfigError, defaultConfig, parseConfig } from "../../src/config/load.ts";

const FIXTURE = new URL("./fixtures/reference-config.yaml", import.meta.url);
const ENV = { POD_NAME: "gw-0" };
const BACKEND = "127.0.0.1:19711";

async function fixture(): Promise<string> {
  return (await Bun.file(FIXTURE).text()).replaceAll("{{BACKEND}}", BACKEND);
}

function errorOf(yaml: string): ConfigError {
  try {
    parseConfig(yaml, ENV);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("the reference's config/config.yaml", () => {
  test("loads, every key accepted, with its values where this version acts on them", async () => {
    const { config } = parseConfig(await fixture(), ENV, { requireRoutes: true });
    expect(config.connection_pool).toMatchObject({ max_connections: 1000, dial_timeout: 5000, read_timeout: 30_000, max_retries: 3, retry_delay: 100 });
    expect(config.security).toMatchObject({ max_message_size: 65535, max_connections_per_ip: 10, connection_rate_limit: 5 });
    expect(config.graceful_shutdown_timeout).toBe(30_000);
    expect(config.routing.rules).toEqual([
      { server_type: 10, world_id: 0, service_name: "account", strategy: "round_robin", endpoints: [BACKEND] },
      { server_type: 15, world_id: 0, service_name: "version", strategy: "consistent_hash", hash_key: "user_id", endpoints: [BACKEND] },
      { server_type: 200, world_id: 0, service_name: "game", strategy: "realm_based", endpoints: [] },
    ]);
  });

  test("one warning names every key it sets that this version does not act on", async () => {
    const { warnings, notActedOn } = parseConfig(await fixture(), ENV);
    expect(notActedOn).toEqual([
      "server.metrics_port",
      "connection_pool.max_connections_per_service",
      "connection_pool.max_goroutines",
      "connection_pool.goroutine_expiry",
      "connection_pool.connection_queue_size",
      "backend.account_service",
      "backend.version_service",
      "backend.game_service",
      "routing.rules[].hash_key",
      "redis.pool_size",
      "redis.min_idle_conns",
      "redis.write_timeout",
    ]);
    const unused = warnings.filter((w) => w.startsWith("config keys accepted but not used by this version: "));
    expect(unused).toHaveLength(1);
    // Grouped by why, each key once: a section's reason is said once for all of its keys.
    expect(unused[0]).not.toContain("grpc"); // gRPC backends are implemented (server.use_grpc)
    // The other warnings: what was adjusted, and the rule that cannot route.
    expect(warnings).toContain("security.max_message_size: 1048576 clamped to 65535: the client wire protocol's Length field is a u16");
    expect(warnings.some((w) => w.startsWith("routing.rules.200: no endpoints (the reference takes them from Consul"))).toBe(true);
    // Its game servers speak the reference's TCP contract, which is not our default mode.
    expect(warnings.some((w) => w.startsWith("backend.mode: not set, so multiplexed") && w.includes("need backend.mode: per_session"))).toBe(true);
    expect(warnings).toHaveLength(4);
  });

  test("setting backend.mode, either way, silences the per_session hint", async () => {
    for (const mode of ["per_session", "multiplexed"]) {
      const { warnings } = parseConfig(`${await fixture()}\n`.replace(/^backend:\n/m, `backend:\n  mode: ${mode}\n`), ENV);
      expect({ mode, hint: warnings.some((w) => w.startsWith("backend.mode:")) }).toEqual({ mode, hint: false });
    }
  });

  test("a file that sets none of those keys gets no such warning", () => {
    const { warnings, notActedOn } = parseConfig(`routing:\n  rules: [{server_type: 1, endpoints: ["${BACKEND}"]}]\n`, ENV);
    expect(notActedOn).toEqual([]);
    expect(warnings).toEqual([]);
  });
});

describe("an explicit zero means the default, wherever it does in the reference", () => {
  // Go's yaml leaves an absent key at its zero value, and the reference's loader then cannot tell
  // it from an explicit 0: both get the default.
  const zeros = `
server: { listen_addr: "", health_check_port: 0, metrics_port: 0 }
redis: { addr: "", key_prefix: "", pool_size: 0, min_idle_conns: 0, dial_timeout: 0, read_timeout: 0s, write_timeout: "0ms" }
consul: { refresh_interval: 0 }
routing: { refresh_interval: 0, realm_refresh_interval: 0s }
connection_pool:
  max_connections: 0
  max_connections_per_service: 0
  idle_timeout: 0
  dial_timeout: 0
  read_timeout: 0s
  write_timeout: 0s
  max_retries: 0
  retry_delay: 0
  max_goroutines: 0
  goroutine_expiry: 0
  connection_queue_size: 0
grpc: { heartbeat_interval: 0, connection_timeout: 0, reconnect_interval: 0, max_reconnect_attempts: 0 }
security: { max_message_size: 0, max_connections_per_ip: 0, connection_rate_limit: 0 }
graceful_shutdown_timeout: 0s
`;

  test("every reference key set to zero reads as if absent", () => {
    expect(parseConfig(zeros, ENV).config).toEqual(defaultConfig(ENV));
  });

  test("the defaults those zeros stand for are the reference's", () => {
    const c = parseConfig(zeros, ENV).config;
    expect(c.server).toMatchObject({ listen_addr: ":8080", health_check_port: 9090, metrics_port: 9091 });
    // redis.addr "" is no Redis here (the reference would dial localhost:6379): docs/fleet.md.
    expect(c.redis).toMatchObject({ addr: "", key_prefix: "game-gateway:", pool_size: 10, min_idle_conns: 5, dial_timeout: 5000 });
    expect(c.connection_pool).toMatchObject({ max_connections: 1000, max_retries: 3, retry_delay: 100, dial_timeout: 5000, idle_timeout: 300_000 });
    expect(c.grpc).toEqual({ heartbeat_interval: 30_000, connection_timeout: 10_000, reconnect_interval: 5000, max_reconnect_attempts: 0, max_receive_message_size: 4 * 1024 * 1024 });
    expect(c.graceful_shutdown_timeout).toBe(30_000);
  });

  test("a zero is still checked in this version's own keys (no Go loader ever read them)", () => {
    expect(errorOf("backend:\n  connections_per_endpoint: 0\n").message).toContain("backend.connections_per_endpoint: expected an integer 1..64, got 0");
    expect(errorOf("circuit_breaker:\n  window: 0s\n").message).toContain('circuit_breaker.window: expected a duration greater than 0s, got "0s"');
  });

  test("a value that is not zero is still validated", () => {
    expect(errorOf("connection_pool:\n  max_retries: -1\n").message).toContain("connection_pool.max_retries: expected an integer >= 0, got -1");
    expect(errorOf("redis:\n  pool_size: '0'\n").message).toContain('redis.pool_size: expected an integer >= 1, got "0"');
  });
});

describe("keys neither gateway knows are still errors, with a suggestion", () => {
  test.each([
    ["connection_pool:\n  max_gorutines: 8\n", "connection_pool.max_gorutines", 'did you mean "max_goroutines"?'],
    ["grpc:\n  hearbeat_interval: 30s\n", "grpc.hearbeat_interval", 'did you mean "heartbeat_interval"?'],
    ["backend:\n  acount_service: 'a:1'\n", "backend.acount_service", 'did you mean "account_service"?'],
    ["grcp:\n  heartbeat_interval: 30s\n", "grcp", 'did you mean "grpc"?'],
  ])("%p", (yaml, path, hint) => {
    const e = errorOf(yaml);
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]).toMatchObject({ path, got: "an unknown key", hint });
  });

  test("the reference's keys are type-checked", () => {
    expect(errorOf("backend:\n  game_service: 8080\n").message).toContain('backend.game_service: expected "host:port" with a host and a port 1..65535, or "", got 8080');
    expect(errorOf("grpc:\n  reconnect_interval: 5\n").message).toContain('grpc.reconnect_interval: expected a Go-style duration like "5s", got 5');
    expect(errorOf("routing:\n  rules: [{server_type: 1, hash_key: [7]}]\n").message).toContain("routing.rules[0].hash_key: expected a string, got [7]");
  });
});
