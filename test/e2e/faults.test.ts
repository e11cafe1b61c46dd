// Faults and bad input, end to end: each is answered (closed with a reason, counted, logged) and
// every other session carries on.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode, decodeBackendFrame, encodeBackendFrame, encodeMulticastBody } from "../../src/protocol/server-frame.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);
const gateway = scope.gateway;
const backend = (port = 0) => scope.backend({ port });

async function roundTrip(c: GameClient, serverType: number, body: string): Promise<string> {
  c.send(1, serverIdFor(serverType), text(body));
  return str((await c.next()).body);
}

const stalledBackend = scope.stalledBackend;

describe("client misbehaviour", () => {
  test("an oversize frame closes only that client, logged and counted", async () => {
    const be = await backend();
    const gw = gateway({ security: { max_message_size: 1024 }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const good = await gw.connect();
    const bad = await gw.connect();
    expect(await roundTrip(good, T, "before")).toBe("before");
    expect(await roundTrip(bad, T, "me too")).toBe("me too");
    bad.sendRaw(encodeClientFrame(1, serverIdFor(T), new Uint8Array(1025)));
    await bad.closed;
    expect(await gw.gateway.metrics.value("protocol_violations_total", { side: "client", reason: "client_body_too_large" })).toBe(1);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "malformed_frame" })).toBe(1);
    expect(gw.log.lines.some((l) => l.reason === "client_body_too_large")).toBe(true);
    expect(await roundTrip(good, T, "after")).toBe("after");
    good.close();
  });

  test("a first frame with no route closes that client with reason no_route", async () => {
    const be = await backend();
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const lost = await gw.connect();
    lost.send(1, serverIdFor(99), text("anyone?"));
    await lost.closed;
    expect(await gw.gateway.metrics.value("routing_errors_total", { error_type: "not_found" })).toBe(1);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "no_route" })).toBe(1);
  });

  test("no complete first frame in time: closed and counted, even while trickling bytes", async () => {
    const be = await backend();
    const gw = gateway({
      server: { first_message_timeout: "300ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const silent = await gw.connect();
    const trickler = await gw.connect();
    const frame = encodeClientFrame(1, serverIdFor(T), new Uint8Array(100));
    let i = 0;
    const timer = setInterval(() => i < frame.length - 1 && trickler.sendRaw(frame.subarray(i, ++i)), 20);
    await Promise.all([silent.closed, trickler.closed]);
    clearInterval(timer);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "first_message_timeout" })).toBe(2);
    const fine = await gw.connect();
    expect(await roundTrip(fine, T, "quick")).toBe("quick");
    fine.close();
  });

  test("idle sessions are closed; traffic in either direction keeps a session alive", async () => {
    const be = await backend();
    const gw = gateway({ session: { idle_timeout: "1500ms" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const idle = await gw.connect();
    const busy = await gw.connect();
    expect(await roundTrip(idle, T, "x")).toBe("x");
    expect(await roundTrip(busy, T, "x")).toBe("x");
    const keepAlive = setInterval(() => busy.send(1, serverIdFor(T), text("tick")), 100);
    await idle.closed;
    clearInterval(keepAlive);
    expect(busy.isClosed).toBe(false);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "idle_timeout" })).toBe(1);
    busy.close();
  });

  test("a slow reader is closed at its queue bound; other clients are unaffected", async () => {
    const be = await backend();
    const gw = gateway({
      server: { client_write_queue_limit: "256KiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const slow = await gw.connect();
    const other = await gw.connect();
    slow.pause();
    const body = new Uint8Array(60_000);
    // Far more echo than loopback socket buffers plus the 256 KiB queue can hold.
    for (let i = 0; i < 800; i++) slow.send(1, serverIdFor(T), body);
    await eventually(async () => (await gw.gateway.metrics.value("client_closes_total", { reason: "slow_reader" })) === 1, "slow reader closed");
    expect(await roundTrip(other, T, "unaffected")).toBe("unaffected");
    expect(gw.gateway.buffers.stats().outstandingBytes).toBeLessThan(2 * 1024 * 1024);
    other.close();
    slow.close();
  });
});

describe("backend faults", () => {
  test("backend killed mid-run: its clients are closed with a reason, others lose nothing; after restart it serves again", async () => {
    const a = await backend();
    const b = await backend();
    const port = a.port;
    const gw = gateway({
      connection_pool: { retry_delay: "20ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${port}`]), rule(200, [`127.0.0.1:${b.port}`])] },
    });
    const onA = await Promise.all([1, 2, 3].map(() => gw.connect()));
    const onB = await Promise.all([1, 2, 3, 4, 5].map(() => gw.connect()));
    for (const c of onA) expect(await roundTrip(c, T, "a")).toBe("a");

    // Traffic on backend b keeps flowing, pipelined, while backend a dies underneath.
    let killed = false;
    const traffic = onB.map(async (c, i) => {
      let sent = 0;
      while (!killed || sent < 400) {
        for (let k = 0; k < 20; k++) c.send(k, serverIdFor(200), text(`b${i}-${sent + k}`));
        const replies = await c.frames(20, 10_000);
        for (let k = 0; k < 20; k++) expect(str(replies[k]!.body)).toBe(`b${i}-${sent + k}`);
        sent += 20;
      }
      return sent;
    });
    await Bun.sleep(20);
    await a.stop();
    killed = true;
    await Promise.all(onA.map((c) => c.closed));
    const delivered = await Promise.all(traffic);
    for (const n of delivered) expect(n).toBeGreaterThanOrEqual(400);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_lost" })).toBe(3);
    expect(gw.log.find("backend unavailable; closing its sessions").length).toBeGreaterThan(0);

    const restarted = await backend(port);
    await eventually(() => restarted.stats().connections >= 1, "gateway to re-dial the restarted backend");
    const again = await gw.connect();
    expect(await roundTrip(again, T, "back")).toBe("back");
    expect(await gw.gateway.metrics.value("backend_retries_total")).toBeGreaterThan(0);
    again.close();
    for (const c of onB) c.close();
  });

  test("one shared connection lost: its sessions move to the sibling and keep talking", async () => {
    const be = await backend();
    const gw = gateway({
      backend: { connections_per_endpoint: 2 },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    await eventually(() => be.stats().connections === 2, "both shared connections");
    const clients = await Promise.all(Array.from({ length: 10 }, () => gw.connect()));
    for (const c of clients) expect(await roundTrip(c, T, "before")).toBe("before");
    be.dropOneConnection();
    // Until the gateway sees the loss, a frame may still go to the dead connection; the log line
    // is written once its sessions have moved.
    await eventually(() => gw.log.find("backend connection lost; sessions moved to a sibling connection").length > 0, "the sessions to move");
    for (const c of clients) expect(await roundTrip(c, T, "after")).toBe("after");
    // Moved sessions are announced again on their new connection.
    expect(be.events.filter((e) => e.opcode === OpCode.Connect).length).toBeGreaterThan(10);
    for (const c of clients) c.close();
  });

  test("no backend listening: new clients are closed with backend_unavailable and counted", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadPort = probe.port;
    probe.stop(true);
    const gw = gateway({
      connection_pool: { retry_delay: "1s", dial_timeout: "200ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${deadPort}`])] },
    });
    await Bun.sleep(100);
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("hello?"));
    await c.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_unavailable" })).toBe(1);
    expect(await gw.gateway.metrics.value("backend_errors_total", { error_type: "connection_failed" })).toBeGreaterThan(0);
  });

  test("dedicated mode: one backend connection per session, closed with it", async () => {
    const be = await backend();
    const gw = gateway({ backend: { mode: "dedicated" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const clients = await Promise.all([1, 2, 3].map(() => gw.connect()));
    for (const c of clients) expect(await roundTrip(c, T, "own line")).toBe("own line");
    expect(be.stats().connections).toBe(3);
    clients[0]!.close();
    await eventually(() => be.stats().connections === 2, "the closed session's connection to close");
    expect(await roundTrip(clients[1]!, T, "still")).toBe("still");
    clients[1]!.close();
    clients[2]!.close();
    await eventually(() => be.stats().connections === 0, "all dedicated connections closed");
  });

  test("lifecycle messages off: the backend sees only Trans", async () => {
    const be = await backend();
    const gw = gateway({
      backend: { lifecycle_messages: false, connections_per_endpoint: 1 },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const c = await gw.connect();
    expect(await roundTrip(c, T, "plain")).toBe("plain");
    c.close();
    await eventually(() => gw.gateway.sessions.size === 0, "session end");
    // A Disconnect for c would go down the one backend connection before this round trip's
    // Trans, so once the reply is back the backend has read everything it was going to.
    const later = await gw.connect();
    expect(await roundTrip(later, T, "after")).toBe("after");
    later.close();
    expect(be.stats().framesByOpcode[OpCode.Connect] ?? 0).toBe(0);
    expect(be.stats().framesByOpcode[OpCode.Disconnect] ?? 0).toBe(0);
  });
});

describe("backend re-dial and recovery", () => {
  /** A listener that accepts every connection and at once breaks framing on it (a negative Length). */
  function garbageBackend() {
    let accepted = 0;
    const frame = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n });
    new DataView(frame.buffer).setInt32(0, -5, true);
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          accepted++;
          s.write(frame);
        },
        data() {},
      },
    });
    scope.defer(() => listener.stop(true));
    return { port: listener.port, accepted: () => accepted };
  }

  test("a backend that accepts and then sends garbage is not re-dialled in a loop", async () => {
    // Before: every TCP connect reset the backoff, so two slots re-dialled every 50-100 ms (two
    // dials a second at the least, open breaker or not). Now the backoff resets only once a
    // connection proves healthy and an open breaker dials one probe per 0.5-1 s. Re-dials run on
    // the gateway's clock, so each second is a tick the test takes and the count is exact however
    // slow the machine: one dial per second, from the second the breaker opened.
    const bad = garbageBackend();
    const clock = new ManualClock();
    const endpoint = `127.0.0.1:${bad.port}`;
    const gw = gateway(
      { circuit_breaker: { open_timeout: "10m" }, routing: { rules: [rule(T, [endpoint])] } },
      { clock },
    );
    const breakerOpen = async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: endpoint })) === 1;
    /** Connections the gateway has seen closed: each one has scheduled its re-dial or probe by then. */
    const closedByGateway = async () => (await gw.gateway.metrics.value("backend_connection_closes_total", { backend: endpoint, cause: "length_negative" })) ?? 0;
    // Until the breaker opens, failed slots re-dial at their backoff (at most 5 s): each poll lets a second go.
    await eventually(async () => {
      clock.tick(1_000);
      return breakerOpen();
    }, "the breaker to open");
    await eventually(async () => (await closedByGateway()) === bad.accepted(), "the gateway to see every connection so far fail");
    const before = bad.accepted();
    const SECONDS = 8;
    for (let second = 1; second <= SECONDS; second++) {
      clock.tick(1_000);
      await eventually(async () => bad.accepted() === before + second && (await closedByGateway()) === bad.accepted(), `the probe of second ${second}`);
    }
    expect(bad.accepted() - before).toBe(SECONDS);
    expect(await breakerOpen()).toBe(true);
    // One log line for the state change, not one per attempt.
    const lines = gw.log.find("backend unreachable");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ cause: "closed_before_healthy", close_cause: "length_negative" });
  });

  test("a dead backend's cause is logged once; once it is back, service resumes long before open_timeout", async () => {
    const be = await backend();
    const port = be.port;
    const endpoint = `127.0.0.1:${port}`;
    const gw = gateway({
      admin: { listen_addr: "127.0.0.1:0" },
      log: { level: "info" },
      connection_pool: { retry_delay: "20ms" },
      // open_timeout far beyond any wait below: only the probe can bring the endpoint back.
      circuit_breaker: { failure_threshold: 2, open_timeout: "10m" },
      routing: { rules: [rule(T, [endpoint])] },
    });
    type ReadyBody = { status: string; routes: ({ reachable: number } & Record<string, unknown>)[] };
    const ready = async () => (await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/ready`)).json()) as ReadyBody;
    const served = async () => {
      const c = await gw.connect();
      c.send(1, serverIdFor(T), text("anyone?"));
      const ok = await c.next(2000).then((f) => str(f.body) === "anyone?", () => false);
      c.close();
      return ok;
    };
    await eventually(async () => (await ready()).routes[0]?.reachable === 1, "the endpoint to be reachable");
    expect(await ready()).toEqual({
      status: "ready",
      routes: [{ server_type: T, world_id: 0, service_name: `svc-${T}`, endpoints: 1, reachable: 1 }],
    });
    expect(await served()).toBe(true);

    await be.stop();
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: endpoint })) === 1, "the breaker to open");
    // Several probes fail while it is down, each the same way.
    await eventually(async () => (await gw.gateway.metrics.value("backend_errors_total", { error_type: "connection_failed" })) >= 4, "probes to fail");
    expect(await served()).toBe(false);
    expect((await ready()).routes[0]!.reachable).toBe(0);
    const down = gw.log.find("backend unreachable");
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ backend: endpoint, cause: "refused" });

    await backend(port);
    await eventually(served, "a client to be served again (open_timeout is 10 minutes)");
    expect((await ready()).routes[0]!.reachable).toBe(1);
    expect(gw.log.find("backend reachable again")[0]).toMatchObject({ backend: endpoint, was: "refused" });
  }, 60_000);

  test("a name that does not resolve is logged with cause dns", async () => {
    const gw = gateway({ routing: { rules: [rule(T, ["no-such-backend.invalid:19711"])] } });
    const line = await eventually(() => gw.log.find("backend unreachable")[0], "the dial failure to be logged");
    expect(line).toMatchObject({ backend: "no-such-backend.invalid:19711", cause: "dns" });
  });
});

/** A backend that answers every Trans with `reply(frame)`: for sending what no sane backend would. */
async function rawBackend(reply: (sessionId: bigint, socket: Socket<undefined>) => void): Promise<TCPSocketListener<undefined>> {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      data(socket, chunk) {
        // Tests send one small frame at a time, so each chunk holds whole frames.
        let off = 0;
        while (off + 20 <= chunk.length) {
          const f = decodeBackendFrame(chunk, off);
          off += 20 + new DataView(chunk.buffer, chunk.byteOffset + off).getInt32(0, true);
          if (f.opcode === OpCode.Trans) reply(f.sessionId, socket);
        }
      },
    },
  });
  scope.defer(() => server.stop(true));
  return server;
}

describe("backend garbage", () => {
  test("contract-breaking frames are dropped and counted; the session still gets its good replies", async () => {
    const bad = await rawBackend((sid, s) => {
      const echo = (body: string, extra: Partial<Parameters<typeof encodeBackendFrame>[0]> = {}) =>
        s.write(encodeBackendFrame({ opcode: OpCode.Trans, sessionId: sid, type: 1, body: text(body), ...extra }));
      echo("unknown session", { sessionId: sid + 1n });
      echo("bad opcode", { opcode: 42 });
      echo("connect from backend", { opcode: OpCode.Connect });
      echo("type too big", { type: 70_000 });
      s.write(encodeBackendFrame({ opcode: OpCode.Trans, sessionId: sid, body: new Uint8Array(65_536) }));
      s.write(encodeBackendFrame({ opcode: OpCode.Multicast, sessionId: 0n, body: encodeMulticastBody([sid], text("x")).subarray(0, 6) }));
      s.write(encodeBackendFrame({ opcode: OpCode.Ping, sessionId: 0n, body: new Uint8Array(3) }));
      echo("ok");
    });
    const gw = gateway({ routing: { rules: [rule(T, [`127.0.0.1:${bad.port}`])] } });
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("hi"));
    expect(str((await c.next()).body)).toBe("ok");
    const m = gw.gateway.metrics;
    const reasons = ["unknown_session", "unknown_opcode", "unexpected_opcode", "type_out_of_range", "body_too_large", "multicast_malformed", "ping_malformed"];
    for (const reason of reasons) {
      expect(await m.value("protocol_violations_total", { side: "backend", reason })).toBe(1);
    }
    expect(gw.log.find("backend frame broke the wire contract; dropped").length).toBe(reasons.length);
    c.close();
  });

  test("a negative Length closes that backend connection; its sessions are closed, others carry on", async () => {
    const good = await backend();
    const bad = await rawBackend((_sid, s) => {
      const f = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n });
      new DataView(f.buffer).setInt32(0, -5, true);
      s.write(f);
    });
    const gw = gateway({
      connection_pool: { retry_delay: "1s" },
      backend: { connections_per_endpoint: 1 },
      routing: { rules: [rule(T, [`127.0.0.1:${bad.port}`]), rule(200, [`127.0.0.1:${good.port}`])] },
    });
    const victim = await gw.connect();
    const other = await gw.connect();
    expect(await roundTrip(other, 200, "fine")).toBe("fine");
    victim.send(1, serverIdFor(T), text("trigger"));
    await victim.closed;
    expect(await gw.gateway.metrics.value("protocol_violations_total", { side: "backend", reason: "length_negative" })).toBe(1);
    // One violation, one error: the close it causes is not a second backend_errors_total event.
    expect(await gw.gateway.metrics.value("backend_errors_total", { error_type: "length_negative" })).toBe(1);
    expect(await roundTrip(other, 200, "still fine")).toBe("still fine");
    other.close();
  });

  test("a backend that stops reading pauses its clients instead of growing memory", async () => {
    const stalled = stalledBackend();
    const gw = gateway({
      backend: { connections_per_endpoint: 1, write_queue_high_water: "256KiB", write_queue_limit: "4MiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    await eventually(() => stalled.connected, "gateway to connect");
    const c = await gw.connect();
    const body = new Uint8Array(32_000);
    const total = 450; // ~14 MB: past loopback socket buffers plus the 4 MiB hard bound
    for (let i = 0; i < total; i++) c.send(1, serverIdFor(T), body);
    await eventually(async () => (await gw.gateway.metrics.value("backend_backpressure_pauses_total")) > 0, "the client to be paused");
    // Paused, not closed; the queue toward the backend stayed under its hard bound.
    expect(c.isClosed).toBe(false);
    const pool = [...gw.gateway.backends.all()][0]!;
    expect(pool.queuedBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_congested" })).toBe(0);
    // Once the backend reads again, everything the client sent arrives.
    stalled.resume();
    const expected = total * (20 + 9 + body.length);
    await eventually(() => stalled.received >= expected, `backend to receive all ${expected} bytes`, 30_000);
    c.close();
  });

  test("a paused client that quits behind a backend that stopped reading is let go once the unanswered Ping times out", async () => {
    // Its FIN waits behind the bytes the gateway is not reading, so its leaving is not seen; the
    // stalled connection's Ping deadline is what ends it (the gRPC transport's equivalent is
    // connection_pool.write_timeout: test/e2e/grpc-backend.test.ts).
    const stalled = stalledBackend();
    const gw = gateway({
      backend: { connections_per_endpoint: 1, write_queue_high_water: "256KiB", write_queue_limit: "4MiB", ping_interval: "200ms", ping_timeout: "1s" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
      session: { sweep_interval: "100ms" },
    });
    await eventually(() => stalled.connected, "gateway to connect");
    const c = await gw.connect();
    const body = new Uint8Array(32_000);
    for (let i = 0; i < 450; i++) c.send(1, serverIdFor(T), body);
    await eventually(async () => (await gw.gateway.metrics.value("backend_backpressure_pauses_total")) > 0, "the client to be paused");
    c.close();
    const m = gw.gateway.metrics;
    await eventually(async () => (await m.value("sessions_active")) === 0, "the paused session to close", 20_000);
    expect(await m.value("connections_active")).toBe(0);
    expect(await m.value("backend_connection_closes_total", { backend: `127.0.0.1:${stalled.port}`, cause: "ping_timeout" })).toBeGreaterThan(0);
    stalled.resume();
  }, 30_000);

  test("a congested shared connection pauses the heavy sender, not a client sending a little", async () => {
    // Before, every client that sent while the queue was past high water was paused, so a quiet
    // client waited behind the heavy one's backlog (here: its first frame read, the rest never).
    const stalled = stalledBackend();
    const gw = gateway({
      backend: { connections_per_endpoint: 1, write_queue_high_water: "256KiB", write_queue_limit: "4MiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    await eventually(() => stalled.connected, "gateway to connect");
    const m = gw.gateway.metrics;
    const framesToBackend = () => m.value("backend_frames_total", { direction: "request" });
    const quiet = await gw.connect();
    quiet.send(1, serverIdFor(T), text("hello"));
    await eventually(async () => (await framesToBackend()) >= 2, "the quiet session's Connect and first frame");

    const heavy = await gw.connect();
    const pool = [...gw.gateway.backends.all()][0]!;
    const body = new Uint8Array(1_000);
    for (let round = 0; round < 500 && pool.queuedBytes <= 256 * 1024; round++) {
      for (let i = 0; i < 100; i++) heavy.send(1, serverIdFor(T), body);
      await Bun.sleep(20);
    }
    expect(pool.queuedBytes).toBeGreaterThan(256 * 1024);
    const pausesBefore = await m.value("backend_backpressure_pauses_total");
    const before = await framesToBackend();
    for (let i = 0; i < 5; i++) {
      quiet.send(1, serverIdFor(T), text(`small ${i}`));
      await eventually(async () => (await framesToBackend()) >= before + i + 1, `quiet frame ${i} to be taken`);
    }
    expect(await m.value("backend_backpressure_pauses_total")).toBe(pausesBefore);
    stalled.resume(); // lets shutdown flush what is queued
    quiet.close();
    heavy.close();
  }, 30_000);

  test("the bytes queued toward all backends together stay under write_queue_total_limit", async () => {
    // Each connection's own bounds (2 MiB high water, 4 MiB limit) would let four stalled
    // connections hold 8 MiB or more; the total bound holds them to 1 MiB, closing the senders
    // whose frames would pass it (counted). Before the total bound, this grew past 8 MiB.
    const stalled = stalledBackend();
    const gw = gateway({
      backend: {
        connections_per_endpoint: 4,
        write_queue_high_water: "2MiB",
        write_queue_limit: "4MiB",
        write_queue_total_limit: "1MiB",
      },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    const pool = [...gw.gateway.backends.all()][0]!;
    await eventually(() => pool.openConnections === 4, "four connections");
    const clients = await Promise.all(Array.from({ length: 8 }, () => gw.connect()));
    const body = new Uint8Array(32_000);
    const m = gw.gateway.metrics;
    const refusedAtTotal = () => m.value("backend_queue_limit_rejections_total", { limit: "total" });
    let most = 0;
    for (let round = 0; round < 200 && (await refusedAtTotal()) === 0; round++) {
      for (const c of clients) if (!c.isClosed) for (let i = 0; i < 10; i++) c.send(1, serverIdFor(T), body);
      await Bun.sleep(20);
      most = Math.max(most, pool.queuedBytes);
    }
    expect(await refusedAtTotal()).toBeGreaterThan(0);
    // Control frames (Connect, Ping) are not refused at the bound: a few hundred bytes of slack.
    expect(most).toBeLessThanOrEqual(1024 * 1024 + 4096);
    expect(pool.queuedBytes).toBeLessThanOrEqual(1024 * 1024 + 4096);
    expect(await m.value("client_closes_total", { reason: "backend_congested" })).toBeGreaterThan(0);
    for (const c of clients) c.close();
  }, 30_000);

  test("dedicated mode: what was queued for a session that ended is dropped and counted, not held", async () => {
    const stalled = stalledBackend();
    const gw = gateway({
      // The session ends at its idle timeout: a paused client's own close is not seen while paused.
      // Kept short, and high water high, because a kernel that keeps taking bytes after the pause
      // (collapsing its queues; seen under load) could drain the queue below half of high water
      // meanwhile, and then nothing would be lagging when the session ends.
      session: { idle_timeout: "1s" },
      backend: { mode: "dedicated", write_queue_high_water: "2MiB", write_queue_limit: "8MiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    const pool = [...gw.gateway.backends.all()][0]!;
    const c = await gw.connect();
    const body = new Uint8Array(32_000);
    // Past the kernel's buffers and high water: the client is paused with bytes queued. Waited
    // for as the pause, not as a queue size: the kernel may still take some of the queue after
    // the pause (it did under load), and a paused client adds nothing to win it back.
    for (let round = 0; round < 500 && pool.pausedClients === 0; round++) {
      for (let i = 0; i < 20; i++) c.send(1, serverIdFor(T), body);
      await Bun.sleep(20);
    }
    expect(pool.pausedClients).toBe(1);
    await c.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "idle_timeout" })).toBe(1);
    // Before, the connection waited to flush to a backend that never reads: held for good.
    await eventually(() => pool.queuedBytes === 0, "the ended session's queue to be dropped");
    // The queue was lagging (past high water, not yet drained to half of it) when it was dropped.
    expect(await gw.gateway.metrics.value("backend_queue_dropped_bytes_total")).toBeGreaterThan(1024 * 1024);
    expect(pool.openConnections).toBe(0);
  }, 30_000);

  test("a backend that stalls and recovers takes its paused clients back a batch at a time", async () => {
    // While the backend is stalled, every client is paused with frames waiting in its socket.
    // Resuming them all at once would pour those into the queue past its hard bound and close
    // clients (backend_congested); resumed in batches, none is lost.
    const stalled = stalledBackend();
    const gw = gateway({
      connection_pool: { max_connections: 1000 },
      security: { max_connections_per_ip: 1000, connection_rate_limit: 1000 },
      backend: { connections_per_endpoint: 1, write_queue_high_water: "64KiB", write_queue_limit: "4MiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    await eventually(() => stalled.connected, "gateway to connect");
    const body = new Uint8Array(1_000);
    const frame = 20 + 9 + body.length;
    // Fillers fill the kernel's buffers and keep the queue past twice high water, where every
    // sender is paused (below it only those that sent their mean share or more are, so each
    // filler is paused near its share and a new one joins until the queue is past that)...
    const pool = [...gw.gateway.backends.all()][0]!;
    const fillers = [await gw.connect()];
    let sent = 0;
    for (let round = 0; round < 500 && pool.queuedBytes <= 128 * 1024; round++) {
      if (round % 10 === 9 && fillers.length < 100) fillers.push(await gw.connect());
      for (const filler of fillers) for (let i = 0; i < 100; i++) filler.send(1, serverIdFor(T), body);
      sent += 100 * fillers.length;
      await Bun.sleep(20);
    }
    expect(pool.queuedBytes).toBeGreaterThan(128 * 1024);
    // ...then each of the others sends a frame and is paused for it, and sends 48 more that
    // wait in its socket: 14 MB in all, more than three times the hard bound. A client sending
    // little is paused only while the queue is past pauseAllAt, and the kernel may still take
    // some of the queue after the fillers stop. So a round that leaves clients unpaused is
    // followed by another frame from each client once the gateway has forwarded the round: the
    // unpaused ones refill the queue, and as the stalled backend reads nothing the kernel's
    // buffers fill for good, so the rounds end (the paused ones' frames join their backlog).
    const clients = await Promise.all(Array.from({ length: 300 }, () => gw.connect()));
    const forwarded = gw.gateway.metrics.backendTally(pool.endpoint);
    const pausedFillers = pool.pausedClients;
    let rounds = 0;
    for (let unpaused = clients.length; unpaused > 0; unpaused = pausedFillers + clients.length - pool.pausedClients) {
      expect(rounds).toBeLessThan(100);
      const framesBefore = forwarded.framesOut;
      for (const c of clients) c.send(1, serverIdFor(T), body);
      rounds++;
      await eventually(() => forwarded.framesOut - framesBefore >= unpaused, "the round's frames from unpaused clients to be forwarded");
    }
    const backlog = 48;
    for (const c of clients) for (let i = 0; i < backlog; i++) c.send(1, serverIdFor(T), body);
    await Bun.sleep(200);
    stalled.resume();
    const expected = (sent + clients.length * (rounds + backlog)) * frame;
    const all = [...fillers, ...clients];
    await eventually(() => all.some((c) => c.isClosed) || stalled.received >= expected, `backend to receive all ${expected} bytes`, 30_000);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_congested" })).toBe(0);
    expect(all.filter((c) => c.isClosed)).toHaveLength(0);
    for (const c of all) c.close();
  });

});
