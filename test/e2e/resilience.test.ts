// Breakers, health checks and admission limits, end to end with real sockets.
import { afterEach, describe, expect, test } from "bun:test";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { proxyV1, proxyV2 } from "../support/proxy-header.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { eventually, rule, str, text, TestScope, type TestGateway } from "../support/harness.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);
const gateway = scope.gateway;
const backend = (port = 0) => scope.backend({ port });

async function echoes(gw: TestGateway, body: string): Promise<boolean> {
  const c = await gw.connect();
  c.send(1, serverIdFor(T), text(body));
  const ok = await c.next(3000).then((f) => str(f.body) === body, () => false);
  c.close();
  return ok;
}

const breakerValue = (gw: TestGateway, port: number) =>
  gw.gateway.metrics.value("circuit_breaker_state", { backend: `127.0.0.1:${port}` });

describe("circuit breaker", () => {
  test("a dead endpoint's breaker opens, new sessions go to the live one, and it closes after recovery", async () => {
    const a = await backend();
    const b = await backend();
    const aPort = a.port;
    const gw = gateway({
      connection_pool: { retry_delay: "10ms" },
      circuit_breaker: { failure_threshold: 3, window: "10s", open_timeout: "300ms", half_open_max_requests: 1 },
      routing: { rules: [rule(T, [`127.0.0.1:${aPort}`, `127.0.0.1:${b.port}`])] },
    });
    await eventually(async () => (await echoes(gw, "warm")) && a.stats().connections === 2, "both endpoints up");
    await a.stop();
    await eventually(async () => (await breakerValue(gw, aPort)) === 1, "a's breaker to open");
    expect(gw.log.find("circuit breaker open")).not.toHaveLength(0);

    // Round robin would alternate; with a's breaker open every new session lands on b.
    const bBefore = b.stats().connects;
    for (let i = 0; i < 6; i++) expect(await echoes(gw, `while a is down ${i}`)).toBe(true);
    expect(b.stats().connects - bBefore).toBe(6);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_unavailable" })).toBe(0);

    const revived = await backend(aPort);
    await eventually(async () => (await breakerValue(gw, aPort)) === 0, "a's breaker to close after recovery");
    await eventually(async () => {
      const before = revived.stats().connects;
      await echoes(gw, "x");
      await echoes(gw, "y");
      return revived.stats().connects > before;
    }, "a to take new sessions again");
  });

  test("with every endpoint open, a new client is closed cleanly and counted", async () => {
    const a = await backend();
    const port = a.port;
    const gw = gateway({
      connection_pool: { retry_delay: "10ms" },
      circuit_breaker: { failure_threshold: 2, open_timeout: "1m" },
      routing: { rules: [rule(T, [`127.0.0.1:${port}`])] },
    });
    expect(await echoes(gw, "up")).toBe(true);
    await a.stop();
    await eventually(async () => (await breakerValue(gw, port)) === 1, "breaker to open");
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("anyone?"));
    await c.closed;
    expect(await gw.gateway.metrics.value("routing_errors_total", { error_type: "circuit_breaker_open" })).toBe(1);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_unavailable" })).toBe(1);
  });
});

