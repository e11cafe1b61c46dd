// What a WebSocket upgrade request decides beyond the handshake, on both ways in (the dedicated
// listener and a handshake sniffed on the TCP port): the Origin allow-list
// (security.allowed_origins), the client's address from X-Forwarded-For when the peer is a trusted
// proxy (security.trusted_proxies), and a W3C traceparent that the session's trace continues.
// Real gateway, real backends; the clients are websocket-driver's over raw sockets (not our code),
// the spans are decoded by a real OTLP/gRPC receiver.
import { afterEach, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { Logger } from "../../src/log/logger.ts";
import { otlpSettingsFromEnv } from "../../src/tracing/otlp-settings.ts";
import { OtlpConnectionTracer } from "../../src/tracing/otlp-tracer.ts";
import { CapturedLog, eventually, rule, text, TestScope, type TestGateway } from "../support/harness.ts";
import { OtlpReceiver } from "../support/otlp-receiver.ts";
import { traceRecordingBackend } from "../support/trace-recording-backend.ts";
import { WsPeer } from "../support/ws-peer.ts";

const GAME = 200;
const SERVER_ID = serverIdFor(GAME);
const scope = new TestScope();
afterEach(scope.release);

/** Both ways in: [label, port, path] (any path on the TCP port, as the reference accepts). */
function waysIn(gw: TestGateway): [string, number, string][] {
  return [
    ["dedicated listener", gw.gateway.wsPort, "/ws"],
    ["TCP port (sniffed)", gw.gateway.port, "/game"],
  ];
}

async function roundTrip(peer: WsPeer, body: string): Promise<void> {
  const before = peer.received().length;
  await peer.send(encodeClientFrame(1, SERVER_ID, text(body)));
  await eventually(() => peer.received().length > before, "the echo");
}

describe("security.allowed_origins", () => {
  test("an Origin outside the list is refused with 403 on both ways in, counted, logged and access-logged; listed ones and none get in", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      security: { allowed_origins: ["https://play.example.com", "https://*.example.org"] },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    for (const [way, port, path] of waysIn(gw)) {
      for (const origin of ["https://play.example.com", "HTTPS://Play.Example.com", "https://eu.games.example.org"]) {
        const ok = await WsPeer.connect(port, path, "127.0.0.1", { Origin: origin });
        await roundTrip(ok, `${way} from ${origin}`);
        ok.end();
      }
      // Not a browser (no Origin): the list does not apply.
      const native = await WsPeer.connect(port, path);
      await roundTrip(native, `${way}, no Origin`);
      native.end();
      for (const origin of ["https://evil.example", "https://example.org", "http://play.example.com", "https://play.example.com:8443"]) {
        await expect(WsPeer.connect(port, path, "127.0.0.1", { Origin: origin }), `${way}: ${origin}`).rejects.toThrow("status 403");
      }
    }
    const m = gw.gateway.metrics;
    expect(await m.value("connection_rejected_total", { reason: "origin_not_allowed" })).toBe(8);
    expect(await m.value("connection_refusals_total", { refusal: "origin_not_allowed" })).toBe(8);
    expect(gw.log.find("connection refused").some((l) => l.reason === "origin_not_allowed")).toBe(true);
    await eventually(() => gw.accessLog.lines.filter((l) => l.refusal === "origin_not_allowed").length === 8, "eight rejected access records");
    for (const r of gw.accessLog.lines.filter((l) => l.refusal === "origin_not_allowed")) {
      expect(r).toMatchObject({ status: "rejected", "client.address": "127.0.0.1", "network.protocol.name": "ws" });
    }
    // A refusal is counted once, as a refusal, on both ways in: not also as a client close.
    await eventually(() => gw.gateway.clientConnections === 0, "every client gone");
    expect(await m.value("client_closes_total", { reason: "rejected" })).toBe(0);
  });

  test("an Origin that is not a serialized origin is refused by a wildcard entry, on both ways in; \"null\" can be listed", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      security: { allowed_origins: ["https://*.example.com", "null"] },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    for (const [way, port, path] of waysIn(gw)) {
      for (const origin of ["https://evil.net/.example.com", "https://evil.net?.example.com", "https://evil.net#.example.com", "https://user@evil.net/x.example.com", "https:// .example.com", "https://a..example.com"]) {
        await expect(WsPeer.connect(port, path, "127.0.0.1", { Origin: origin }), `${way}: ${origin}`).rejects.toThrow("status 403");
      }
      for (const origin of ["https://eu.example.com", "null"]) {
        const ok = await WsPeer.connect(port, path, "127.0.0.1", { Origin: origin });
        await roundTrip(ok, `${way} from ${origin}`);
        ok.end();
      }
    }
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "origin_not_allowed" })).toBe(12);
  });

  test("unset, every Origin gets in, as in the reference", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({ server: { ws_listen_addr: "127.0.0.1:0" }, routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] } });
    for (const [way, port, path] of waysIn(gw)) {
      const peer = await WsPeer.connect(port, path, "127.0.0.1", { Origin: "https://anywhere.example" });
      await roundTrip(peer, way);
      peer.end();
    }
  });
});

