// Span export (issue 12, item 6): the built binary exports the reference's per-connection spans
// over OTLP/gRPC to a real gRPC receiver, with the trace and span IDs the backend read in the
// 33-byte gate header; an exporter that is down never stops traffic and never holds more than
// its queue bound.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { Logger } from "../../src/log/logger.ts";
import { otlpSettingsFromEnv } from "../../src/tracing/otlp-settings.ts";
import { OtlpConnectionTracer } from "../../src/tracing/otlp-tracer.ts";
import { CapturedLog, ChildOutput, eventually, rule, str, text, TestScope } from "../support/harness.ts";
import { OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.ts";
import { traceRecordingBackend } from "../support/trace-recording-backend.ts";
import { parseExposition, samplesOf } from "../support/prom-text.ts";
import { GrpcGameServer } from "../support/grpc-game-server.ts";
import { loadGrpcTransport } from "../../src/backend/grpc/load-grpc.ts";

const T = 10;
const root = join(import.meta.dir, "../..");
const binary = join(root, "dist/game-gateway");
const SPAN_NAMES = ["gateway.handle_connection", "gateway.handle_tcp_connection", "gateway.route_to_backend", "gateway.forward_connection"];

const scope = new TestScope();
afterEach(scope.release);

async function roundTrip(c: GameClient, body: string): Promise<string> {
  c.send(1, serverIdFor(T), text(body));
  return str((await c.next()).body);
}

describe("through the built binary, to a local OTLP/gRPC receiver on Node.js", () => {
  beforeAll(() => {
    const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
  }, 120_000);

  // Hosted by Node.js: the exporter (grpc-js over Bun's HTTP/2 client) meets an HTTP/2 server Bun
  // did not write, as with a real collector.
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await OtlpReceiver.startOnNode();
  });
  afterAll(() => receiver.stop());

  test("each connection's four spans carry the trace ID and span ID its backend saw, with the pod's resource attributes", async () => {
    const backend = traceRecordingBackend();
    scope.defer(() => backend.stop());
    const dir = mkdtempSync(join(tmpdir(), "gw-otel-"));
    const cfg = join(dir, "gw.yaml");
    writeFileSync(
      cfg,
      [
        "server:",
        '  listen_addr: "127.0.0.1:0"',
        "  health_check_port: -1",
        "graceful_shutdown_timeout: 1s",
        "security: { connection_rate_limit: 1000, max_connections_per_ip: 1000 }",
        "tracing: { enable_trace_propagation: true }",
        "routing:",
        "  rules:",
        `    - { server_type: ${T}, endpoints: ["127.0.0.1:${backend.port}"] }`,
      ].join("\n"),
    );
    const proc = Bun.spawn([binary, "--config", cfg], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
      env: {
        PATH: process.env.PATH ?? "",
        // host:port without a scheme, as the reference's deployments set it.
        OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${receiver.port}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        POD_NAME: "gateway-7d9f-abcde",
        POD_NAMESPACE: "game-prod",
        NODE_NAME: "node-17",
      },
    });
    const out = new ChildOutput(proc);
    scope.defer(async () => {
      proc.kill("SIGKILL");
      await proc.exited;
    });
    const [, port] = await out.line(/"listen":"127\.0\.0\.1:(\d+)"/);

    const CLIENTS = 3;
    const MESSAGES = 4;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => GameClient.connect("127.0.0.1", Number(port))));
    for (const [i, c] of clients.entries()) for (let m = 0; m < MESSAGES; m++) expect(await roundTrip(c, `c${i} m${m}`)).toBe(`c${i} m${m}`);
    for (const c of clients) c.close();

    // Every connection's spans are exported once it ends: four per connection, none per message.
    await eventually(() => receiver.spans.length >= CLIENTS * SPAN_NAMES.length, "every connection's spans at the receiver", 15_000);
    expect(receiver.spans.length).toBe(CLIENTS * SPAN_NAMES.length);
    expect(backend.sessions.size).toBe(CLIENTS);
    for (const [session, seen] of backend.sessions) {
      expect(seen.frames).toBe(MESSAGES);
      // One trace ID and one span ID per session, on every frame.
      expect(seen.traceIds.size).toBe(1);
      expect(seen.spanIds.size).toBe(1);
      const [traceId] = seen.traceIds;
      const [spanId] = seen.spanIds;
      const mine = receiver.spans.filter((s) => s.traceId === traceId);
      expect(mine.map((s) => s.name).sort()).toEqual([...SPAN_NAMES].sort());
      const byName = new Map<string, ReceivedSpan>(mine.map((s) => [s.name, s]));
      const connection = byName.get("gateway.handle_connection")!;
      const tcp = byName.get("gateway.handle_tcp_connection")!;
      const route = byName.get("gateway.route_to_backend")!;
      const forward = byName.get("gateway.forward_connection")!;
      expect(forward.spanId).toBe(spanId!);
      expect(connection.parentSpanId).toBe("");
      expect(tcp.parentSpanId).toBe(connection.spanId);
      expect(route.parentSpanId).toBe(tcp.spanId);
      expect(forward.parentSpanId).toBe(tcp.spanId);
      expect(connection.attributes["session.id"]).toBe(session);
      expect(forward.attributes["server.address"]).toBe(`127.0.0.1:${backend.port}`);
      expect(connection.resource).toMatchObject({
        "service.name": "game-gateway",
        "k8s.pod.name": "gateway-7d9f-abcde",
        "k8s.namespace.name": "game-prod",
        "k8s.node.name": "node-17",
      });
    }
    // The access log names the same traces as the export (one source of IDs); it is written out by the time SIGTERM's drain exits.
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await out.ended;
    const access = out.logRecords("access_log").map((r) => `${r.trace_id}/${r.span_id}`);
    expect(new Set(access)).toEqual(new Set([...backend.sessions.values()].map((s) => `${[...s.traceIds][0]}/${[...s.spanIds][0]}`)));
  }, 60_000);
});

