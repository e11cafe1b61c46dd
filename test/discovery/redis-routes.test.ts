// Routing rules and the realm map from a real redis-server, through a real gateway: loaded at
// start, changed by a publish, kept while Redis is down, hostile values refused whole.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import type { DemoBackend } from "../../src/demo/demo-backend.ts";
import { RedisRouteSource, redisKeys } from "../../src/discovery/redis-routes.ts";
import { MAX_REALM_FIELDS } from "../../src/discovery/redis-content.ts";
import { defaultConfig } from "../../src/config/load.ts";
import { nodeHash } from "../../src/session/session-id.ts";
import { TestScope, eventually, str, testConfig, text, type TestGateway } from "../support/harness.ts";
import { parseExposition, sumOf } from "../support/prom-text.ts";
import { RedisServer } from "../support/redis-server.ts";
import { loadGrpcTransport } from "../../src/backend/grpc/load-grpc.ts";
import { GrpcGameServer } from "../support/grpc-game-server.ts";

setDefaultTimeout(60_000);

const PREFIX = "test-gw:";
const KEYS = redisKeys(PREFIX);
const scope = new TestScope();
afterEach(scope.release);

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.kill();
});

/** The reference's JSON: an object keyed by server type. */
function rulesJson(rules: Record<number, { endpoints: string[]; strategy?: string; world_id?: number }>): string {
  const out: Record<string, unknown> = {};
  for (const [type, r] of Object.entries(rules)) out[type] = { server_type: Number(type), service_name: `svc-${type}`, strategy: r.strategy ?? "round_robin", ...r };
  return JSON.stringify(out);
}

const at = (b: DemoBackend): string => `127.0.0.1:${b.port}`;

/** A gateway reading routes from `server` (admin port on, so /ready and /metrics are read as a user would). */
function fleetGateway(server: RedisServer, extra: Record<string, unknown> = {}): TestGateway {
  return scope.gateway({
    admin: { listen_addr: "127.0.0.1:0" },
    // Long refresh intervals: a change seen in these tests came by pub/sub, not by a poll.
    routing: { refresh_interval: "1h", realm_refresh_interval: "1h" },
    redis: { addr: server.addr, key_prefix: PREFIX, dial_timeout: "1s", read_timeout: "1s" },
    ...extra,
  });
}

async function ready(gw: TestGateway): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/ready`);
  return { status: res.status, body: await res.text() };
}

async function metric(gw: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/metrics`);
  return sumOf(parseExposition(await res.text()), name, labels);
}

/** Sends one frame for (type, world, inst) through a new client; resolves with the reply, or null when refused. */
async function roundTrip(gw: TestGateway, type: number, world = 0, inst = 0): Promise<string | null> {
  const c = await gw.connect();
  try {
    c.send(1, serverIdFor(type, world, inst), text("ping"));
    return str((await c.next()).body);
  } catch {
    return null;
  } finally {
    c.close();
  }
}

/** Which of the backends took the next new session for (type, world, inst). */
async function landsOn(gw: TestGateway, backends: DemoBackend[], type: number, world = 0, inst = 0): Promise<number> {
  const before = backends.map((b) => b.stats().connects);
  if ((await roundTrip(gw, type, world, inst)) === null) return -1;
  const i = await eventually(() => {
    const k = backends.findIndex((b, j) => b.stats().connects > before[j]!);
    return k >= 0 ? k + 1 : 0;
  }, "a backend to see the session's Connect");
  return i - 1;
}