describe("X-Forwarded-For from security.trusted_proxies", () => {
  /** Connect's client_ip for each session the demo backend saw, in order. */
  const connectIps = (events: readonly { opcode: number; json?: unknown }[]) =>
    events.filter((e) => e.opcode === OpCode.Connect).map((e) => (e.json as { client_ip: string }).client_ip);

  test("from a trusted peer the right-most untrusted address is the client: per-IP limits, Connect and the access log see it", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      // The loopback peer is the proxy here; 10/8 are proxies in front of it.
      security: { trusted_proxies: ["127.0.0.1/32", "10.0.0.0/8"], max_connections_per_ip: 1 },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    for (const [way, port, path] of waysIn(gw)) {
      // A spoofed left-most entry, the client, then a trusted hop: the client is 203.0.113.7.
      const a = await WsPeer.connect(port, path, "127.0.0.1", { "X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.1.2.3" });
      await roundTrip(a, `${way} a`);
      // Another player behind the same proxy: the proxy's own address is not what the limit counts.
      const b = await WsPeer.connect(port, path, "127.0.0.1", { "X-Forwarded-For": "203.0.113.8" });
      await roundTrip(b, `${way} b`);
      // The first player again, while still connected: over max_connections_per_ip 1.
      await expect(WsPeer.connect(port, path, "127.0.0.1", { "X-Forwarded-For": "203.0.113.7" }), way).rejects.toThrow("status 429");
      a.end();
      b.end();
      await eventually(() => gw.gateway.clientConnections === 0, "both players gone");
    }
    expect(connectIps(backend.events)).toEqual(["203.0.113.7", "203.0.113.8", "203.0.113.7", "203.0.113.8"]);
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(2);
    await eventually(() => gw.accessLog.lines.length >= 6, "every connection's access record");
    const addresses = gw.accessLog.lines.map((l) => l["client.address"]).sort();
    expect(addresses).toEqual(["203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.8", "203.0.113.8"]);
    // A game client from the trusted peer (no handshake) is admitted by the peer's address, as before.
    const tcp = await gw.connect();
    tcp.send(1, SERVER_ID, text("plain TCP behind the proxy"));
    expect((await tcp.next()).body).toEqual(text("plain TCP behind the proxy"));
    tcp.close();
  });

  test("a malformed header from a trusted peer: the peer's address is used, counted and logged once", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      security: { trusted_proxies: ["127.0.0.1/32"] },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    for (const [way, port, path] of waysIn(gw)) {
      const peer = await WsPeer.connect(port, path, "127.0.0.1", { "X-Forwarded-For": "203.0.113.7, unknown" });
      await roundTrip(peer, way);
      peer.end();
    }
    expect(connectIps(backend.events)).toEqual(["127.0.0.1", "127.0.0.1"]);
    expect(await gw.gateway.metrics.value("protocol_violations_total", { side: "client", reason: "forwarded_for_malformed" })).toBe(2);
    // Throttled: one line for the two.
    expect(gw.log.lines.filter((l) => String(l.body).startsWith("X-Forwarded-For")).length).toBe(1);
  });

  test("from a peer not in the list the header is ignored: anyone can write it", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      security: { trusted_proxies: ["10.0.0.0/8"] },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    for (const [way, port, path] of waysIn(gw)) {
      const peer = await WsPeer.connect(port, path, "127.0.0.1", { "X-Forwarded-For": "203.0.113.7" });
      await roundTrip(peer, way);
      peer.end();
    }
    expect(connectIps(backend.events)).toEqual(["127.0.0.1", "127.0.0.1"]);
  });
});

describe("traceparent on the upgrade", () => {
  const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const PARENT = "00f067aa0ba902b7";

  test("a valid one starts the session's trace: the backend's gate header and the exported root span continue it; an invalid one is ignored", async () => {
    const receiver = await OtlpReceiver.start();
    scope.defer(() => receiver.stop());
    const backend = traceRecordingBackend();
    scope.defer(() => backend.stop());
    const settings = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: "20" }, "test")!;
    const tracer = new OtlpConnectionTracer(settings, new Logger("warn", new CapturedLog()));
    const gw = scope.gateway(
      {
        server: { ws_listen_addr: "127.0.0.1:0" },
        tracing: { enable_trace_propagation: true },
        routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
      },
      { tracer },
    );
    for (const [way, port, path] of waysIn(gw)) {
      const traced = await WsPeer.connect(port, path, "127.0.0.1", { traceparent: `00-${TRACE}-${PARENT}-01` });
      await roundTrip(traced, way);
      traced.end();
      // Malformed (a short trace ID), and all-zero IDs (invalid by the spec): a new trace each.
      for (const bad of [`00-${TRACE.slice(2)}-${PARENT}-01`, `00-${"0".repeat(32)}-${PARENT}-01`]) {
        const peer = await WsPeer.connect(port, path, "127.0.0.1", { traceparent: bad });
        await roundTrip(peer, `${way} ${bad}`);
        peer.end();
      }
    }
    await eventually(() => gw.gateway.clientConnections === 0, "every client gone");
    const traceIds = [...backend.sessions.values()].map((s) => [...s.traceIds][0]!);
    expect(traceIds).toHaveLength(6);
    expect(traceIds.filter((t) => t === TRACE)).toHaveLength(2);
    expect(traceIds.every((t) => !/^0+$/.test(t))).toBe(true);
    await eventually(() => receiver.spans.filter((s) => s.name === "gateway.handle_connection").length === 6, "six root spans");
    const roots = receiver.spans.filter((s) => s.name === "gateway.handle_connection");
    const continued = roots.filter((s) => s.traceId === TRACE);
    expect(continued).toHaveLength(2);
    for (const root of continued) expect(root.parentSpanId).toBe(PARENT);
    for (const root of roots.filter((s) => s.traceId !== TRACE)) expect(root.parentSpanId).toBe("");
  }, 30_000);
});
