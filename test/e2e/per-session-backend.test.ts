// backend.mode: per_session against a game server written for the reference gateway's TCP mode
// (test/support/reference-backend.ts, from its contract alone): one connection per player, only
// Trans, ServerID 0, replies carrying session ID 0 and routed by the connection.
import { afterEach, describe, expect, test } from "bun:test";
import type { GameClient } from "../../src/client/game-client.ts";
import { serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";
import { startReferenceBackend } from "../support/reference-backend.ts";

const T = 10;
const PLAYERS = 100;
const BURST = 20;
/** Every periodic interval of the gateway, shortened so that the test outlives many of them. */
const PING_INTERVAL_MS = 30;
const SWEEP_INTERVAL_MS = 20;
/** TCP keep-alive's idle time (connection_pool.read_timeout): the kernel counts it in whole seconds. */
const KEEPALIVE_MS = 1_000;

const scope = new TestScope();
afterEach(scope.release);

function referenceBackend(port = 0) {
  const be = startReferenceBackend(port);
  scope.defer(() => be.stop());
  return be;
}

/** A loopback port that was free a moment ago. */
function unusedPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

function perSessionGateway(backendPort: number, extra: Record<string, unknown> = {}) {
  return scope.gateway({
    backend: { mode: "per_session", ping_interval: `${PING_INTERVAL_MS}ms`, ping_timeout: `${2 * PING_INTERVAL_MS}ms` },
    session: { sweep_interval: `${SWEEP_INTERVAL_MS}ms` },
    connection_pool: { read_timeout: `${KEEPALIVE_MS}ms`, write_timeout: "2s" },
    routing: { rules: [rule(T, [`127.0.0.1:${backendPort}`])] },
    ...extra,
  });
}

/** Sends `count` frames with MessageIDs first.. and checks they come back in order, unchanged. */
async function roundTrips(c: GameClient, name: string, first: number, count: number, serverType = T): Promise<void> {
  for (let j = 0; j < count; j++) c.send(first + j, serverIdFor(serverType, 3, 7), text(`${name} #${j}`));
  for (let j = 0; j < count; j++) {
    const f = await c.next();
    expect({ messageId: f.messageId, serverId: f.serverId, body: str(f.body) }).toEqual({ messageId: first + j, serverId: 0, body: `${name} #${j}` });
  }
}

describe("backend.mode: per_session (the reference gateway's TCP backend contract)", () => {
  test("100 players each get their own Trans-only connection, outlive every interval, get replies in order; a backend closing one socket closes exactly that player", async () => {
    const be = referenceBackend();
    const gw = perSessionGateway(be.port);
    const clients = await Promise.all(Array.from({ length: PLAYERS }, () => gw.connect()));
    // The first frame binds each session; its body names the player to the backend.
    clients.forEach((c, i) => c.send(1000 + i, serverIdFor(T), text(`player ${i}`)));
    for (const [i, c] of clients.entries()) {
      const f = await c.next();
      expect({ messageId: f.messageId, serverId: f.serverId, body: str(f.body) }).toEqual({ messageId: 1000 + i, serverId: 0, body: `player ${i}` });
    }
    expect(be.accepted).toBe(PLAYERS);

    // Idle past many ping intervals and sweeps, and past the keep-alive idle time (probes answered
    // by the kernel): a Ping (or any opcode but Trans) would have made the backend close that
    // connection, and with it the player; a read deadline would have closed the silent ones.
    await Bun.sleep(Math.max(10 * PING_INTERVAL_MS, 1.5 * KEEPALIVE_MS));
    await Promise.all(clients.map((c, i) => roundTrips(c, `player ${i}`, 1, BURST)));
    expect(be.violations).toEqual([]);
    expect(be.open).toBe(PLAYERS);

    // The backend drops one player's connection: that client is closed, nobody else is.
    expect(be.closeConnectionOf("player 42")).toBe(true);
    await clients[42]!.closed;
    await Promise.all(clients.filter((_, i) => i !== 42).map((c) => roundTrips(c, "still here", 100, 2)));
    expect(clients.filter((c) => c.isClosed).length).toBe(1);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_lost" })).toBe(1);
    expect(be.accepted).toBe(PLAYERS); // the lost session's connection is not re-dialled

    // A player leaving closes its connection, and only its own.
    clients[0]!.close();
    await eventually(() => be.open === PLAYERS - 2, "the leaving player's backend connection to close");
    await roundTrips(clients[1]!, "player 1", 200, 1);
    expect(be.violations).toEqual([]);
  });

  test("with trace propagation the gate header is 33 bytes, and replies still reach their player", async () => {
    const be = startReferenceBackend(0, true);
    scope.defer(() => be.stop());
    const gw = perSessionGateway(be.port, { tracing: { enable_trace_propagation: true } });
    const clients = await Promise.all([0, 1, 2].map(() => gw.connect()));
    await Promise.all(clients.map((c, i) => roundTrips(c, `traced ${i}`, 1, 5)));
    expect(be.violations).toEqual([]);
  });

  test("a failed dial is retried max_retries times, retry_delay apart, before the player is given up", async () => {
    // A port nothing listens on yet: the dial is refused until the backend starts.
    const port = unusedPort();
    const gw = perSessionGateway(port, { connection_pool: { max_retries: 50, retry_delay: "50ms" } });
    const c = await gw.connect();
    c.send(7, serverIdFor(T), text("waiting for the server"));
    await eventually(async () => ((await gw.gateway.metrics.value("backend_retries_total", { backend: `127.0.0.1:${port}` })) ?? 0) >= 2, "two dial retries");
    const be = referenceBackend(port);
    const f = await c.next();
    expect({ messageId: f.messageId, body: str(f.body) }).toEqual({ messageId: 7, body: "waiting for the server" });
    expect(be.accepted).toBe(1);

    // With no retries left the player is closed, as the reference closed it.
    const noRetries = perSessionGateway(unusedPort(), { connection_pool: { max_retries: 0 } });
    const gone = await noRetries.connect();
    gone.send(1, serverIdFor(T), text("anyone?"));
    await gone.closed;
    expect(await noRetries.gateway.metrics.value("client_closes_total", { reason: "backend_unavailable" })).toBe(1);
  });

  test("a client that stops reading is closed after write_timeout (the write deadline on the client socket)", async () => {
    const be = referenceBackend();
    const gw = perSessionGateway(be.port, {
      // Far above what the test queues: the close must come from the deadline, not the size bound.
      server: { client_write_queue_limit: "256MiB" },
      connection_pool: { write_timeout: "300ms" },
    });
    const deaf = await gw.connect();
    deaf.pause(); // reads nothing from now on: the echoes pile up in the kernel, then in the gateway
    const body = new Uint8Array(60_000);
    // Far more echo than loopback socket buffers hold (and far less than the queue bound).
    for (let i = 0; i < 400; i++) deaf.send(1, serverIdFor(T), body);
    const fine = await gw.connect();
    await roundTrips(fine, "fine", 1, 1);
    await deaf.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "write_timeout" })).toBe(1);
    await roundTrips(fine, "fine", 2, 1);
  });

  test("a backend that stops reading closes that session after write_timeout (the write deadline)", async () => {
    const stalled = scope.stalledBackend();
    const be = referenceBackend();
    const gw = scope.gateway({
      backend: { mode: "per_session" },
      session: { sweep_interval: `${SWEEP_INTERVAL_MS}ms` },
      connection_pool: { write_timeout: "300ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`]), rule(T + 1, [`127.0.0.1:${be.port}`])] },
    });
    const stuck = await gw.connect();
    const fine = await gw.connect();
    // Far more than the loopback socket buffers hold: the rest waits in the gateway's queue.
    const chunk = new Uint8Array(60_000);
    for (let i = 0; i < 200; i++) stuck.send(1, serverIdFor(T), chunk);
    await roundTrips(fine, "fine", 1, 1, T + 1);
    await stuck.closed;
    expect(await gw.gateway.metrics.value("backend_timeouts_total", { backend: `127.0.0.1:${stalled.port}` })).toBe(1);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_lost" })).toBe(1);
    await roundTrips(fine, "fine", 2, 1, T + 1);
  });
});