describe("active health checks", () => {
  test("idle connections are pinged and the round trip is measured", async () => {
    const a = await backend();
    const gw = gateway({
      backend: { ping_interval: "100ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    await eventually(async () => (await gw.gateway.metrics.value("backend_ping_rtt_seconds")) >= 2, "Pongs to be timed");
    expect(a.stats().framesByOpcode[7]).toBeGreaterThanOrEqual(2);
  });

  test("a backend that never answers Ping is dropped and re-dialled", async () => {
    let accepted = 0;
    const mute = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: () => void accepted++, data() {} } });
    scope.defer(() => mute.stop(true));
    const gw = gateway({
      backend: { ping_interval: "100ms", ping_timeout: "200ms", connections_per_endpoint: 1 },
      connection_pool: { retry_delay: "10ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${mute.port}`])] },
    });
    await eventually(async () => (await gw.gateway.metrics.value("backend_timeouts_total")) >= 1, "the unanswered Ping to time out");
    expect(await gw.gateway.metrics.value("backend_connection_closes_total", { cause: "ping_timeout" })).toBeGreaterThanOrEqual(1);
    await eventually(() => accepted >= 2, "a replacement connection");
  });
});

describe("admission limits", () => {
  test("per-IP concurrent cap", async () => {
    const a = await backend();
    const gw = gateway({ security: { max_connections_per_ip: 2 }, routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] } });
    const c1 = await gw.connect();
    const c2 = await gw.connect();
    const c3 = await gw.connect();
    await c3.closed;
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);
    c1.close();
    await eventually(() => gw.gateway.clientConnections === 1, "c1 to be released");
    const c4 = await gw.connect();
    c4.send(1, serverIdFor(T), text("room for me"));
    expect(str((await c4.next()).body)).toBe("room for me");
    c2.close();
    c4.close();
  });

  test("per-IP new-connection rate", async () => {
    const gw = gateway({ security: { connection_rate_limit: 3 } });
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => gw.connect()));
    await eventually(async () => (await gw.gateway.metrics.value("connection_refusals_total", { refusal: "rate_limited" })) === 2, "two refusals");
    expect(await gw.gateway.metrics.value("rate_limit_rejected_total")).toBe(2);
    await Promise.all(clients.slice(3).map((c) => c.closed));
    for (const c of clients) c.close();
  });

  test("per-session message rate: drop keeps the client, close closes it", async () => {
    const a = await backend();
    const dropper = gateway({
      security: { message_rate_limit: 5, message_rate_burst: 5, message_rate_action: "drop" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const c = await dropper.connect();
    for (let i = 0; i < 20; i++) c.send(1, serverIdFor(T), text(`m${i}`));
    const got = await c.frames(5, 5000);
    expect(got.map((f) => str(f.body))).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    await eventually(async () => (await dropper.gateway.metrics.value("frames_dropped_total", { reason: "rate_limited" })) === 15, "15 drops");
    expect(c.isClosed).toBe(false);
    c.close();

    const closer = gateway({
      security: { message_rate_limit: 5, message_rate_burst: 5, message_rate_action: "close" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const flooder = await closer.connect();
    for (let i = 0; i < 20; i++) flooder.send(1, serverIdFor(T), text(`m${i}`));
    await flooder.closed;
    expect(await closer.gateway.metrics.value("client_closes_total", { reason: "rate_limited" })).toBe(1);
  });
});

describe("PROXY protocol", () => {
  async function proxied(gw: TestGateway, header: Uint8Array | null, body: string): Promise<GameClient> {
    const c = await gw.connect();
    const frame = new Uint8Array([...(header ?? []), ...encodeClientFrame(1, serverIdFor(T), text(body))]);
    c.sendRaw(frame);
    return c;
  }

  test("a trusted balancer's header gives the player's address to limits, logs and Connect", async () => {
    const a = await backend();
    const gw = gateway({
      security: { proxy_protocol: "required", trusted_proxies: ["127.0.0.0/8"], max_connections_per_ip: 1 },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const v1 = await proxied(gw, proxyV1("203.0.113.7", "10.0.0.1", 50000, 8080), "via v1");
    expect(str((await v1.next()).body)).toBe("via v1");
    const v2 = await proxied(gw, proxyV2("198.51.100.9", "10.0.0.1", 50001, 8080), "via v2");
    expect(str((await v2.next()).body)).toBe("via v2");
    const ips = a.events.filter((e) => e.opcode === OpCode.Connect).map((e) => (e.json as { client_ip: string }).client_ip);
    expect(ips).toEqual(["203.0.113.7", "198.51.100.9"]);
    // Both share the balancer's socket address, yet max_connections_per_ip: 1 admitted both:
    // the limit counts players. A second connection for the same player is refused.
    const again = await proxied(gw, proxyV1("203.0.113.7", "10.0.0.1", 50002, 8080), "same player");
    await again.closed;
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);
    v1.close();
    v2.close();
    await eventually(() => gw.gateway.sessions.size === 0, "sessions to end");
    await gw.gateway.stop();
    const sessions = gw.accessLog.lines.filter((l) => l.status !== "rejected");
    expect(sessions.map((l) => l["client.address"]).sort()).toEqual(["198.51.100.9", "203.0.113.7"]);
    // The refused second connection leaves a record too, under the player's address.
    const refused = gw.accessLog.lines.filter((l) => l.status === "rejected");
    expect(refused).toMatchObject([{ "client.address": "203.0.113.7", refusal: "per_ip_limit", "session.id": "" }]);
  });

  test("required: a trusted peer without a header is refused; untrusted peers may not send one", async () => {
    const a = await backend();
    const trustedOnly = gateway({
      security: { proxy_protocol: "required", trusted_proxies: ["127.0.0.1"] },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const bare = await proxied(trustedOnly, null, "no header");
    await bare.closed;
    expect(await trustedOnly.gateway.metrics.value("connection_rejected_total", { reason: "proxy_missing" })).toBe(1);

    const untrusted = gateway({
      security: { proxy_protocol: "optional", trusted_proxies: ["10.0.0.0/8"] },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const spoofer = await proxied(untrusted, proxyV1("1.1.1.1", "10.0.0.1", 1, 2), "spoofed");
    await spoofer.closed;
    expect(await untrusted.gateway.metrics.value("connection_rejected_total", { reason: "proxy_untrusted" })).toBe(1);
    const plain = await proxied(untrusted, null, "plain client");
    expect(str((await plain.next()).body)).toBe("plain client");
    const garbage = await proxied(untrusted, new TextEncoder().encode("PROXY nonsense\r\n"), "x");
    await garbage.closed;
    expect(await untrusted.gateway.metrics.value("connection_rejected_total", { reason: "proxy_invalid" })).toBe(1);
    plain.close();
  });
});