describe("routing rules from Redis", () => {
  test("a gateway with no rules in its file serves the rules in Redis, and a publish changes them at once", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.del(KEYS.rules);
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] }, 11: { endpoints: [at(a)] } }));
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready once the Redis rules are loaded");
    expect(await landsOn(gw, [a, b], 10)).toBe(0);
    expect(await metric(gw, "game_gateway_config_refresh_success_total", { config_type: "routing_rules" })).toBeGreaterThanOrEqual(1);

    // Type 10 moves to b; type 11 is removed from Redis, so it leaves the router.
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(b)] } }));
    await redis.client.publish(KEYS.rulesNotify, "changed");
    await eventually(async () => (await landsOn(gw, [a, b], 10)) === 1, "type 10 on b after the publish", 5_000);
    expect(await roundTrip(gw, 11)).toBeNull();
  });

  test("file and Redis rules combine: a Redis rule replaces the file's for its (server_type, world_id), the file's others stay", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(b)] } }));
    const gw = fleetGateway(redis, {
      routing: {
        refresh_interval: "1h",
        realm_refresh_interval: "1h",
        rules: [
          { server_type: 10, endpoints: [at(a)] },
          { server_type: 11, endpoints: [at(a)] },
        ],
      },
    });
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    await eventually(async () => (await landsOn(gw, [a, b], 10)) === 1, "type 10 on Redis' endpoint");
    expect(await landsOn(gw, [a, b], 11)).toBe(0);
    // A config reload keeps combining: the new file's rules under Redis' for the same key.
    gw.gateway.reload(
      testConfig({
        routing: { refresh_interval: "1h", realm_refresh_interval: "1h", rules: [{ server_type: 10, endpoints: [at(a)] }, { server_type: 12, endpoints: [at(a)] }] },
        redis: { addr: redis.addr, key_prefix: PREFIX, dial_timeout: "1s", read_timeout: "1s" },
        admin: { listen_addr: "127.0.0.1:0" },
      }),
    );
    expect(await landsOn(gw, [a, b], 10)).toBe(1);
    expect(await landsOn(gw, [a, b], 12)).toBe(0);
    expect(await roundTrip(gw, 11)).toBeNull();
    // Set to no rules in Redis: the file's rule for type 10 is back in force.
    await redis.client.set(KEYS.rules, "{}");
    await redis.client.publish(KEYS.rulesNotify, "changed");
    await eventually(async () => (await landsOn(gw, [a, b], 10)) === 0, "type 10 back on the file's endpoint");
  });

  test("a missing rules key is not zero rules: the last good rules stay, the failure is counted and warned; never loaded: not ready, saying so", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(b)] } }));
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    const errors = () => metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "routing_rules" });
    const errorsBefore = await errors();
    await redis.client.del(KEYS.rules); // or Redis restarted without persistence
    await redis.client.publish(KEYS.rulesNotify, "changed");
    await eventually(async () => (await errors()) > errorsBefore, "the missing key counted as a failure");
    expect((await ready(gw)).status).toBe(200);
    expect(await landsOn(gw, [a, b], 10)).toBe(1);
    const warning = gw.log.find("route source refresh failed; the last good routes stay in force").map((r) => String(r.error));
    expect(warning).toContain(`${KEYS.rules}: the key does not exist (set it to {} for no Redis rules)`);

    // A gateway started while the key is missing (and no rules in its file) is not ready, and says why.
    const late = fleetGateway(redis);
    const notReady = await eventually(async () => {
      const r = await ready(late);
      return r.status === 503 && r.body.includes("does not exist") ? r : null;
    }, "/ready to say the key is missing");
    expect(notReady.body).toContain(`routing rules not loaded from Redis ${redis.addr} (${KEYS.rules}) yet`);
  });

  test("rules are read as the reference's Go JSON reads them: unknown keys ignored, the rule's own server_type wins over its key; both said in a warning", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    const json = JSON.stringify({
      "10": { server_type: 10, strategy: "round_robin", endpoints: [at(a)], enabled: true, weight: 1 },
      "11": { server_type: 12, strategy: "round_robin", endpoints: [at(b)] },
    });
    await redis.client.set(KEYS.rules, json);
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready once the rules are accepted");
    expect(await landsOn(gw, [a, b], 10)).toBe(0);
    expect(await landsOn(gw, [a, b], 12)).toBe(1);
    expect(await roundTrip(gw, 11)).toBeNull();
    const [warning] = gw.log.find("route source value read with parts ignored, as the reference ignores them");
    expect(warning?.ignored).toEqual([
      `${KEYS.rules}.10: unknown keys ignored: enabled, weight`,
      `${KEYS.rules}.11: stored under key "11" but server_type is 12 (the rule's server_type is used)`,
    ]);
  });

  test("hostile values are refused whole: the old rules stay and each refusal is counted", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] } }));
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    const errors = () => metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "routing_rules" });
    const errorsBefore = await errors();

    const manyRules = JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ server_type: 10 + (i % 200), world_id: 1 + Math.floor(i / 200), endpoints: [at(b)] })));
    const hostile = [
      '{"10": {"server_type": 10, "endpoints": ["',
      // One bad rule among good ones: none of them applies.
      JSON.stringify({ 10: { server_type: 10, endpoints: [at(b)] }, 12: { server_type: 12, strategy: "random", endpoints: [at(b)] } }),
      manyRules,
    ];
    for (const [i, value] of hostile.entries()) {
      await redis.client.set(KEYS.rules, value);
      await redis.client.publish(KEYS.rulesNotify, "changed");
      await eventually(async () => (await errors()) >= errorsBefore + i + 1, `refusal ${i + 1} counted`);
      expect(await landsOn(gw, [a, b], 10)).toBe(0);
      expect(await roundTrip(gw, 12)).toBeNull();
    }
    const warnings = gw.log.find("route source refresh failed; the last good routes stay in force").map((r) => String(r.error));
    expect(warnings[0]).toContain("not JSON");
    expect(warnings[1]).toContain('strategy: expected one of round_robin, consistent_hash, realm_based, rendezvous_instance, rendezvous_world, got "random"');
    // Refused by STRLEN, before it is read: a huge value is not fetched again every refresh.
    expect(warnings[2]).toContain("allowed (not read)");
    expect((await ready(gw)).status).toBe(200);
  });

  test("Redis down at start: /ready says why and the failures are counted; once Redis is up its rules serve", async () => {
    const down = await RedisServer.start();
    await down.kill();
    const a = await scope.backend();
    const gw = fleetGateway(down, { routing: { refresh_interval: "100ms", realm_refresh_interval: "1h" } });
    const notReady = await eventually(async () => {
      const r = await ready(gw);
      return r.status === 503 && r.body.includes("failed") ? r : null;
    }, "/ready to say Redis failed");
    expect(notReady.body).toContain(`routing rules not loaded from Redis ${down.addr} (${KEYS.rules}) yet`);
    // The dial gave up after redis.dial_timeout (1s here), and says that key, not read_timeout.
    expect(notReady.body).toContain("connect timed out after 1000ms (redis.dial_timeout)");
    expect(await metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "routing_rules" })).toBeGreaterThanOrEqual(1);

    try {
      await down.restart();
      await down.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] } }));
      await eventually(async () => (await ready(gw)).status === 200, "/ready once Redis answers");
      expect(await landsOn(gw, [a], 10)).toBe(0);
    } finally {
      await down.kill();
    }
  });

  test("Redis restarted: the last good rules serve meanwhile, and a publish afterwards still applies", async () => {
    const own = await RedisServer.start();
    try {
      const [a, b] = [await scope.backend(), await scope.backend()];
      await own.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] } }));
      const gw = fleetGateway(own);
      await eventually(async () => (await ready(gw)).status === 200, "/ready");

      await own.kill();
      expect(await landsOn(gw, [a, b], 10)).toBe(0);
      await own.restart(); // empty: it kept nothing on disk
      await eventually(async () => subscribers(own, KEYS.rulesNotify), "the gateway to subscribe again");
      await own.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(b)] } }));
      await own.client.publish(KEYS.rulesNotify, "changed");
      await eventually(async () => (await landsOn(gw, [a, b], 10)) === 1, "type 10 on b after the publish");
    } finally {
      await own.kill();
    }
  });
});

