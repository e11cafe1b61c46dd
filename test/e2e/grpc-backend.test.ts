// gRPC backends (server.use_grpc, a rule's transport: grpc): real TCP game clients through the
// gateway to a real game server written against the reference's GameGatewayService.StreamPackets,
// run as its own process under Node (an HTTP/2 implementation independent of Bun's) and under Bun.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { loadGrpcTransport, type GrpcTransport } from "../../src/backend/grpc/load-grpc.ts";
import type { GameClient } from "../../src/client/game-client.ts";
import { serverIdFor } from "../../src/client/game-client.ts";
import { ACCESS_LOG_BODY, type Overrides, TestScope, eventually, rule, str, testConfig } from "../support/harness.ts";
import { GrpcGameServer, type Runtime } from "../support/grpc-game-server.ts";

const ECHO = 1;
const KICK = 2;
const MULTICAST = 3;
const STALL = 4;
const END_STREAM = 6;
const HUGE = 7;
const TYPE = 10;
const SERVER_ID = serverIdFor(TYPE);

let grpc: GrpcTransport;
beforeAll(async () => {
  grpc = await loadGrpcTransport();
});

const scope = new TestScope();
afterEach(scope.release);

async function server(runtime: Runtime, port = 0, flags: string[] = []): Promise<GrpcGameServer> {
  const s = await GrpcGameServer.start(runtime, port, flags);
  scope.defer(() => s.kill());
  return s;
}

function gateway(backend: string, overrides: Overrides = {}) {
  return scope.gateway(
    {
      server: { use_grpc: true },
      grpc: { reconnect_interval: "200ms", connection_timeout: "2s" },
      routing: { rules: [rule(TYPE, [backend])] },
      ...overrides,
    },
    { grpc },
  );
}

/** The session ID the server knows the client by: the client says who it is, and the server reports the ID it came with. */
async function sessionIdOf(s: GrpcGameServer, client: GameClient, name: string): Promise<string> {
  client.send(ECHO, SERVER_ID, `whoami:${name}`);
  await client.next();
  const p = await eventually(() => s.packets().find((x) => x.payload === `whoami:${name}`), `${name}'s message at the server`);
  return p.session_id;
}

