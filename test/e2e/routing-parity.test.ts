// The reference gateway's routing choices, reproduced end to end: real clients through the
// gateway (in process, then the built binary) to real backends; each session lands on the
// backend that zlib's crc32 mod n (or the rule's round robin counter) names. A fleet mixing old
// and new gateways during a migration needs exactly this.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import YAML from "yaml";
import { ChildOutput, TestScope, eventually, startGateway, str, testConfig, text } from "../support/harness.ts";

const HASHED = 200; // consistent_hash over backends [0, 1, 2]
const REALM = 201; // realm_based over backends [2, 0, 1]: the index is into the rule's own list
const TURNS = 10; // round_robin over backends [0, 1]
const ORDER: Record<number, number[]> = { [HASHED]: [0, 1, 2], [REALM]: [2, 0, 1], [TURNS]: [0, 1] };

interface Case {
  readonly serverType: number;
  readonly world: number;
  readonly inst: number;
  /** Index into `backends`. */
  readonly expected: number;
}

// Expectations from the reference's description (../shared/reference/reference-gateway.md, "Routing rules") and zlib.
function cases(): Case[] {
  const out: Case[] = [];
  const hashed = (serverType: number, world: number, inst: number, key: string): void => {
    const order = ORDER[serverType]!;
    out.push({ serverType, world, inst, expected: order[zlibCrc32(key) % order.length]! });
  };
  for (const inst of [1, 2, 3, 7, 10, 42, 99, 100, 128, 200, 254, 255]) hashed(HASHED, 1 + inst, inst, String(inst));
  for (const [world, inst] of [[1, 1], [3, 7], [9, 10], [10, 9], [77, 200], [1000, 1], [12345, 42], [32767, 255]] as const) {
    hashed(REALM, world, inst, `world:${world}:inst:${inst}`);
  }
  // Round robin: the rule's counter, from 0, one value per session; consistent_hash and
  // realm_based fall back to it when instID (or worldID) is 0, and hashed sessions take no value.
  for (let i = 0; i < 4; i++) out.push({ serverType: TURNS, world: 1, inst: 5, expected: ORDER[TURNS]![i % 2]! });
  for (let i = 0; i < 4; i++) out.push({ serverType: HASHED, world: 4, inst: 0, expected: ORDER[HASHED]![i % 3]! });
  out.push({ serverType: REALM, world: 0, inst: 9, expected: ORDER[REALM]![0]! });
  out.push({ serverType: REALM, world: 8, inst: 0, expected: ORDER[REALM]![1]! });
  return out;
}

const STRATEGY: Record<number, string> = { [HASHED]: "consistent_hash", [REALM]: "realm_based", [TURNS]: "round_robin" };

/** The routing section both gateways run with. */
const routing = (backends: readonly DemoBackend[]) => ({
  rules: [HASHED, REALM, TURNS].map((type) => ({
    server_type: type,
    strategy: STRATEGY[type]!,
    endpoints: ORDER[type]!.map((i) => `127.0.0.1:${backends[i]!.port}`),
  })),
});

const transSeen = (b: DemoBackend): number => b.stats().framesByOpcode[OpCode.Trans]!;

/** Which backend each case's session reached: one session at a time, told by the backend that received its message. */
async function landings(port: number, backends: readonly DemoBackend[], all: readonly Case[]): Promise<{ expected: number[]; got: number[] }> {
  const got: number[] = [];
  for (const c of all) {
    const before = backends.map(transSeen);
    const client = await GameClient.connect("127.0.0.1", port);
    client.send(1, serverIdFor(c.serverType, c.world, c.inst), text("where am I"));
    expect(str((await client.next(10_000)).body)).toBe("where am I");
    got.push(backends.findIndex((b, i) => transSeen(b) > before[i]!));
    client.close();
    await client.closed;
  }
  return { expected: all.map((c) => c.expected), got };
}

