// Chaos with real processes: demo backends run as child processes and are killed with SIGKILL
// under load.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, startGateway, str, text } from "../support/harness.ts";

const main = join(import.meta.dir, "../../src/cli/main.ts");
const children: Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function spawnBackend(port: number): Promise<Subprocess> {
  const child = Bun.spawn([process.execPath, main, "demo-backend", "--port", String(port)], { stdout: "pipe", stderr: "pipe" });
  children.push(child);
  await eventually(
    () => Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then((s) => (s.end(), true), () => false),
    `demo backend on ${port}`,
  );
  return child;
}

test("kill -9 one of two backends under load: its clients are closed with a reason, new sessions fail over, the other's clients lose nothing, and it recovers after restart", async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  let a = await spawnBackend(pa);
  await spawnBackend(pb);
  const A = `127.0.0.1:${pa}`;
  const B = `127.0.0.1:${pb}`;
  const gw = startGateway({
    connection_pool: { retry_delay: "20ms" },
    circuit_breaker: { failure_threshold: 2, open_timeout: "500ms" },
    routing: { rules: [rule(10, [A, B]), rule(200, [B])] },
  });
  try {
    // Server type 200 goes only to B: these clients must not notice A's death.
    const onB = await Promise.all(Array.from({ length: 20 }, () => gw.connect()));
    // Server type 10 is spread over A and B by round robin.
    const mixed = await Promise.all(Array.from({ length: 20 }, () => gw.connect()));
    for (const c of mixed) {
      c.send(1, serverIdFor(10), text("hello"));
      expect(str((await c.next()).body)).toBe("hello");
    }

    let killed = false;
    const traffic = onB.map(async (c, i) => {
      let n = 0;
      while (!killed || n < 500) {
        for (let k = 0; k < 25; k++) c.send(k, serverIdFor(200), text(`b${i}-${n + k}`));
        const got = await c.frames(25, 15_000);
        for (let k = 0; k < 25; k++) expect(str(got[k]!.body)).toBe(`b${i}-${n + k}`);
        n += 25;
      }
      return n;
    });
    await Bun.sleep(50);
    a.kill("SIGKILL");
    killed = true;
    await a.exited;

    // Clients that were on A are closed with a reason (possibly before this asks); the ones on B
    // still echo.
    const results = await Promise.all(
      mixed.map(async (c) => {
        if (c.isClosed) return "closed";
        try {
          c.send(2, serverIdFor(10), text("still there?"));
        } catch {
          return "closed"; // the close arrived between the check and the send
        }
        return c.next(5000).then((f) => str(f.body), () => "closed");
      }),
    );
    const closed = results.filter((r) => r === "closed").length;
    expect(closed).toBeGreaterThan(0);
    expect(results.filter((r) => r === "still there?").length).toBe(20 - closed);
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "backend_lost" })).toBe(closed);

    // New sessions for server type 10 fail over to B while A is down.
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: A })) === 1, "A's breaker to open");
    for (let i = 0; i < 10; i++) {
      const c = await gw.connect();
      c.send(1, serverIdFor(10), text(`failover ${i}`));
      expect(str((await c.next()).body)).toBe(`failover ${i}`);
      c.close();
    }
    for (const n of await Promise.all(traffic)) expect(n).toBeGreaterThanOrEqual(500);

    // Restart A: its breaker closes and it takes sessions again.
    a = await spawnBackend(pa);
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: A })) === 0, "A's breaker to close", 15_000);
    for (const c of [...onB, ...mixed]) c.close();
  } finally {
    await gw.stop();
  }
}, 120_000);

test("a backend process killed and restarted serves again long before open_timeout; the cause is logged once", async () => {
  const port = await freePort();
  const endpoint = `127.0.0.1:${port}`;
  let backend = await spawnBackend(port);
  const gw = startGateway({
    connection_pool: { retry_delay: "20ms" },
    // One connection, proven healthy by the first reply: the outage then starts with refused dials.
    backend: { connections_per_endpoint: 1 },
    // Far beyond any wait here: only a probe proving the backend healthy can bring it back.
    circuit_breaker: { failure_threshold: 2, open_timeout: "10m" },
    routing: { rules: [rule(10, [endpoint])] },
  });
  const served = async (): Promise<boolean> => {
    const c = await gw.connect();
    try {
      c.send(1, serverIdFor(10), text("up?"));
      return await c.next(2000).then((f) => str(f.body) === "up?", () => false);
    } finally {
      c.close();
    }
  };
  try {
    await eventually(served, "the backend to serve");
    backend.kill("SIGKILL");
    await backend.exited;
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: endpoint })) === 1, "the breaker to open");
    await eventually(async () => (await gw.gateway.metrics.value("backend_errors_total", { error_type: "connection_failed" })) >= 3, "probes to fail");
    expect(await served()).toBe(false);
    backend = await spawnBackend(port);
    await eventually(served, "service to resume (open_timeout is 10 minutes)", 15_000);
    // Once per outage, not per failed dial (at least 3 failed).
    const down = gw.log.find("backend unreachable");
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ backend: endpoint, cause: "refused" });
  } finally {
    await gw.stop();
  }
}, 60_000);