describe("gRPC backends named by Redis rules", () => {
  /** A gRPC game server that echoes (the gateway would read its HTTP/2 bytes as game frames if it dialled TCP). */
  async function grpcServer(): Promise<GrpcGameServer> {
    const s = await GrpcGameServer.start("bun");
    scope.defer(() => s.kill());
    return s;
  }

  test("server.use_grpc applies to Redis rules: the reference's main deployment (use_grpc, rules in Redis, none in the file)", async () => {
    const s = await grpcServer();
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [s.address] } }));
    const gw = scope.gateway(
      {
        admin: { listen_addr: "127.0.0.1:0" },
        server: { use_grpc: true },
        grpc: { reconnect_interval: "200ms", connection_timeout: "2s" },
        routing: { refresh_interval: "1h", realm_refresh_interval: "1h" },
        redis: { addr: redis.addr, key_prefix: PREFIX, dial_timeout: "1s", read_timeout: "1s" },
      },
      { grpc: await loadGrpcTransport() },
    );
    await eventually(async () => (await ready(gw)).status === 200, "/ready once the Redis rules are loaded");
    expect(await roundTrip(gw, 10)).toBe("ping");
    expect(s.events.some((e) => e.event === "stream")).toBe(true);
  });

  test('a Redis rule\'s "transport": "grpc" dials gRPC without server.use_grpc', async () => {
    const s = await grpcServer();
    const json = JSON.stringify({ 10: { server_type: 10, strategy: "round_robin", transport: "grpc", endpoints: [s.address] } });
    await redis.client.set(KEYS.rules, json);
    const gw = scope.gateway(
      {
        admin: { listen_addr: "127.0.0.1:0" },
        grpc: { reconnect_interval: "200ms", connection_timeout: "2s" },
        routing: { refresh_interval: "1h", realm_refresh_interval: "1h" },
        redis: { addr: redis.addr, key_prefix: PREFIX, dial_timeout: "1s", read_timeout: "1s" },
      },
      { grpc: await loadGrpcTransport() },
    );
    await eventually(async () => (await ready(gw)).status === 200, "/ready once the Redis rules are loaded");
    expect(await roundTrip(gw, 10)).toBe("ping");
  });
});

