// The reference gateway's routing choices, reproduced end to end: real clients through the
// gateway (in process, then the built binary) to real backends; each session lands on the
// backend that zlib's crc32 mod n (or the rule's round robin counter) names. A fleet mixing old
// and new gateways during a migration needs exactly this.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 as zlibCrc32 } from "node:zlib";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import YAML from "yaml";
import { ChildOutput, startGateway, str, text } from "../support/harness.ts";

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

// Expectations from the reference's description (reference-gateway.md, "Routing rules") and zlib.
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
