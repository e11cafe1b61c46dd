// GET /debug/pprof/profile on the admin port: a CPU profile of the running gateway, in the pprof
// format `go tool pprof` opens, behind admin.debug_token, one at a time, for a bounded time.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { ChildOutput, rule, str, text, TestScope, type TestGateway } from "../support/harness.ts";
import { decodePprof } from "../support/pprof.ts";

const T = 10;
const MAIN = join(import.meta.dir, "../../src/cli/main.ts");
const TOKEN = "pr0file";
const scope = new TestScope();
afterEach(scope.release);

const admin = (gw: TestGateway, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${gw.gateway.adminPort}${path}`, init);
const withToken = { headers: { authorization: `Bearer ${TOKEN}` } };

/** Round trips on `clients` until `until` settles: traffic for the profiler to catch. */
async function driveTraffic(clients: GameClient[], until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => (done = true));
  let trips = 0;
  await Promise.all(
    clients.map(async (c, i) => {
      while (!done) {
        c.send(1, serverIdFor(T), text(`c${i} ${trips}`));
        str((await c.next()).body);
        trips++;
      }
    }),
  );
  return trips;
}

async function gatewayWithTraffic(): Promise<{ gw: TestGateway; clients: GameClient[] }> {
  const be = await scope.backend();
  const gw = scope.gateway({
    admin: { listen_addr: "127.0.0.1:0", debug_token: TOKEN },
    routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
  });
  const clients = await Promise.all(Array.from({ length: 16 }, () => gw.connect()));
  for (const c of clients) scope.defer(() => c.close());
  return { gw, clients };
}

describe("/debug/pprof/profile", () => {
  test("returns, after ?seconds=N, a gzipped pprof CPU profile whose stacks run through the gateway's data path", async () => {
    const { gw, clients } = await gatewayWithTraffic();
    const pending = admin(gw, "/debug/pprof/profile?seconds=2", withToken);
    const trips = await driveTraffic(clients, pending);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="game-gateway-cpu-.+\.pb\.gz"$/);
    const profile = decodePprof(new Uint8Array(await res.arrayBuffer()));

    expect(trips).toBeGreaterThan(0);
    expect(profile.sampleTypes).toEqual(["samples/count", "cpu/nanoseconds"]);
    expect(profile.periodType).toBe("cpu/nanoseconds");
    expect(profile.period).toBe(10_000_000); // 100 Hz, as Go samples
    expect(profile.durationNanos).toBeGreaterThanOrEqual(2e9);
    expect(profile.samples.length).toBeGreaterThan(0);
    for (const s of profile.samples) expect(s.values[1]).toBe(s.values[0]! * profile.period);
    // Frames only the gateway runs (its client listener and output, sessions, backend connections),
    // not the test's clients or the demo backend, which share src/net's reader and writer. Not the
    // listener alone: most samples land under the relay's client writes, and in 2 s at 100 Hz the
    // listener's own share (under 1%) can come out as none.
    const gatewayCode = /^\S+ \S*\/src\/(?:session\/|backend\/|net\/(?:tcp-listener|client-output)\.ts:)\S*$/;
    const throughGateway = profile.samples.filter((s) => s.stack.some((f) => gatewayCode.test(f)));
    expect(throughGateway.length).toBeGreaterThan(0);
  });

  test("token-gated as /debug is: 401 without or with a wrong token, 404 when admin.debug_token is unset", async () => {
    const { gw } = await gatewayWithTraffic();
    expect((await admin(gw, "/debug/pprof/profile?seconds=1")).status).toBe(401);
    expect((await admin(gw, "/debug/pprof/profile?seconds=1", { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    expect((await admin(gw, `/debug/pprof/profile?seconds=1&token=${TOKEN}`)).status).toBe(200);

    const off = scope.gateway({ admin: { listen_addr: "127.0.0.1:0" } });
    const res = await admin(off, "/debug/pprof/profile?seconds=1");
    expect(res.status).toBe(404);
    expect(await res.text()).toContain("admin.debug_token");
  });

  test("bad seconds are answered 400 naming the parameter and the range; none means Go's 30", async () => {
    const { gw } = await gatewayWithTraffic();
    for (const bad of ["0", "301", "-5", "1.5", "abc", "1e2"]) {
      const res = await admin(gw, `/debug/pprof/profile?seconds=${bad}`, withToken);
      expect(res.status).toBe(400);
      expect(await res.text()).toBe(`seconds: expected a whole number of seconds from 1 to 300, got "${bad}"\n`);
    }
    // No seconds: a 30 s profile, which the next request finds running.
    const thirty = await runningProfile(gw, 30);
    expect(await thirty.refusal.text()).toContain("(30 s, started");
    await thirty.stop();
  });

  test("one at a time: a second request while one runs gets 409; the slot frees when the first ends or its client leaves", async () => {
    const { gw, clients } = await gatewayWithTraffic();
    const first = await runningProfile(gw, 60);
    expect(first.refusal.status).toBe(409);
    expect(first.refusal.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await first.refusal.text()).toMatch(/^a CPU profile is already running \(60 s, started .+\); one runs at a time, retry when it ends\n$/);

    // The operator gives up (Ctrl-C): the 60 s profile stops, and the next one can start.
    await first.stop();
    const next = admin(gw, "/debug/pprof/profile?seconds=1", withToken);
    await driveTraffic(clients, next);
    expect((await next).status).toBe(200);
  });

  test("one profile per process: a second gateway in it is refused while the first's runs; stopping the first frees it", async () => {
    const a = await gatewayWithTraffic();
    const b = await gatewayWithTraffic();
    const first = await runningProfile(a.gw, 60);
    const refused = await admin(b.gw, "/debug/pprof/profile?seconds=1", withToken);
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain("(60 s, started");

    await a.gw.stop();
    const next = admin(b.gw, "/debug/pprof/profile?seconds=1", withToken);
    await driveTraffic(b.clients, next);
    expect((await next).status).toBe(200);
    await first.stop(); // settles the first request, already ended by the stop
  });

  test("the admin idle timeout does not cut a profile that outlasts it", async () => {
    const be = await scope.backend();
    const gw = scope.gateway({
      admin: { listen_addr: "127.0.0.1:0", debug_token: TOKEN, idle_timeout: "500ms" },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const res = await admin(gw, "/debug/pprof/profile?seconds=2", withToken);
    expect(res.status).toBe(200);
    expect(decodePprof(new Uint8Array(await res.arrayBuffer())).durationNanos).toBeGreaterThanOrEqual(2e9);
  });

  test("under bun --cpu-prof the endpoint refuses (409) rather than empty the whole-run profile written at exit", async () => {
    const be = await scope.backend();
    const dir = mkdtempSync(join(tmpdir(), "gw-cpu-prof-"));
    const cfg = join(dir, "gw.yaml");
    writeFileSync(
      cfg,
      [
        // One process, so the one .cpuprofile in dir is the gateway's (a group writes one per process).
        'server: { listen_addr: "127.0.0.1:0", workers: 1 }',
        `admin: { listen_addr: "127.0.0.1:0", debug_token: "${TOKEN}" }`,
        "graceful_shutdown_timeout: 1s",
        `routing: { rules: [{ server_type: ${T}, endpoints: ["127.0.0.1:${be.port}"] }] }`,
      ].join("\n"),
    );
    const proc = Bun.spawn([process.execPath, "--cpu-prof", `--cpu-prof-dir=${dir}`, MAIN, "--config", cfg], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    scope.defer(() => void proc.kill("SIGKILL"));
    const [, port, adminPort] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)".*"admin_port":(\d+)/);
    const clients = await Promise.all([0, 1].map(() => GameClient.connect("127.0.0.1", Number(port))));
    const pending = fetch(`http://127.0.0.1:${adminPort}/debug/pprof/profile?seconds=1`, withToken);
    await driveTraffic(clients, pending);
    const res = await pending;
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("runs under bun --cpu-prof");
    // Keep the whole-run profiler busy a while longer, then let it write its file.
    await driveTraffic(clients, Bun.sleep(1000));
    for (const c of clients) c.close();
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    expect(file).toBeDefined();
    const whole = JSON.parse(readFileSync(join(dir, file!), "utf8")) as { nodes: { callFrame: { url: string } }[] };
    expect(whole.nodes.some((n) => n.callFrame.url.endsWith("/src/net/tcp-listener.ts"))).toBe(true);
  });

  test("/debug/pprof/heap says there is none under Bun and where the heap snapshot is", async () => {
    const { gw } = await gatewayWithTraffic();
    const res = await admin(gw, "/debug/pprof/heap", withToken);
    expect(res.status).toBe(501);
    expect(await res.text()).toContain("GET /debug/heap");
    expect((await admin(gw, "/debug/pprof/heap")).status).toBe(401);
  });
});

/**
 * Starts a profile of `seconds` and returns once the gateway is running it, shown by a second
 * request being refused. Either request may reach the gateway first; when the probe does, it runs
 * (and the long one is refused or abandoned), so start over.
 */
async function runningProfile(gw: TestGateway, seconds: number): Promise<{ refusal: Response; stop: () => Promise<void> }> {
  for (;;) {
    const controller = new AbortController();
    const long = admin(gw, `/debug/pprof/profile${seconds === 30 ? "" : `?seconds=${seconds}`}`, { ...withToken, signal: controller.signal }).catch(() => null);
    const probe = await admin(gw, "/debug/pprof/profile?seconds=1", withToken);
    const stop = async (): Promise<void> => {
      controller.abort();
      await long;
    };
    if (probe.status === 409) return { refusal: probe, stop };
    expect(probe.status).toBe(200);
    await probe.arrayBuffer();
    await stop();
  }
}