describe("a connection whose backend cannot be reached", () => {
  test("exports its connection and routing spans with status ERROR and the close reason, and no forward span", async () => {
    const receiver = await OtlpReceiver.start();
    scope.defer(() => receiver.stop());
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadPort = closed.port;
    closed.stop(true);
    const settings = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: "20" }, "test")!;
    const tracer = new OtlpConnectionTracer(settings, new Logger("warn", new CapturedLog()));
    const gw = scope.gateway({ routing: { rules: [rule(T, [`127.0.0.1:${deadPort}`])] } }, { tracer });
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("nobody home"));
    await c.closed;
    await eventually(() => receiver.spans.length >= 3, "the refused connection's spans");
    const names = receiver.spans.map((s) => s.name).sort();
    expect(names).toEqual(["gateway.handle_connection", "gateway.handle_tcp_connection", "gateway.route_to_backend"]);
    const byName = new Map(receiver.spans.map((s) => [s.name, s]));
    expect(byName.get("gateway.handle_connection")!.attributes["gateway.close_reason"]).toBe("backend_unavailable");
    expect(byName.get("gateway.handle_connection")!.statusCode).toBe(2);
    expect(byName.get("gateway.route_to_backend")!.statusCode).toBe(2);
    // Without propagation the session still has its trace ID: the access log names the exported trace.
    await gw.gateway.stop();
    expect(gw.accessLog.lines.map((l) => l.trace_id)).toEqual([byName.get("gateway.handle_connection")!.traceId]);
  }, 30_000);
});

describe("a connection that never becomes a session", () => {
  test("exports its two connection spans: no route is an ERROR, leaving before a first frame is not", async () => {
    const receiver = await OtlpReceiver.start();
    scope.defer(() => receiver.stop());
    const backend = traceRecordingBackend();
    scope.defer(() => backend.stop());
    const settings = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: "20" }, "test")!;
    const tracer = new OtlpConnectionTracer(settings, new Logger("warn", new CapturedLog()));
    const gw = scope.gateway({ routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } }, { tracer });
    const lost = await gw.connect();
    lost.send(1, serverIdFor(T + 1), text("no such server type"));
    await lost.closed;
    const shy = await gw.connect();
    shy.close();
    await eventually(() => receiver.spans.length >= 4, "both connections' spans");
    await eventually(() => gw.gateway.clientConnections === 0, "both connections to close");
    expect(receiver.spans).toHaveLength(4);
    const roots = receiver.spans.filter((s) => s.name === "gateway.handle_connection");
    expect(roots.map((r) => [r.attributes["gateway.close_reason"], r.statusCode]).sort()).toEqual([
      ["client_closed", 0],
      ["no_route", 2],
    ]);
    for (const root of roots) {
      const tcp = receiver.spans.find((s) => s.name === "gateway.handle_tcp_connection" && s.traceId === root.traceId)!;
      expect(tcp.parentSpanId).toBe(root.spanId);
    }
  }, 30_000);
});

