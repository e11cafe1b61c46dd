// The fleet on one machine: HAProxy (send-proxy-v2) in front of two gateway processes reading
// their routes from one redis-server, in front of two demo backends. A route change published
// once reaches both gateways; one gateway drained by SIGTERM while the other serves; clients
// reconnecting through HAProxy land on the live one; session IDs unique across the two.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import type { DemoEvent } from "../../src/demo/demo-connection.ts";
import { nodeHash } from "../../src/session/session-id.ts";
import { ChildOutput, eventually, str, text } from "../support/harness.ts";
import { RedisServer, freePort } from "../support/redis-server.ts";

setDefaultTimeout(120_000);

const root = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "gw-fleet-"));
const PREFIX = "fleet:";
const RULES = `${PREFIX}routing:rules`;
/** HAProxy dials the gateways from this address, the only one they trust for a PROXY header. */
const HAPROXY_SOURCE = "127.0.0.3";
const CONNECT = 2;

interface FleetGateway {
  readonly name: string;
  readonly port: number;
  readonly adminPort: number;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly out: ChildOutput;
}

let redis: RedisServer;
let a: DemoBackend;
let b: DemoBackend;
const gateways: FleetGateway[] = [];
let haproxy: ChildOutput;
let lbPort = 0;

const rulesTo = (backend: DemoBackend): string =>
  JSON.stringify({ 10: { server_type: 10, service_name: "game", strategy: "round_robin", endpoints: [`127.0.0.1:${backend.port}`] } });

