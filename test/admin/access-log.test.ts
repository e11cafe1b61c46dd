// The access log's bound on refused connections: a flood of refused connects gets a fixed number
// of records per second, the rest summarised per refusal with their count, so stdout and memory
// stay bounded while every refusal is still accounted for.
import { afterEach, describe, expect, test } from "bun:test";
import { DEFAULT_ACCESS_LOG } from "../../src/admin/access-log.ts";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { eventually, rule, str, TestScope, text } from "../support/harness.ts";

const scope = new TestScope();
afterEach(scope.release);
const T = 10;

/** Connects and waits for the gateway to drop the socket (or the connect itself to be reset). */
async function refusedConnect(port: number): Promise<void> {
  let closed!: () => void;
  const done = new Promise<void>((resolve) => (closed = resolve));
  try {
    await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {}, close: () => closed(), error: () => closed() } });
  } catch {
    return;
  }
  await done;
}

describe("access log", () => {
  test("records refusals one by one up to the per-second budget, then one summary per refusal with the count", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      { security: { max_connections_per_ip: 1, connection_rate_limit: 100_000 }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } },
      { clock },
    );
    const player = await GameClient.connect("127.0.0.1", gw.gateway.port);
    player.send(1, serverIdFor(T), text("in"));
    expect(str((await player.next()).body)).toBe("in");

    const budget = DEFAULT_ACCESS_LOG.rejectedPerSecond;
    const flood = 3 * budget;
    for (let sent = 0; sent < flood; sent += 50) await Promise.all(Array.from({ length: 50 }, () => refusedConnect(gw.gateway.port)));
    const refusals = () => gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" });
    await eventually(async () => (await refusals()) === flood, "every refusal to be counted");

    // The clock stood still: one window. A second later the budget is whole again.
    clock.tick(1000);
    await refusedConnect(gw.gateway.port);
    await eventually(async () => (await refusals()) === flood + 1, "the refusal in the next second");
    player.close();
    await eventually(() => gw.gateway.sessions.size === 0, "the player's session to end");
    await gw.gateway.stop();

    const rejected = gw.accessLog.lines.filter((l) => l.status === "rejected");
    const single = rejected.filter((l) => l.rejected_connections === undefined);
    const summaries = rejected.filter((l) => l.rejected_connections !== undefined);
    expect(single).toHaveLength(budget + 1);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      body: "access_log",
      refusal: "per_ip_limit",
      rejected_connections: flood - budget,
      "client.address": "127.0.0.1",
      "session.id": "",
    });
    expect(String(summaries[0]!["error.message"])).toContain(`${flood - budget} connections refused (per_ip_limit)`);
    // Every refusal is in the log, one by one or counted in a summary.
    expect(single.length + (summaries[0]!.rejected_connections as number)).toBe(await refusals());
    // And the player's own connection has its record.
    expect(gw.accessLog.lines.filter((l) => l.status === "success")).toHaveLength(1);
  });

  test("a record times the whole connection from accept, and a connection that never sent a frame has one too", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway({ server: { first_message_timeout: "10s" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } }, { clock });
    const player = await GameClient.connect("127.0.0.1", gw.gateway.port);
    const silent = await GameClient.connect("127.0.0.1", gw.gateway.port);
    await eventually(() => gw.gateway.clientConnections === 2, "both connections to be accepted");
    clock.tick(4000); // connected, not yet talking
    player.send(1, serverIdFor(T), text("hi"));
    expect(str((await player.next()).body)).toBe("hi");
    clock.tick(6000); // the silent one's first-message deadline
    await silent.closed;
    player.close();
    await eventually(() => gw.gateway.sessions.size === 0, "the player's session to end");
    await gw.gateway.stop();
    const [served] = gw.accessLog.lines.filter((l) => l.reason === "client_closed");
    expect(served).toMatchObject({ status: "success", duration_ms: 10_000, duration_ns: 10_000_000_000 });
    const [timedOut] = gw.accessLog.lines.filter((l) => l.reason === "first_message_timeout");
    expect(timedOut).toMatchObject({ status: "timeout", "session.id": "", duration_ms: 10_000, "error.message": "no first message within server.first_message_timeout" });
    expect(gw.accessLog.lines).toHaveLength(2);
  });

  test("a record keeps what the gateway knew: the backend of a session whose backend was lost, the route a refused first frame asked for", async () => {
    const be = await scope.backend();
    const B = `127.0.0.1:${be.port}`;
    const gw = scope.gateway({ routing: { rules: [rule(T, [B])] } });
    const player = await GameClient.connect("127.0.0.1", gw.gateway.port);
    player.send(1, serverIdFor(T), text("in"));
    expect(str((await player.next()).body)).toBe("in");
    const lost = await GameClient.connect("127.0.0.1", gw.gateway.port);
    lost.send(1, serverIdFor(99, 3), text("anyone?"));
    await lost.closed;
    await be.stop();
    await player.closed;
    await gw.gateway.stop();

    const [dropped] = gw.accessLog.lines.filter((l) => l.reason === "backend_lost");
    expect(dropped).toMatchObject({ status: "error", "server.address": B, "server.type": T });
    const [unrouted] = gw.accessLog.lines.filter((l) => l.reason === "no_route");
    expect(unrouted).toMatchObject({ status: "error", "session.id": "", "server.type": 99, "world.id": 3, "server.address": "" });
    expect(gw.log.find("no routing rule for the client's server type and world; closing client")).toHaveLength(1);
  });
});
