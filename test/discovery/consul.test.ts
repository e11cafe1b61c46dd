// Endpoints from a Consul agent's health API (a local HTTP server serving its documented JSON),
// merged with Redis rules exactly as the reference does; an instance that leaves is drained.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Server } from "bun";
import { serverIdFor } from "../../src/client/game-client.ts";
import type { DemoBackend } from "../../src/demo/demo-backend.ts";
import { redisKeys } from "../../src/discovery/redis-routes.ts";
import { TestScope, eventually, str, text, type TestGateway } from "../support/harness.ts";
import { parseExposition, sumOf } from "../support/prom-text.ts";
import { loadGrpcTransport } from "../../src/backend/grpc/load-grpc.ts";
import { GrpcGameServer } from "../support/grpc-game-server.ts";
import { RedisServer } from "../support/redis-server.ts";

setDefaultTimeout(60_000);

const scope = new TestScope();
afterEach(scope.release);

interface Instance {
  readonly port: number;
  readonly namespace: string;
  readonly world: string;
}

/**
 * The agent: GET /v1/health/service/{name}?passing=true answers the instances set now, with
 * X-Consul-Index counting their changes; with index=N it blocks, as Consul does, until the
 * index passes N or `wait` runs out.
 */
class FakeConsulAgent {
  private current: Instance[] = [];
  private index = 1;
  private changed: (() => void)[] = [];
  readonly asked: string[] = [];
  private readonly server: Server<undefined>;

  get instances(): Instance[] {
    return this.current;
  }

  set instances(next: Instance[]) {
    this.current = next;
    this.index++;
    for (const wake of this.changed.splice(0)) wake();
  }

  constructor(private readonly serviceName: string) {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0, // blocking queries hold the request open
      fetch: async (req) => {
        const url = new URL(req.url);
        this.asked.push(url.pathname + url.search);
        if (url.pathname !== `/v1/health/service/${this.serviceName}` || url.searchParams.get("passing") !== "true") return new Response("[]", { status: 404 });
        const after = Number(url.searchParams.get("index") ?? 0);
        if (after >= this.index) {
          const waitMs = Math.min(Number.parseInt(url.searchParams.get("wait") ?? "300", 10) * 1000, 60_000);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, waitMs);
            this.changed.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
        }
        // The health API's entry shape: Node, Service (with Meta), Checks.
        const body = this.instances.map((i, n) => ({
          Node: { ID: "node-1", Node: "node-1", Address: "127.0.0.1", Datacenter: "dc1" },
          Service: { ID: `${this.serviceName}-${n}`, Service: this.serviceName, Tags: [], Address: "127.0.0.1", Port: i.port, Meta: { namespace: i.namespace, world_id: i.world } },
          Checks: [{ Node: "node-1", CheckID: "serfHealth", Status: "passing" }],
        }));
        return Response.json(body, { headers: { "X-Consul-Index": String(this.index) } });
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  stop(): void {
    this.server.stop(true);
  }
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.kill();
});

function consulGateway(agent: FakeConsulAgent, extra: Record<string, unknown> = {}): TestGateway {
  return scope.gateway({
    admin: { listen_addr: "127.0.0.1:0" },
    consul: { enabled: true, address: agent.url, service_name: "game", namespace: "hgame", refresh_interval: "100ms" },
    ...extra,
  });
}

async function landsOn(gw: TestGateway, backends: DemoBackend[], type: number, world: number): Promise<number> {
  const before = backends.map((b) => b.stats().connects);
  const c = await gw.connect();
  try {
    c.send(1, serverIdFor(type, world, 1), text("ping"));
    await c.next();
  } catch {
    return -1;
  } finally {
    c.close();
  }
  const i = await eventually(() => {
    const k = backends.findIndex((b, j) => b.stats().connects > before[j]!);
    return k >= 0 ? k + 1 : 0;
  }, "a backend to see the session's Connect");
  return i - 1;
}