describe("routing parity with the reference gateway", () => {
  const backends: DemoBackend[] = [];
  const all = cases();

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) backends.push(await DemoBackend.start({ port: 0, name: `b${i}` }));
  });
  afterAll(async () => {
    for (const b of backends) await b.stop();
  });

  test("the expectations use every backend (a table that cannot tell backends apart proves nothing)", () => {
    expect(new Set(all.filter((c) => c.serverType !== TURNS).map((c) => c.expected)).size).toBe(3);
  });

  test(`in process: ${all.length} sessions land where the table says`, async () => {
    const gw = startGateway({ routing: routing(backends) });
    try {
      const { expected, got } = await landings(gw.gateway.port, backends, all);
      expect(got).toEqual(expected);
    } finally {
      await gw.stop();
    }
  }, 60_000);

  test("a config reload keeps round robin's counter: the next session takes the next turn", async () => {
    const gw = startGateway({ routing: routing(backends) });
    try {
      const turn = (i: number): Case => ({ serverType: TURNS, world: 1, inst: 0, expected: ORDER[TURNS]![i % 2]! });
      const before = await landings(gw.gateway.port, backends, [turn(0), turn(1), turn(2)]);
      expect(before.got).toEqual(before.expected);
      gw.gateway.reload(testConfig({ routing: routing(backends) }));
      const after = await landings(gw.gateway.port, backends, [turn(3), turn(4)]);
      expect(after.got).toEqual(after.expected);
    } finally {
      await gw.stop();
    }
  });

  test(`through the built binary: the same ${all.length} sessions land the same way`, async () => {
    const root = join(import.meta.dir, "../..");
    const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
    const dir = mkdtempSync(join(tmpdir(), "gw-route-"));
    const cfg = join(dir, "gw.yaml");
    writeFileSync(
      cfg,
      YAML.stringify({
        server: { listen_addr: "127.0.0.1:0", health_check_port: -1 },
        graceful_shutdown_timeout: "1s",
        security: { connection_rate_limit: 1000, max_connections_per_ip: 1000 },
        routing: routing(backends),
      }),
    );
    const proc = Bun.spawn([join(root, "dist/game-gateway"), "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    try {
      const [, port] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)"/);
      const { expected, got } = await landings(Number(port), backends, all);
      expect(got).toEqual(expected);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill("SIGKILL");
    }
  }, 120_000);
});

describe("the chosen endpoint's breaker is open (routing.when_breaker_open)", () => {
  const scope = new TestScope();
  afterEach(scope.release);

  /** consistent_hash over [live, dead, live]; resolves once the dead endpoint's breaker is open. */
  async function withDeadMiddle(whenBreakerOpen: string) {
    const live = [await scope.backend(), await scope.backend()];
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const dead = `127.0.0.1:${probe.port}`;
    probe.stop(true);
    const gw = scope.gateway({
      connection_pool: { retry_delay: "10ms", dial_timeout: "200ms" },
      circuit_breaker: { failure_threshold: 1, open_timeout: "10m" },
      routing: {
        when_breaker_open: whenBreakerOpen,
        rules: [{ server_type: HASHED, strategy: "consistent_hash", endpoints: [`127.0.0.1:${live[0]!.port}`, dead, `127.0.0.1:${live[1]!.port}`] }],
      },
    });
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: dead })) === 1, "the dead endpoint's breaker to open");
    // instIDs whose crc32 mod 3 (zlib) names each index.
    const instFor = (index: number): number => {
      for (let inst = 1; inst <= 255; inst++) if (zlibCrc32(String(inst)) % 3 === index) return inst;
      throw new Error(`no instID hashes to ${index}`);
    };
    return { live, gw, instFor };
  }

  test("fall_back (default): the reference's choice while usable, else the next index", async () => {
    const { live, gw, instFor } = await withDeadMiddle("fall_back");
    const { expected, got } = await landings(gw.gateway.port, live, [
      { serverType: HASHED, world: 1, inst: instFor(0), expected: 0 },
      { serverType: HASHED, world: 1, inst: instFor(2), expected: 1 },
      { serverType: HASHED, world: 1, inst: instFor(1), expected: 1 }, // index 1 is down: index 2
    ]);
    expect(got).toEqual(expected);
  });

  test("refuse: as the reference, the client whose chosen endpoint is down is closed", async () => {
    const { live, gw, instFor } = await withDeadMiddle("refuse");
    const { expected, got } = await landings(gw.gateway.port, live, [{ serverType: HASHED, world: 1, inst: instFor(0), expected: 0 }]);
    expect(got).toEqual(expected);
    const c = await gw.connect();
    c.send(1, serverIdFor(HASHED, 1, instFor(1)), text("anyone?"));
    await c.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_unavailable" })).toBe(1);
    expect(live.map(transSeen)).toEqual([1, 0]);
  });
});