for (const runtime of ["node", "bun"] as const) {
  describe(`gRPC backend (game server under ${runtime})`, () => {
    test("one StreamPackets stream with gateway-name; connect, messages and disconnect carry the reference's metadata", async () => {
      const s = await server(runtime);
      const gw = gateway(s.address);
      const client = await gw.connect();
      client.send(ECHO, SERVER_ID, "hello");
      const reply = await client.next();
      expect([reply.messageId, str(reply.body)]).toEqual([ECHO, "hello"]);
      const id = await sessionIdOf(s, client, "a");
      client.close();
      await eventually(() => s.of(id).some((p) => p.metadata.packet_type === "disconnect"), "the disconnect packet");

      expect(s.events.filter((e) => e.event === "stream")).toEqual([{ event: "stream", gateway_name: "test-gw" }]);
      const packets = s.of(id);
      const connect = packets[0]!;
      expect(connect.metadata).toEqual({
        packet_type: "connect",
        client_ip: "127.0.0.1", // as TCP backends get it in Connect
        protocol: "tcp",
        connect_time: expect.stringMatching(/^\d{13}$/),
      });
      expect(Math.abs(Number(connect.metadata.connect_time) - Date.now())).toBeLessThan(60_000);
      expect(packets.slice(1, -1).map((p) => [p.msg_id, p.payload, p.metadata])).toEqual([
        [ECHO, "hello", {}],
        [ECHO, "whoami:a", {}],
      ]);
      expect(packets.at(-1)!.metadata).toEqual({ packet_type: "disconnect", reason: "client_closed", disconnect_time: expect.stringMatching(/^\d{13}$/) });
    });

    test("a kick (server_disconnect) closes that session only, with the backend's reason logged", async () => {
      const s = await server(runtime);
      const gw = gateway(s.address);
      const kicked = await gw.connect();
      const bystander = await gw.connect();
      const id = await sessionIdOf(s, kicked, "kicked");
      kicked.send(KICK, SERVER_ID, "banned for cheating");
      await kicked.closed;
      const line = await eventually(() => gw.log.find("backend kicked a session")[0], "the kick's log line");
      expect(line).toMatchObject({ kick_reason: "banned for cheating", backend: s.address });
      expect(String(line.session)).toBe(id);
      bystander.send(ECHO, SERVER_ID, "still here");
      expect(str((await bystander.next()).body)).toBe("still here");
    });

    test("a server that ends the stream (status OK, in trailers): its sessions close and the stream is opened again", async () => {
      const s = await server(runtime);
      const gw = gateway(s.address);
      const client = await gw.connect();
      client.send(END_STREAM, SERVER_ID, "");
      await client.closed;
      // 'end', not 'error': the client saw the trailers with status OK (an HTTP/2 server that
      // omitted them, as Bun's once did, shows as an error status here).
      const lost = await eventually(() => gw.log.find("gRPC stream to backend lost; re-opening")[0], "the stream loss's log line");
      expect(lost.detail).toBe("the backend ended the stream");
      await eventually(() => s.events.filter((e) => e.event === "stream").length === 2, "the stream to be opened again");
      const again = await gw.connect();
      again.send(ECHO, SERVER_ID, "after");
      expect(str((await again.next()).body)).toBe("after");
    });

    test("target_session_ids reach each listed session (multicast)", async () => {
      const s = await server(runtime);
      const gw = gateway(s.address);
      const [a, b, c] = await Promise.all([gw.connect(), gw.connect(), gw.connect()]);
      const ids = [await sessionIdOf(s, a!, "a"), await sessionIdOf(s, b!, "b")];
      await sessionIdOf(s, c!, "c");
      c!.send(MULTICAST, SERVER_ID, JSON.stringify({ targets: ids, text: "raid starts" }));
      for (const to of [a!, b!]) {
        const f = await to.next();
        expect([f.messageId, str(f.body)]).toEqual([MULTICAST, "raid starts"]);
      }
      c!.send(ECHO, SERVER_ID, "c's own");
      expect(str((await c!.next()).body)).toBe("c's own"); // nothing of the multicast came to c first
    });

    test("a session listed many times in target_session_ids gets the frame once; a list past 65535 IDs is refused whole", async () => {
      const s = await server(runtime);
      const gw = gateway(s.address);
      const [a, b] = await Promise.all([gw.connect(), gw.connect()]);
      const ids = [await sessionIdOf(s, a!, "a"), await sessionIdOf(s, b!, "b")];
      b!.send(MULTICAST, SERVER_ID, JSON.stringify({ targets: ids, text: "twice listed", repeat: 1_000 }));
      for (const to of [a!, b!]) {
        expect(str((await to.next()).body)).toBe("twice listed");
        to.send(ECHO, SERVER_ID, "next");
        expect(str((await to.next()).body)).toBe("next"); // not a second copy of the multicast
      }
      // 2 x 32,768 = 65,536 IDs: one more than a TCP Multicast's u16 count can carry.
      b!.send(MULTICAST, SERVER_ID, JSON.stringify({ targets: ids, text: "too many", repeat: 32_768 }));
      await eventually(async () => (await gw.gateway.metrics.value("protocol_violations_total", { side: "backend", reason: "multicast_malformed" })) === 1, "the oversized list to be counted");
      a!.send(ECHO, SERVER_ID, "after");
      expect(str((await a!.next()).body)).toBe("after");
    });
  });
}