describe("Consul discovery", () => {
  test("without Redis rules each world gets the default rule (server type 200, round robin); an instance that leaves is drained", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    const agent = new FakeConsulAgent("game");
    scope.defer(() => agent.stop());
    agent.instances = [
      { port: a.port, namespace: "hgame", world: "1" },
      // Filtered out: another namespace, and a world_id that is not an integer.
      { port: b.port, namespace: "other", world: "1" },
      { port: b.port, namespace: "hgame", world: "one" },
    ];
    const gw = consulGateway(agent);
    const ready = async () => (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/ready`)).status === 200;
    await eventually(ready, "/ready once Consul answered");
    // Consul loads are counted beside Redis' under our own config_type.
    const scrape = parseExposition(await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/metrics`)).text());
    expect(sumOf(scrape, "game_gateway_config_refresh_success_total", { config_type: "consul_endpoints" })).toBeGreaterThanOrEqual(1);
    expect(await landsOn(gw, [a, b], 200, 1)).toBe(0);
    expect(await landsOn(gw, [a, b], 200, 2)).toBe(-1);
    expect(agent.asked[0]).toBe("/v1/health/service/game?passing=true");

    // A session on a stays while a leaves and b joins: new sessions go to b.
    const held = await gw.connect();
    held.send(1, serverIdFor(200, 1, 1), text("before"));
    expect(str((await held.next()).body)).toBe("before");
    agent.instances = [{ port: b.port, namespace: "hgame", world: "1" }];
    await eventually(async () => (await landsOn(gw, [a, b], 200, 1)) === 1, "new sessions on b");
    held.send(1, serverIdFor(200, 1, 1), text("still here"));
    expect(str((await held.next()).body)).toBe("still here");
    held.close();

    // A hostile answer (too many instances) is refused whole: b stays the only endpoint.
    const failures = () => gw.log.find("route source refresh failed; the last good routes stay in force").filter((r) => r.source === "consul").length;
    const before = failures();
    agent.instances = Array.from({ length: 10_001 }, (_, i) => ({ port: i % 2 === 0 ? a.port : b.port, namespace: "hgame", world: "1" }));
    await eventually(() => failures() > before, "the refusal logged");
    expect(gw.log.find("route source refresh failed; the last good routes stay in force").at(-1)!.error).toContain("10001 instances, more than the 10000 allowed");
    expect(await landsOn(gw, [a, b], 200, 1)).toBe(1);
    expect(await landsOn(gw, [a, b], 200, 1)).toBe(1);

    // Joining again: round robin over both.
    agent.instances = [
      { port: a.port, namespace: "hgame", world: "1" },
      { port: b.port, namespace: "hgame", world: "1" },
    ];
    await eventually(async () => (await landsOn(gw, [a, b], 200, 1)) === 0, "a back in the pool");
  });

  test("after the first answer the gateway blocks on the agent's index: a change is seen at once, not after refresh_interval", async () => {
    const [a, b] = [await scope.backend(), await scope.backend()];
    const agent = new FakeConsulAgent("game");
    scope.defer(() => agent.stop());
    agent.instances = [{ port: a.port, namespace: "hgame", world: "3" }];
    const gw = scope.gateway({
      admin: { listen_addr: "127.0.0.1:0" },
      // An hour between polls: only a blocking query can see the change below in time.
      consul: { enabled: true, address: agent.url, service_name: "game", namespace: "hgame", refresh_interval: "1h" },
    });
    await eventually(async () => (await landsOn(gw, [a, b], 200, 3)) === 0, "world 3 on a");
    await eventually(() => agent.asked.some((q) => q.endsWith("?passing=true&index=2&wait=3600s")), "a blocking query on index 2");
    agent.instances = [{ port: b.port, namespace: "hgame", world: "3" }];
    await eventually(async () => (await landsOn(gw, [a, b], 200, 3)) === 1, "world 3 on b once the blocking query returned");
  });

  test("Redis rules take Consul's endpoints by world, as the reference merges them", async () => {
    const [a, b, unused] = [await scope.backend(), await scope.backend(), await scope.backend()];
    const agent = new FakeConsulAgent("game");
    scope.defer(() => agent.stop());
    agent.instances = [
      { port: a.port, namespace: "hgame", world: "1" },
      { port: b.port, namespace: "hgame", world: "2" },
    ];
    const keys = redisKeys("consul-test:");
    // Rule 10: any world, this service: one rule per Consul world. Rule 11 names another service:
    // not merged. Rule 12 is world 2's own. Their own endpoints are ignored.
    await redis.client.set(
      keys.rules,
      JSON.stringify({
        10: { server_type: 10, service_name: "game", strategy: "round_robin", endpoints: [`127.0.0.1:${unused.port}`] },
        11: { server_type: 11, service_name: "chat", strategy: "round_robin", endpoints: [`127.0.0.1:${unused.port}`] },
        12: { server_type: 12, world_id: 2, service_name: "", strategy: "consistent_hash" },
      }),
    );
    const gw = consulGateway(agent, { redis: { addr: redis.addr, key_prefix: "consul-test:" } });
    await eventually(async () => (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/ready`)).status === 200, "/ready");
    await eventually(async () => (await landsOn(gw, [a, b, unused], 10, 1)) === 0, "rule 10 in world 1 on world 1's instance");
    expect(await landsOn(gw, [a, b, unused], 10, 2)).toBe(1);
    expect(await landsOn(gw, [a, b, unused], 12, 2)).toBe(1);
    expect(await landsOn(gw, [a, b, unused], 12, 1)).toBe(-1);
    expect(await landsOn(gw, [a, b, unused], 11, 1)).toBe(-1);
    // Worlds matched by a rule get no default server type 200 rule.
    expect(await landsOn(gw, [a, b, unused], 200, 1)).toBe(-1);
    expect(unused.stats().connects).toBe(0);
  });
});

describe("Consul endpoints that speak gRPC", () => {
  test("server.use_grpc applies to the rules Consul's endpoints make: the game server is dialled over gRPC, not raw TCP", async () => {
    const s = await GrpcGameServer.start("bun");
    scope.defer(() => s.kill());
    const agent = new FakeConsulAgent("game");
    scope.defer(() => agent.stop());
    agent.instances = [{ port: s.port, namespace: "hgame", world: "1" }];
    const gw = scope.gateway(
      {
        admin: { listen_addr: "127.0.0.1:0" },
        server: { use_grpc: true },
        grpc: { reconnect_interval: "200ms", connection_timeout: "2s" },
        consul: { enabled: true, address: agent.url, service_name: "game", namespace: "hgame", refresh_interval: "100ms" },
      },
      { grpc: await loadGrpcTransport() },
    );
    await eventually(async () => (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/ready`)).status === 200, "/ready once Consul answered");
    const c = await gw.connect();
    try {
      c.send(1, serverIdFor(200, 1, 1), text("ping"));
      expect(str((await c.next()).body)).toBe("ping");
    } finally {
      c.close();
    }
  });
});