describe("gRPC routes without the gRPC transport", () => {
  test("a Redis rule naming gRPC, in a gateway started without the transport, is refused (counted, warned), not dialled over TCP", async () => {
    const a = await scope.backend();
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] } }));
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    const errors = () => metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "routing_rules" });
    const errorsBefore = await errors();
    const successes = () => metric(gw, "game_gateway_config_refresh_success_total", { config_type: "routing_rules" });
    const successesBefore = await successes();
    await redis.client.set(KEYS.rules, JSON.stringify({ 10: { server_type: 10, transport: "grpc", endpoints: ["127.0.0.1:1"] } }));
    await redis.client.publish(KEYS.rulesNotify, "changed");
    await eventually(async () => (await errors()) > errorsBefore, "the refusal counted");
    expect(await successes()).toBe(successesBefore); // counted as a failure only, not also as a success
    expect(await landsOn(gw, [a], 10)).toBe(0);
    expect(gw.log.find("route source refresh refused; the last good routes stay in force").length).toBeGreaterThanOrEqual(1);
  });
});

describe("the realm map", () => {
  test("realm_based sends a mapped realm to its address and hashes the others; a publish changes the map", async () => {
    const [a, b, c] = [await scope.backend(), await scope.backend(), await scope.backend()];
    await redis.client.del(KEYS.realm);
    await redis.client.set(KEYS.rules, rulesJson({ 200: { endpoints: [at(a)], strategy: "realm_based" }, 10: { endpoints: [at(a)] } }));
    // A non-numeric field is skipped, as the reference does.
    await redis.client.hset(KEYS.realm, { "7": at(b), note: "not a realm" });
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    await eventually(async () => (await landsOn(gw, [a, b, c], 200, 7, 1)) === 1, "realm 7 on its mapped address");
    expect(await landsOn(gw, [a, b, c], 200, 8, 1)).toBe(0);
    // Only realm_based rules read the map.
    expect(await landsOn(gw, [a, b, c], 10, 7, 1)).toBe(0);

    await redis.client.hset(KEYS.realm, { "7": at(c) });
    await redis.client.publish(KEYS.realmNotify, "changed");
    await eventually(async () => (await landsOn(gw, [a, b, c], 200, 7, 1)) === 2, "realm 7 on its new address");

    // A bad address refuses the whole map: realm 7 stays on c.
    const errors = await metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "realm_mapping" });
    await redis.client.hset(KEYS.realm, { "7": at(b), "9": "nowhere" });
    await redis.client.publish(KEYS.realmNotify, "changed");
    await eventually(async () => (await metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "realm_mapping" })) > errors, "the refusal counted");
    expect(await landsOn(gw, [a, b, c], 200, 7, 1)).toBe(2);
    expect(await metric(gw, "game_gateway_config_refresh_success_total", { config_type: "realm_mapping" })).toBeGreaterThanOrEqual(2);
  });

  test("a realm hash above MAX_REALM_FIELDS is refused unread (HLEN first), the old map kept, counted", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.del(KEYS.realm);
    await redis.client.set(KEYS.rules, rulesJson({ 200: { endpoints: [at(a)], strategy: "realm_based" } }));
    await redis.client.hset(KEYS.realm, { "7": at(b) });
    const gw = fleetGateway(redis);
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    await eventually(async () => (await landsOn(gw, [a, b], 200, 7, 1)) === 1, "realm 7 on its mapped address");
    const errors = () => metric(gw, "game_gateway_config_refresh_errors_total", { config_type: "realm_mapping" });
    const errorsBefore = await errors();

    // Non-numeric fields (skipped when read) padding the hash past the cap; realm 7 moved to a.
    const padding = MAX_REALM_FIELDS + 10;
    for (let i = 0; i < padding; i += 10_000) {
      const args = [KEYS.realm];
      for (let j = i; j < Math.min(i + 10_000, padding); j++) args.push(`note-${j}`, "x");
      await redis.client.send("HSET", args);
    }
    await redis.client.hset(KEYS.realm, { "7": at(a) });
    await redis.client.publish(KEYS.realmNotify, "changed");
    await eventually(async () => (await errors()) > errorsBefore, "the oversized hash counted as a failure");
    expect(await landsOn(gw, [a, b], 200, 7, 1)).toBe(1);
    const warning = gw.log.find("route source refresh failed; the last good routes stay in force").map((r) => String(r.error));
    expect(warning).toContain(`${KEYS.realm}: ${padding + 1} fields, more than the ${MAX_REALM_FIELDS} allowed (not read)`);
    await redis.client.del(KEYS.realm);
  });

  test("routing.use_realm_mapping: false routes realm_based by the hash alone, as the reference's code does", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    await redis.client.set(KEYS.rules, rulesJson({ 200: { endpoints: [at(a)], strategy: "realm_based" } }));
    await redis.client.del(KEYS.realm);
    await redis.client.hset(KEYS.realm, { "7": at(b) });
    const gw = fleetGateway(redis, { routing: { refresh_interval: "1h", realm_refresh_interval: "1h", use_realm_mapping: false } });
    await eventually(async () => (await ready(gw)).status === 200, "/ready");
    await eventually(async () => (await metric(gw, "game_gateway_config_refresh_success_total", { config_type: "realm_mapping" })) >= 1, "the map loaded");
    expect(await landsOn(gw, [a, b], 200, 7, 1)).toBe(0);
  });
});