describe("gRPC backend (Node game server)", () => {
  test("200 sessions on one stream keep each its own order", async () => {
    const s = await server("node", 0, ["--quiet"]);
    const gw = gateway(s.address);
    const clients = await Promise.all(Array.from({ length: 200 }, () => gw.connect()));
    const N = 25;
    for (let i = 0; i < N; i++) clients.forEach((c, k) => c.send(ECHO, SERVER_ID, `${k}:${i}`));
    await Promise.all(
      clients.map(async (c, k) => {
        const frames = await c.frames(N, 30_000);
        expect(frames.map((f) => str(f.body))).toEqual(Array.from({ length: N }, (_, i) => `${k}:${i}`));
      }),
    );
    expect(s.events.filter((e) => e.event === "stream")).toHaveLength(1);
    expect(gw.gateway.backends.all().map((p) => [p.endpoint, p.openConnections, p.sessions])).toEqual([[s.address, 1, 200]]);
  }, 60_000);

  test("a client that stops reading is closed at its own queue bound; the stream's other sessions go on", async () => {
    const s = await server("node", 0, ["--quiet"]);
    const gw = gateway(s.address, { server: { use_grpc: true, client_write_queue_limit: "256KiB" } });
    const slow = await gw.connect();
    const other = await gw.connect();
    slow.pause();
    const body = "y".repeat(8_000);
    for (let i = 0; i < 2_000; i++) slow.send(ECHO, SERVER_ID, body); // 16 MB of echoes for a client reading none
    await slow.closed;
    await eventually(async () => (await gw.gateway.metrics.value("client_closes_total", { reason: "slow_reader" })) === 1, "the slow reader closed as one");
    for (let i = 0; i < 20; i++) {
      other.send(ECHO, SERVER_ID, `o${i}`);
      expect(str((await other.next()).body)).toBe(`o${i}`);
    }
  }, 60_000);

  test("metrics carry the reference's names and label values, and access records name the gRPC backend, as for TCP backends", async () => {
    const s = await server("node");
    const gw = gateway(s.address);
    const clients = await Promise.all([0, 1, 2].map(() => gw.connect()));
    for (const [i, c] of clients.entries()) {
      c.send(ECHO, SERVER_ID, `m${i}`);
      await c.next();
    }
    for (const c of clients) c.close();
    await eventually(() => gw.accessLog.find(ACCESS_LOG_BODY).length === 3, "three access records");
    const m = gw.gateway.metrics;
    const backend = s.address;
    expect(await m.value("backend_requests_total", { backend, status: "success" })).toBe(3); // one per session, not per message
    expect(await m.value("backend_connections_active", { backend })).toBe(1); // the one stream
    expect(await m.value("messages_processed_total", { direction: "client_to_backend", service_type: String(TYPE) })).toBe(3);
    expect(await m.value("messages_processed_total", { direction: "backend_to_client", service_type: String(TYPE) })).toBe(3);
    expect(await m.value("backend_bytes_transmitted_total", { backend, direction: "request" })).toBeGreaterThan(0);
    expect(await m.value("backend_bytes_transmitted_total", { backend, direction: "response" })).toBeGreaterThan(0);
    expect(await m.value("circuit_breaker_state", { backend })).toBe(0);
    for (const r of gw.accessLog.find(ACCESS_LOG_BODY)) expect(r).toMatchObject({ "server.address": backend, reason: "client_closed", messages_received: 1, messages_sent: 1 });
  });

  test("with trace propagation on, game messages carry the session's trace_id and span_id", async () => {
    const s = await server("node");
    const gw = gateway(s.address, { tracing: { enable_trace_propagation: true } });
    const client = await gw.connect();
    const id = await sessionIdOf(s, client, "traced");
    client.send(ECHO, SERVER_ID, "second");
    await client.next();
    const game = s.of(id).filter((p) => p.metadata.packet_type === undefined);
    expect(game).toHaveLength(2);
    const { trace_id, span_id } = game[0]!.metadata;
    expect(trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(game[1]!.metadata).toEqual({ trace_id: trace_id!, span_id: span_id! });
  });

  test("a lost stream (server killed) closes its sessions; the stream is re-opened when the server is back", async () => {
    const first = await server("node");
    const port = first.port;
    const gw = gateway(first.address);
    const client = await gw.connect();
    client.send(ECHO, SERVER_ID, "before");
    await client.next();
    await first.kill();
    await client.closed;
    // While it is down, new players are refused rather than left waiting.
    const refused = await gw.connect();
    await refused.closed;
    const second = await server("node", port);
    await eventually(() => second.events.some((e) => e.event === "stream"), "the gateway to re-open its stream", 20_000);
    const again = await gw.connect();
    again.send(ECHO, SERVER_ID, "after");
    expect(str((await again.next()).body)).toBe("after");
    expect(gw.log.find("gRPC stream to backend lost; re-opening")).toHaveLength(1);
  }, 60_000);

  test("grpc.max_receive_message_size: a larger packet fails the whole stream (as grpc-go's limit does); one under it too large for a client is dropped alone", async () => {
    const s = await server("node");
    const gw = gateway(s.address, { grpc: { reconnect_interval: "200ms", connection_timeout: "2s", max_receive_message_size: "128KiB" } });
    const [a, b] = await Promise.all([gw.connect(), gw.connect()]);
    b.send(ECHO, SERVER_ID, "b here");
    await b.next();
    a.send(HUGE, SERVER_ID, String(100 * 1024)); // under the limit, but no client frame holds 100 KiB
    await eventually(async () => (await gw.gateway.metrics.value("protocol_violations_total", { side: "backend", reason: "body_too_large" })) === 1, "the packet dropped");
    a.send(ECHO, SERVER_ID, "still here");
    expect(str((await a.next()).body)).toBe("still here");
    a.send(HUGE, SERVER_ID, String(200 * 1024)); // over it: grpc-js fails the stream (RESOURCE_EXHAUSTED)
    await Promise.all([a.closed, b.closed]);
    const lost = await eventually(() => gw.log.find("gRPC stream to backend lost; re-opening")[0], "the stream loss's log line");
    expect(String(lost.detail)).toContain("131072");
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_lost" })).toBe(2);
  }, 60_000);

  test("a flapping server (its stream ends again and again): each loss is counted, its log lines are throttled per endpoint", async () => {
    const s = await server("node");
    const gw = gateway(s.address, { circuit_breaker: { failure_threshold: 1, open_timeout: "100ms" } });
    const FLAPS = 4;
    for (let i = 1; i <= FLAPS; i++) {
      const client = await eventually(async () => {
        const c = await gw.connect();
        c.send(ECHO, SERVER_ID, "up?");
        return (await c.next().catch(() => null)) === null ? undefined : c;
      }, `the stream to be back (flap ${i})`, 20_000);
      client.send(END_STREAM, SERVER_ID, "");
      await client.closed;
    }
    const backend = s.address;
    expect(await gw.gateway.metrics.value("backend_connection_closes_total", { backend, cause: "connection_lost" })).toBe(FLAPS);
    expect(gw.log.find("gRPC stream to backend lost; re-opening")).toHaveLength(1);
    expect(gw.log.find("circuit breaker open")).toHaveLength(1);
  }, 60_000);

  test("the breaker opens while the stream cannot be opened, and closes once the server answers again", async () => {
    const first = await server("node");
    const port = first.port;
    const gw = gateway(first.address, { circuit_breaker: { failure_threshold: 2, half_open_max_requests: 1, open_timeout: "60s" } });
    const pool = gw.gateway.backends.all()[0]!;
    await eventually(() => pool.openConnections === 1, "the stream to open");
    await first.kill();
    await eventually(() => pool.breaker.state === 1, "the breaker to open");
    const refused = await gw.connect();
    refused.send(ECHO, SERVER_ID, "while open");
    await refused.closed;
    const second = await server("node", port);
    await eventually(() => second.events.some((e) => e.event === "stream"), "the stream to be opened again", 20_000);
    // Half-open: one probe session; its packets prove the backend, and the breaker closes for the rest.
    const probe = await gw.connect();
    probe.send(ECHO, SERVER_ID, "probe");
    expect(str((await probe.next()).body)).toBe("probe");
    await eventually(() => pool.breaker.state === 0, "the breaker to close");
    const clients = await Promise.all([1, 2, 3].map(() => gw.connect()));
    for (const [i, c] of clients.entries()) {
      c.send(ECHO, SERVER_ID, `after ${i}`);
      expect(str((await c.next()).body)).toBe(`after ${i}`);
    }
  }, 60_000);

  test("a server that stops reading pauses the client sending to it, not the others; everything arrives once it reads again", async () => {
    const s = await server("node", 0, ["--quiet", "--stall-ms", "1500"]);
    const gw = gateway(s.address, { backend: { write_queue_high_water: "64KiB", write_queue_limit: "16MiB" } });
    const heavy = await gw.connect();
    const light = await gw.connect();
    heavy.send(STALL, SERVER_ID, "");
    await eventually(() => s.events.some((e) => e.event === "stalled"), "the server to stall");
    const body = "x".repeat(8_000);
    const N = 1_000; // 8 MB: more than HTTP/2's windows and the high water hold
    for (let i = 0; i < N; i++) heavy.send(ECHO, SERVER_ID, body);
    const pool = gw.gateway.backends.all()[0]!;
    await eventually(() => pool.pausedClients > 0, "the heavy sender to be paused");
    expect(light.isClosed).toBe(false);
    const frames = await heavy.frames(N, 60_000);
    expect(frames.every((f) => f.body.length === body.length)).toBe(true);
    light.send(ECHO, SERVER_ID, "light");
    expect(str((await light.next()).body)).toBe("light");
    expect(heavy.isClosed).toBe(false);
  }, 90_000);

  test("a client paused behind a server that stopped reading, and then gone, is let go: after connection_pool.write_timeout the stream is lost and re-opened", async () => {
    const s = await server("node", 0, ["--quiet", "--stall-ms", "600000"]);
    const gw = gateway(s.address, {
      backend: { write_queue_high_water: "64KiB", write_queue_limit: "16MiB" },
      connection_pool: { write_timeout: "1s" },
      session: { sweep_interval: "100ms" },
    });
    const heavy = await gw.connect();
    heavy.send(STALL, SERVER_ID, "");
    await eventually(() => s.events.some((e) => e.event === "stalled"), "the server to stall");
    const body = "x".repeat(8_000);
    for (let i = 0; i < 1_000; i++) heavy.send(ECHO, SERVER_ID, body);
    const pool = gw.gateway.backends.all()[0]!;
    await eventually(() => pool.pausedClients > 0, "the heavy sender to be paused");
    heavy.close(); // the player quits: its FIN waits behind the bytes the gateway is not reading
    const m = gw.gateway.metrics;
    const backend = s.address;
    await eventually(async () => (await m.value("sessions_active")) === 0, "the paused session to close", 20_000);
    expect(await m.value("connections_active")).toBe(0);
    expect(await m.value("backend_queued_bytes", { backend })).toBe(0);
    expect(await m.value("backend_connection_closes_total", { backend, cause: "write_timeout" })).toBe(1);
    await eventually(() => gw.accessLog.find(ACCESS_LOG_BODY).length === 1, "its access record");
    await eventually(() => s.events.filter((e) => e.event === "stream").length === 2, "the stream opened again");
  }, 60_000);
});

describe("a rule's transport", () => {
  test("one gateway serves a TCP backend and a gRPC backend side by side (transport: grpc on one rule)", async () => {
    const s = await server("node");
    const tcp = await scope.backend();
    const gw = scope.gateway(
      {
        grpc: { reconnect_interval: "200ms" },
        routing: { rules: [{ ...rule(TYPE, [s.address]), transport: "grpc" }, rule(20, [`127.0.0.1:${tcp.port}`])] },
      },
      { grpc },
    );
    const viaGrpc = await gw.connect();
    const viaTcp = await gw.connect();
    viaGrpc.send(ECHO, SERVER_ID, "to grpc");
    viaTcp.send(ECHO, serverIdFor(20), "to tcp");
    expect(str((await viaGrpc.next()).body)).toBe("to grpc");
    expect(str((await viaTcp.next()).body)).toBe("to tcp");
    expect(s.packets().filter((p) => p.msg_id === ECHO).map((p) => p.payload)).toEqual(["to grpc"]);
    expect(s.events.filter((e) => e.event === "stream")).toHaveLength(1);
  });

  test("routes naming a gRPC backend need the transport loaded: the gateway says so at start", () => {
    expect(() => scope.gateway({ server: { use_grpc: true }, routing: { rules: [rule(TYPE, ["127.0.0.1:1"])] } })).toThrow(
      "routes name gRPC backends (server.use_grpc or a rule's transport: grpc) but the gateway started without the gRPC transport",
    );
  });
});

describe("an address that leaves the routes", () => {
  test("keeps serving its sessions; once its stream is lost it is not re-opened", async () => {
    const leaving = await server("node");
    const staying = await server("node");
    const gw = gateway(leaving.address);
    const client = await gw.connect();
    client.send(ECHO, SERVER_ID, "before the reload");
    await client.next();
    const routes = (endpoint: string) => ({ server: { use_grpc: true }, grpc: { reconnect_interval: "200ms" }, routing: { rules: [rule(TYPE, [endpoint])] } });
    gw.gateway.reload(testConfig(routes(staying.address)));
    client.send(ECHO, SERVER_ID, "after the reload");
    expect(str((await client.next()).body)).toBe("after the reload");
    const port = leaving.port;
    await leaving.kill();
    await client.closed;
    await eventually(() => gw.gateway.backends.all().length === 1, "the retired address's pool to be gone");
    const back = await server("node", port);
    const fresh = await gw.connect();
    fresh.send(ECHO, SERVER_ID, "to the new address");
    expect(str((await fresh.next()).body)).toBe("to the new address");
    await Bun.sleep(1_000); // five reconnect_intervals: a re-dial would have come by now
    expect(back.events.filter((e) => e.event === "stream")).toEqual([]);
    expect(gw.gateway.backends.all().map((p) => p.endpoint)).toEqual([staying.address]);
    expect(gw.log.find("gRPC stream to backend lost; re-opening")).toEqual([]);
  });
});