describe("a session on a gRPC backend", () => {
  test("its forward span is gateway.grpc_forward, with the span ID the backend's packets carried", async () => {
    const receiver = await OtlpReceiver.start();
    scope.defer(() => receiver.stop());
    const game = await GrpcGameServer.start("node");
    scope.defer(() => game.kill());
    const settings = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: "20" }, "test")!;
    const tracer = new OtlpConnectionTracer(settings, new Logger("warn", new CapturedLog()));
    const gw = scope.gateway(
      { server: { use_grpc: true }, tracing: { enable_trace_propagation: true }, routing: { rules: [rule(T, [game.address])] } },
      { tracer, grpc: await loadGrpcTransport() },
    );
    const c = await gw.connect();
    expect(await roundTrip(c, "over grpc")).toBe("over grpc");
    c.close();
    await eventually(() => receiver.spans.length >= SPAN_NAMES.length, "the session's spans");
    const sent = game.packets().find((p) => p.payload === "over grpc")!;
    const mine = receiver.spans.filter((x) => x.traceId === sent.metadata.trace_id);
    expect(mine.map((x) => x.name).sort()).toEqual(["gateway.grpc_forward", "gateway.handle_connection", "gateway.handle_tcp_connection", "gateway.route_to_backend"]);
    const forward = mine.find((x) => x.name === "gateway.grpc_forward")!;
    expect(forward.spanId).toBe(sent.metadata.span_id!);
    expect(forward.attributes["server.address"]).toBe(game.address);
  }, 30_000);
});

describe("an exporter that is down", () => {
  const QUEUE = 16;

  /** A tracer with a small queue, exporting to `endpoint`, and the gateway it watches. */
  function tracedGateway(endpoint: string, backendPort: number, exportTimeoutMs: number) {
    const settings = otlpSettingsFromEnv(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_BSP_MAX_QUEUE_SIZE: String(QUEUE),
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4",
        OTEL_BSP_SCHEDULE_DELAY: "20",
        OTEL_BSP_EXPORT_TIMEOUT: String(exportTimeoutMs),
      },
      "test",
    )!;
    const log = new CapturedLog();
    const tracer = new OtlpConnectionTracer(settings, new Logger("warn", log));
    const gw = scope.gateway({ tracing: { enable_trace_propagation: true }, routing: { rules: [rule(T, [`127.0.0.1:${backendPort}`])] } }, { tracer });
    return { tracer, gw, log };
  }

  /** 60 connections one after another, each a round trip; the export queue is read after each. */
  async function trafficWhileDown(endpoint: string, exportTimeoutMs: number) {
    const backend = traceRecordingBackend();
    scope.defer(() => backend.stop());
    const { tracer, gw, log } = tracedGateway(endpoint, backend.port, exportTimeoutMs);
    let maxPending = 0;
    for (let i = 0; i < 60; i++) {
      const c = await gw.connect();
      expect(await roundTrip(c, `while down ${i}`)).toBe(`while down ${i}`);
      c.close();
      await eventually(() => gw.gateway.sessions.size === 0, "the session to end");
      maxPending = Math.max(maxPending, tracer.stats().pending);
    }
    // The operator sees the same counts on the admin API and in /metrics.
    expect(gw.gateway.status().span_export).toEqual(tracer.stats());
    const metrics = parseExposition(await gw.gateway.metrics.text());
    const stats = tracer.stats();
    for (const outcome of ["exported", "failed", "dropped"] as const) {
      expect(samplesOf(metrics, "game_gateway_trace_spans_total").find((s) => s.labels.outcome === outcome)?.value).toBe(stats[outcome]);
    }
    return { stats: tracer.stats(), maxPending, log, backend };
  }

  test("refusing connections: every round trip completes, at most the queue bound is held, the rest is dropped and counted", async () => {
    // A port that was just free: nothing listens there.
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const { stats, maxPending, backend } = await trafficWhileDown(`127.0.0.1:${port}`, 300);
    expect(backend.sessions.size).toBe(60);
    expect(maxPending).toBeLessThanOrEqual(QUEUE);
    expect(stats.exported).toBe(0);
    // 240 spans ended: each is held, failed (refused fast, so most are) or dropped at the bound.
    expect(stats.dropped + stats.failed + stats.pending).toBe(60 * SPAN_NAMES.length);
    expect(stats.failed).toBeGreaterThan(0);
  }, 60_000);

  test("blackholed (accepts, never answers): the same bound", async () => {
    const held: unknown[] = [];
    const hole = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open(s) { held.push(s); }, data() {} } });
    scope.defer(() => hole.stop(true));
    const { stats, maxPending, backend } = await trafficWhileDown(`127.0.0.1:${hole.port}`, 10_000);
    expect(backend.sessions.size).toBe(60);
    expect(maxPending).toBeLessThanOrEqual(QUEUE);
    expect(stats.exported).toBe(0);
    // Nothing answers, so the first exports hang for their 10 s timeout, longer than the traffic
    // lasts: the queue fills to its bound and every later span is dropped, whatever the speed.
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.dropped + stats.failed + stats.pending).toBe(60 * SPAN_NAMES.length);
  }, 60_000);
});