async function startGatewayProcess(name: string): Promise<FleetGateway> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      "server:",
      `  listen_addr: "127.0.0.1:${port}"`,
      `  gateway_name: "${name}"`,
      "  drain_delay: 1s", // long enough for HAProxy's checks to see /ready fail first
      // One process per gateway: the fleet is the subject here (the node bits below are the name's
      // whole hash); a group of workers puts its index in their low bits (test/supervisor).
      "  workers: 1",
      "admin:",
      `  listen_addr: "127.0.0.1:${adminPort}"`,
      "security:",
      "  proxy_protocol: required",
      `  trusted_proxies: ["${HAPROXY_SOURCE}/32"]`,
      "  max_connections_per_ip: 1000",
      "  connection_rate_limit: 1000",
      "routing:",
      "  refresh_interval: 1h", // a change seen here came by pub/sub
      "redis:",
      `  addr: "${redis.addr}"`,
      `  key_prefix: "${PREFIX}"`,
      "graceful_shutdown_timeout: 2s",
    ].join("\n"),
  );
  const proc = Bun.spawn([process.execPath, "src/cli/main.ts", "--config", file], { cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const out = new ChildOutput(proc);
  await out.logLine("gateway listening");
  return { name, port, adminPort, proc, out };
}

function haproxyConfig(): string {
  return [
    "global",
    "  maxconn 1000",
    "defaults",
    "  mode tcp",
    "  timeout connect 2s",
    "  timeout client 60s",
    "  timeout server 60s",
    "frontend clients",
    `  bind 127.0.0.1:${lbPort}`,
    "  default_backend gateways",
    "backend gateways",
    "  balance roundrobin",
    // A draining gateway's /ready fails at once: HAProxy stops sending it clients before it closes its listener.
    "  option httpchk GET /ready",
    `  default-server inter 100ms fall 1 rise 1 source ${HAPROXY_SOURCE}`,
    ...gateways.map((g) => `  server ${g.name} 127.0.0.1:${g.port} send-proxy-v2 check port ${g.adminPort}`),
    "",
  ].join("\n");
}

const connects = (backend: DemoBackend): DemoEvent[] => backend.events.filter((e) => e.opcode === CONNECT);
const connectInfo = (e: DemoEvent) => e.json as { client_ip: string; gateway: string };

/** A client through HAProxy that has round-tripped one frame; resolves with it and the Connect its session made. */
async function viaHaproxy(backend: DemoBackend, tag: string): Promise<{ client: GameClient; connect: DemoEvent }> {
  const seen = connects(backend).length;
  const client = await GameClient.connect("127.0.0.1", lbPort);
  client.send(1, serverIdFor(10), text(tag));
  expect(str((await client.next()).body)).toBe(tag);
  const connect = await eventually(() => connects(backend)[seen], "the session's Connect at the backend");
  return { client, connect };
}

beforeAll(async () => {
  redis = await RedisServer.start();
  [a, b] = [await DemoBackend.start({ port: 0 }), await DemoBackend.start({ port: 0 })];
  await redis.client.set(RULES, rulesTo(a));
  gateways.push(await startGatewayProcess("fleet-gw-1"), await startGatewayProcess("fleet-gw-2"));
  for (const g of gateways) {
    await eventually(async () => (await fetch(`http://127.0.0.1:${g.adminPort}/ready`)).status === 200, `${g.name} ready`);
  }
  lbPort = await freePort();
  const cfg = join(dir, "haproxy.cfg");
  writeFileSync(cfg, haproxyConfig());
  haproxy = new ChildOutput(Bun.spawn([Bun.which("haproxy") ?? "/usr/sbin/haproxy", "-db", "-f", cfg], { stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
});

afterAll(async () => {
  haproxy?.proc.kill("SIGKILL");
  for (const g of gateways) g.proc.kill("SIGKILL");
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.kill();
});

describe("a fleet of two gateways behind HAProxy, routes from one Redis", () => {
  test("both serve; backends see the real client address; a publish reaches both; a drained one's clients move to the other", async () => {
    // Until HAProxy's first checks pass, clients may be turned away: wait for both gateways in rotation.
    const first: { client: GameClient; connect: DemoEvent }[] = [];
    await eventually(async () => {
      try {
        first.push(await viaHaproxy(a, `hello ${first.length}`));
      } catch {
        return false;
      }
      return new Set(first.map((f) => connectInfo(f.connect).gateway)).size === 2;
    }, "sessions on both gateways through HAProxy", 30_000);
    for (const f of first) {
      // The PROXY v2 header's source, not HAProxy's own address.
      expect(connectInfo(f.connect).client_ip).toBe("127.0.0.1");
    }

    // One publish: both gateways apply it.
    const updatesBefore = gateways.map((g) => g.out.logRecords("routes updated").length);
    await redis.client.set(RULES, rulesTo(b));
    await redis.client.publish(`${RULES}:notify`, "changed");
    for (const [i, g] of gateways.entries()) {
      await eventually(() => g.out.logRecords("routes updated").length > updatesBefore[i]!, `${g.name} to apply the published rules`);
    }
    const held: { client: GameClient; gateway: string; tag: string; sent: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const { client, connect } = await viaHaproxy(b, `held ${i}`);
      held.push({ client, gateway: connectInfo(connect).gateway, tag: `held ${i}`, sent: 0 });
    }
    expect(new Set(held.map((h) => h.gateway))).toEqual(new Set(["fleet-gw-1", "fleet-gw-2"]));
    for (const f of first) f.client.close();

    // Drain gateway 1. Its sessions carry on until graceful_shutdown_timeout, then close;
    // gateway 2's never miss a reply.
    const [drained, live] = gateways as [FleetGateway, FleetGateway];
    drained.proc.kill("SIGTERM");
    const closedAt = new Map<string, number>();
    while (drained.out.exitCode === null || closedAt.size < held.filter((h) => h.gateway === drained.name).length) {
      for (const h of held) {
        if (closedAt.has(h.tag)) continue;
        const n = ++h.sent;
        try {
          h.client.send(1, serverIdFor(10), text(`${h.tag} #${n}`));
          expect(str((await h.client.next()).body)).toBe(`${h.tag} #${n}`);
        } catch (e) {
          if (h.gateway === live.name) throw e;
          closedAt.set(h.tag, n);
        }
      }
      await Bun.sleep(20);
    }
    expect(await drained.proc.exited).toBe(0);
    // Exactly the drained gateway's sessions were closed; the live one's kept every reply.
    expect([...closedAt.keys()].sort()).toEqual(held.filter((h) => h.gateway === drained.name).map((h) => h.tag).sort());

    // Reconnecting through HAProxy lands on the live gateway.
    for (const tag of closedAt.keys()) {
      const again = await viaHaproxy(b, `${tag} again`);
      expect(connectInfo(again.connect).gateway).toBe(live.name);
      again.client.close();
    }
    for (const h of held) h.client.close();

    // Session IDs: unique across the two gateways, each carrying its gateway's node hash.
    const all = [...connects(a), ...connects(b)];
    expect(new Set(all.map((e) => e.sessionId)).size).toBe(all.length);
    for (const e of all) expect(Number((e.sessionId >> 52n) & 0x7ffn)).toBe(nodeHash(connectInfo(e).gateway));
    expect(nodeHash("fleet-gw-1")).not.toBe(nodeHash("fleet-gw-2"));
  });
});
