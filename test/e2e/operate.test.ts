// Operating a live gateway: drain, hot reload, admin endpoints, access log, trace propagation.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "bun";
import YAML from "yaml";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { FrameReader } from "../../src/net/frame-reader.ts";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { BackendFrameLayout } from "../../src/protocol/layouts.ts";
import { OpCode, decodeBackendFrame, encodeBackendFrame } from "../../src/protocol/server-frame.ts";
import { eventually, rule, str, text, TestScope, type TestGateway } from "../support/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { parseExposition, samplesOf } from "../support/prom-text.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);
const gateway = scope.gateway;
const backend = (opts: { traceHeader?: boolean } = {}) => scope.backend(opts);

async function roundTrip(c: GameClient, body: string): Promise<string> {
  c.send(1, serverIdFor(T), text(body));
  return str((await c.next()).body);
}

const admin = (gw: TestGateway, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${gw.gateway.adminPort}${path}`, init);

describe("graceful drain", () => {
  test("not ready at once; listener closes; live sessions keep working and lose nothing; stragglers closed with shutdown", async () => {
    const be = await backend();
    // drain_delay and graceful_shutdown_timeout are counted on this clock, so "during drain_delay"
    // lasts until the test ticks past it, however slow the machine is.
    const clock = new ManualClock();
    const gw = gateway(
      {
        server: { drain_delay: "200ms" },
        admin: { listen_addr: "127.0.0.1:0" },
        graceful_shutdown_timeout: "1500ms",
        routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
      },
      { clock },
    );
    const leaver = await gw.connect();
    const straggler = await gw.connect();
    expect(await roundTrip(leaver, "hi")).toBe("hi");
    expect(await roundTrip(straggler, "hi")).toBe("hi");
    expect((await admin(gw, "/ready")).status).toBe(200);

    const drainStarted = Date.now();
    const drained = gw.gateway.drain();
    const ready = await admin(gw, "/ready");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: "not_ready", reason: "draining" });

    // During drain_delay the listener still accepts (load balancers are still noticing), even
    // once more than drain_delay of real time has gone by: only the gateway's clock counts.
    while (Date.now() - drainStarted < 300) await Bun.sleep(10);
    const late = await gw.connect();
    expect(await roundTrip(late, "accepted during drain_delay")).toBe("accepted during drain_delay");
    clock.tick(200);
    await eventually(async () => GameClient.connect("127.0.0.1", gw.gateway.port).then((c) => (c.close(), false), () => true), "listener to close");

    // Sessions keep working after the listener closed: every message sent gets its reply.
    for (let i = 0; i < 50; i++) leaver.send(i, serverIdFor(T), text(`msg-${i}`));
    const replies = await leaver.frames(50, 10_000);
    expect(replies.map((f) => str(f.body))).toEqual(Array.from({ length: 50 }, (_, i) => `msg-${i}`));
    leaver.close();
    late.close();

    await eventually(() => gw.gateway.clientConnections === 1, "only the straggler left");
    clock.tick(1_500); // graceful_shutdown_timeout: the straggler never leaves, so it is closed
    await drained;
    await straggler.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "shutdown" })).toBe(1);
    const disconnectReasons = () => be.events.filter((e) => e.opcode === OpCode.Disconnect).map((e) => (e.json as { reason: string }).reason);
    await eventually(() => disconnectReasons().length === 3, "the backend to read every Disconnect");
    expect(disconnectReasons().sort()).toEqual(["client_closed", "client_closed", "shutdown"]);
  });
});

describe("hot reload", () => {
  test("new routes apply to new sessions; live sessions keep their endpoint; the removed endpoint retires when empty", async () => {
    const a = await backend();
    const b = await backend();
    const dir = mkdtempSync(join(tmpdir(), "gw-reload-"));
    const file = join(dir, "gw.yaml");
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] } });
    const old = await gw.connect();
    expect(await roundTrip(old, "on a")).toBe("on a");

    writeFileSync(file, YAML.stringify({ log: { level: "debug" }, routing: { rules: [rule(T, [`127.0.0.1:${b.port}`])] } }));
    const record = await gw.gateway.reloadFromFile(file);
    expect(record).toMatchObject({ ok: true, version: 2, source: "file" });
    expect(await gw.gateway.metrics.value("config_refresh_success_total", { config_type: "routing_rules" })).toBe(1);
    expect(await gw.gateway.metrics.value("config_version")).toBe(2);
    expect(gw.gateway.log.enabled("debug")).toBe(true);

    const fresh = await gw.connect();
    expect(await roundTrip(fresh, "on b")).toBe("on b");
    const aTrans = a.stats().framesByOpcode[OpCode.Trans]!;
    expect(await roundTrip(old, "still on a")).toBe("still on a");
    expect(a.stats().framesByOpcode[OpCode.Trans]).toBe(aTrans + 1);
    expect(b.stats().framesByOpcode[OpCode.Trans]).toBe(1);

    old.close();
    await eventually(() => a.stats().connections === 0, "the retired endpoint's connections to close after its last session");
    expect(gw.gateway.backends.all().map((p) => p.endpoint)).toEqual([`127.0.0.1:${b.port}`]);
    fresh.close();
  });

  test("an invalid file changes nothing, is logged and counted", async () => {
    const a = await backend();
    const dir = mkdtempSync(join(tmpdir(), "gw-reload-"));
    const file = join(dir, "gw.yaml");
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] } });
    writeFileSync(file, "routing:\n  rules:\n    - { server_type: 999, endpoints: [] }\n");
    const record = await gw.gateway.reloadFromFile(file);
    expect(record.ok).toBe(false);
    expect(record.error).toContain("routing.rules[0].server_type");
    expect(gw.gateway.configVersion).toBe(1);
    expect(await gw.gateway.metrics.value("config_refresh_errors_total", { config_type: "routing_rules" })).toBe(1);
    expect(gw.log.find("config reload refused; previous config stays in force")).toHaveLength(1);
    const c = await gw.connect();
    expect(await roundTrip(c, "unchanged")).toBe("unchanged");
    c.close();
  });

  test("keys that need a restart keep their old value and are reported", async () => {
    const a = await backend();
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] } });
    const next = { ...gw.gateway.config, backend: { ...gw.gateway.config.backend, mode: "dedicated" as const } };
    const record = gw.gateway.reload(next);
    expect(record.needsRestart).toEqual(["backend"]);
    expect(gw.gateway.config.backend.mode).toBe("multiplexed");
  });
});

describe("admin endpoints", () => {
  test("/health, /metrics with request latency both ways, and token-guarded /debug", async () => {
    const a = await backend();
    const gw = gateway({
      admin: { listen_addr: "127.0.0.1:0", debug_token: "s3cret" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const c = await gw.connect();
    for (let i = 0; i < 10; i++) expect(await roundTrip(c, `m${i}`)).toBe(`m${i}`);
    expect(await (await admin(gw, "/health")).json()).toEqual({ status: "ok" });
    const metrics = parseExposition(await (await admin(gw, "/metrics")).text());
    const latencyCounts = (direction: string) => samplesOf(metrics, "game_gateway_request_latency_seconds_count", { direction }).map((x) => x.value);
    expect(latencyCounts("upstream")).toEqual([10]);
    expect(latencyCounts("downstream")).toEqual([10]);
    expect(samplesOf(metrics, "game_gateway_messages_processed_total", { direction: "client_to_backend" })).toEqual([
      { name: "game_gateway_messages_processed_total", labels: { direction: "client_to_backend", service_type: "10" }, value: 10 },
    ]);

    expect((await admin(gw, "/debug/stats")).status).toBe(401);
    expect((await admin(gw, "/debug/stats", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    const stats = (await (await admin(gw, "/debug/stats", { headers: { authorization: "Bearer s3cret" } })).json()) as {
      sessions: number;
      config_version: number;
      backends: { endpoint: string; connections_open: number; sessions: number }[];
    };
    expect(stats.sessions).toBe(1);
    expect(stats.config_version).toBe(1);
    expect(stats.backends).toEqual([expect.objectContaining({ endpoint: `127.0.0.1:${a.port}`, sessions: 1, connections_open: 2 })]);
    const heap = await admin(gw, "/debug/heap?token=s3cret");
    expect(heap.status).toBe(200);
    expect(((await heap.json()) as { snapshot?: unknown }).snapshot).toBeDefined();
    c.close();
  });

  test("/debug endpoints are off without a token", async () => {
    const gw = gateway({ admin: { listen_addr: "127.0.0.1:0" } });
    expect((await admin(gw, "/debug/stats")).status).toBe(404);
    expect((await admin(gw, "/debug/heap")).status).toBe(404);
    expect(await (await admin(gw, "/ready")).json()).toEqual({ status: "not_ready", reason: "no routes loaded" });
  });
});

describe("access log", () => {
  test("one record per session end with addresses, counts, duration, status and reason", async () => {
    const a = await backend();
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] } });
    const c = await gw.connect();
    for (let i = 0; i < 3; i++) await roundTrip(c, "12345");
    c.close();
    await eventually(() => gw.gateway.sessions.size === 0, "session end");
    expect(gw.accessLog.lines).toHaveLength(0); // batched: not written per session
    await gw.gateway.stop(); // flushes the batch
    const [record] = gw.accessLog.lines;
    expect(record).toMatchObject({
      body: "access_log",
      severity_text: "INFO",
      severity_number: 9,
      "client.address": "127.0.0.1",
      "network.protocol.name": "tcp",
      "server.type": T,
      "world.id": 0,
      "server.address": `127.0.0.1:${a.port}`,
      messages_received: 3,
      messages_sent: 3,
      "network.io.receive": 3 * 13,
      "network.io.send": 3 * 13,
      status: "success",
      "error.message": "",
      reason: "client_closed",
    });
    expect(BigInt(record!["session.id"] as string)).toBeGreaterThan(0n);
    expect(typeof record!.duration_ms).toBe("number");
  });
});

describe("trace propagation", () => {
  test("each Trans carries its session's trace ID and span ID (one per session, not per message); logs carry the same trace ID", async () => {
    const frames: ReturnType<typeof decodeBackendFrame>[] = [];
    const pool = new BufferPool();
    const server = Bun.listen<FrameReader<string>>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        open(s: Socket<FrameReader<string>>) {
          s.data = new FrameReader(new BackendFrameLayout(600_000), {
            onFrame(b, off) {
              const opcode = b[off + 20];
              const f = decodeBackendFrame(b, off, opcode === OpCode.Trans);
              frames.push(f);
              if (opcode === OpCode.Trans) s.write(encodeBackendFrame({ opcode: OpCode.Trans, sessionId: f.sessionId, type: f.type, body: f.body }));
              return true;
            },
            onFramingError() {},
          }, pool);
        },
        data(s, chunk) {
          s.data.feed(chunk);
        },
      },
    });
    scope.defer(() => server.stop(true));
    const gw = gateway({ tracing: { enable_trace_propagation: true }, routing: { rules: [rule(T, [`127.0.0.1:${server.port}`])] } });
    const c = await gw.connect();
    for (let i = 0; i < 3; i++) expect(await roundTrip(c, `traced ${i}`)).toBe(`traced ${i}`);
    c.close();
    const other = await gw.connect();
    expect(await roundTrip(other, "another session")).toBe("another session");
    other.close();
    await gw.gateway.stop();
    const trans = frames.filter((f) => f.opcode === OpCode.Trans);
    expect(trans).toHaveLength(4);
    const first = trans.slice(0, 3);
    const traceIds = new Set(first.map((f) => Buffer.from(f.traceId!).toString("hex")));
    const spanIds = new Set(first.map((f) => Buffer.from(f.spanId!).toString("hex")));
    expect(traceIds.size).toBe(1);
    expect(spanIds.size).toBe(1);
    const [traceId] = traceIds;
    const [spanId] = spanIds;
    expect(traceId).not.toBe("0".repeat(32));
    expect(spanId).not.toBe("0".repeat(16));
    // Another session, other IDs.
    expect(Buffer.from(trans[3]!.traceId!).toString("hex")).not.toBe(traceId);
    expect(Buffer.from(trans[3]!.spanId!).toString("hex")).not.toBe(spanId);
    expect(gw.accessLog.lines[0]!.trace_id).toBe(traceId);
  });

  test("the demo backend in trace mode echoes through a tracing gateway", async () => {
    const be = await backend({ traceHeader: true });
    const gw = gateway({ tracing: { enable_trace_propagation: true }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const c = await gw.connect();
    expect(await roundTrip(c, "with trace header")).toBe("with trace header");
    c.close();
  });
});