describe("node identity", () => {
  test("a second gateway whose name hashes to the same session-ID node is not ready, and says which gateway holds it", async () => {
    const a = await scope.backend();
    await redis.client.set(KEYS.rules, rulesJson({ 10: { endpoints: [at(a)] } }));
    const first = fleetGateway(redis, { server: { gateway_name: "gw-node-a" } });
    await eventually(async () => (await ready(first)).status === 200, "the first gateway ready");
    const key = `${PREFIX}gateway:node:${nodeHash("gw-node-a")}`;
    expect(await redis.client.get(key)).toBe("gw-node-a");

    // Two names with one 11-bit hash: found by search, as two pods' names could collide.
    let other = "";
    for (let i = 0; other === ""; i++) if (nodeHash(`gw-${i}`) === nodeHash("gw-node-a")) other = `gw-${i}`;
    const second = fleetGateway(redis, { server: { gateway_name: other } });
    const r = await eventually(async () => {
      const x = await ready(second);
      return x.status === 503 && x.body.includes("held by") ? x : null;
    }, "the second gateway to see the clash");
    expect((JSON.parse(r.body) as { reason: string }).reason).toContain(`session ID node hash ${nodeHash(other)} of gateway_name "${other}" is held by gateway "gw-node-a"`);
    expect((await ready(first)).status).toBe(200);
  });
});

/** Clients subscribed to `channel` (PUBSUB NUMSUB). */
async function subscribers(server: RedisServer, channel: string): Promise<number> {
  const reply = (await server.client.send("PUBSUB", ["NUMSUB", channel])) as [string, number];
  return Number(reply[1]);
}

describe("Bun's RedisClient pub/sub traps", () => {
  test("after a server restart each notification arrives exactly once", async () => {
    const own = await RedisServer.start();
    const notes: string[] = [];
    const source = new RedisRouteSource(
      { ...defaultConfig({}).redis, addr: own.addr, key_prefix: PREFIX, dial_timeout: 1000, read_timeout: 1000 },
      // Timers far off: only onconnect can bring the subscription back.
      { rulesRefreshMs: 3_600_000, realmRefreshMs: 3_600_000 },
      { rules: () => {}, realms: () => {}, failed: () => {}, notified: (_kind, message) => notes.push(message) },
    );
    try {
      source.start();
      await eventually(async () => (await subscribers(own, KEYS.rulesNotify)) === 1, "the first subscription");
      await own.client.publish(KEYS.rulesNotify, "before");
      await eventually(() => notes.includes("before"), "the first notification");

      await own.restart();
      await eventually(async () => (await subscribers(own, KEYS.rulesNotify)) === 1, "the subscription after the restart");
      await own.client.publish(KEYS.rulesNotify, "after-1");
      await own.client.publish(KEYS.rulesNotify, "after-2");
      await eventually(() => notes.includes("after-2"), "the notifications after the restart");
      // In order on one connection: a second delivery of after-1 would come before after-2.
      expect(notes).toEqual(["before", "after-1", "after-2"]);
    } finally {
      source.stop();
      await own.kill();
    }
  });
});
