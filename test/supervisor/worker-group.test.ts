// A group of worker processes (server.workers: 2) run for real: from source and through the built
// binary. The kernel spreads clients over both workers (SO_REUSEPORT); the session IDs a backend
// sees name the worker; a worker killed with SIGKILL is restarted while the other's players carry
// on; SIGHUP reloads every worker with one validation; SIGTERM drains them all and exits 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { workerOfSessionId } from "../../src/session/session-id.ts";
import { startReferenceBackend, type ReferenceBackend } from "../support/reference-backend.ts";
import { eventually, str, text } from "../support/harness.ts";
import { samplesOf, sumOf } from "../support/prom-text.ts";
import { alive, groupConfig, scrapeGroup, serves, startGroupProcess } from "../support/worker-group.ts";

const root = join(import.meta.dir, "../..");
const binary = join(root, "dist/game-gateway");
const dir = mkdtempSync(join(tmpdir(), "gw-workers-"));

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
}, 120_000);

const procs: Subprocess[] = [];
let backend: ReferenceBackend;
beforeAll(() => {
  backend = startReferenceBackend();
});
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  backend.stop();
});

const ways = {
  source: (cfg: string) => [process.execPath, join(root, "src/cli/main.ts"), "--config", cfg],
  binary: (cfg: string) => [binary, "--config", cfg],
};

/** A client that has round-tripped once, and the worker its session is on (from the ID the backend saw). */
async function connectOne(port: number, name: string): Promise<{ client: GameClient; worker: number }> {
  const client = await GameClient.connect("127.0.0.1", port);
  client.send(1, serverIdFor(10), text(name));
  expect(str((await client.next()).body)).toBe(name);
  return { client, worker: workerOfSessionId(backend.sessions.at(-1)!, 2) };
}

async function roundTrips(client: GameClient, body: string): Promise<boolean> {
  client.send(2, serverIdFor(10), text(body));
  return client.next(3000).then((f) => str(f.body) === body, () => false);
}

for (const [way, command] of Object.entries(ways)) {
  describe(`a group of 2 workers (${way})`, () => {
    test("both take clients; a killed worker is restarted, the other's players carry on; SIGHUP reloads all; SIGTERM drains and exits 0", async () => {
      const cfg = join(dir, `${way}.yaml`);
      writeFileSync(cfg, groupConfig(backend.port));
      const group = await startGroupProcess(command(cfg), dir, procs);
      const { proc, out } = group;
      const port = group.port;
      const pids = group.pids;
      const adminPort = group.adminPort;
      expect(pids).toHaveLength(2);

      // The kernel spreads connections over the workers roughly, not in turn: connect until both have some.
      const clients: { client: GameClient; worker: number }[] = [];
      for (let i = 0; i < 64 && new Set(clients.map((c) => c.worker)).size < 2; i++) clients.push(await connectOne(port, `player ${i}`));
      expect(new Set(clients.map((c) => c.worker))).toEqual(new Set([0, 1]));
      expect(new Set(backend.sessions).size).toBe(backend.sessions.length);

      // One admin port for the group: /metrics merges both workers' series and parses as Prometheus text.
      const merged = await scrapeGroup(adminPort);
      expect(sumOf(merged, "game_gateway_connections_total")).toBe(clients.length);
      expect(sumOf(merged, "game_gateway_connections_active")).toBe(clients.length);
      expect(sumOf(merged, "game_gateway_messages_processed_total", { direction: "client_to_backend" })).toBe(clients.length);
      expect(new Set(samplesOf(merged, "process_cpu_seconds_total").map((s) => s.labels.worker))).toEqual(new Set(["0", "1", "supervisor"]));
      expect(samplesOf(merged, "game_gateway_worker_up").map((s) => s.value)).toEqual([1, 1]);
      expect(sumOf(merged, "game_gateway_worker_restarts_total")).toBe(0);
      const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { workers: unknown[] }).workers).toHaveLength(2);
      expect((await fetch(`http://127.0.0.1:${adminPort}/health`)).status).toBe(200);
      const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as { sessions: number; workers: { pid: number; sessions: number }[] };
      expect(status.workers.map((w) => w.pid)).toEqual(pids);
      expect(status.sessions).toBe(clients.length);
      expect(status.workers.map((w) => w.sessions)).toEqual([0, 1].map((i) => clients.filter((c) => c.worker === i).length));

      // SIGKILL worker 1: the supervisor restarts it; worker 0's players never notice.
      const onZero = clients.filter((c) => c.worker === 0);
      const onOne = clients.filter((c) => c.worker === 1);
      const from = out.stdout.length;
      process.kill(pids[1]!, "SIGKILL");
      const died = await out.logLine("worker died; restarting it", 15_000, from);
      expect(died).toMatchObject({ worker: 1, signal: "SIGKILL", restarts: 1 });
      const back = await out.logLine("worker ready", 30_000, from);
      expect(back.worker).toBe(1);
      expect(back.pid).not.toBe(pids[1]);
      for (const [i, c] of onZero.entries()) expect(await roundTrips(c.client, `still here ${i}`)).toBe(true);
      expect(samplesOf(await scrapeGroup(adminPort), "game_gateway_worker_restarts_total", { worker: "1" }).map((s) => s.value)).toEqual([1]);
      for (const c of onOne) await c.client.closed;
      // New clients reach the restarted worker too.
      const again: { client: GameClient; worker: number }[] = [];
      for (let i = 0; i < 64 && !again.some((c) => c.worker === 1); i++) again.push(await connectOne(port, `new player ${i}`));
      expect(again.some((c) => c.worker === 1)).toBe(true);

      // SIGHUP with a valid file: one validation in the supervisor, every worker serves the new route.
      expect(await serves(port, 15)).toBe(false);
      const valid = readFileSync(cfg, "utf8") + `\n    - { server_type: 15, endpoints: ["127.0.0.1:${backend.port}"] }\n`;
      writeFileSync(cfg, valid);
            proc.kill("SIGHUP");
      // Each worker logs its own "config reloaded"; the supervisor's names every worker's version.
      await eventually(() => out.logRecords("config reloaded").some((r) => r.role === "supervisor"), "the supervisor's reload record");
      const summary = out.logRecords("config reloaded").find((r) => r.role === "supervisor")!;
      expect(summary.versions).toEqual([2, 2]);
      for (let i = 0; i < 8; i++) expect(await serves(port, 15)).toBe(true);

      // SIGHUP with an invalid file: refused once, by the supervisor; every worker keeps the old config.
      writeFileSync(cfg, valid.replace("graceful_shutdown_timeout: 2s", "graceful_shutdown_timeout: soon"));
      const beforeBad = out.stdout.length;
      proc.kill("SIGHUP");
      const refused = await out.logLine("config reload refused; previous config stays in force", 15_000, beforeBad);
      expect(refused.role).toBe("supervisor");
      expect(String(refused.error)).toContain("graceful_shutdown_timeout");
      // (The file watcher may refuse the same file once more, source "file": still the supervisor, never a worker.)
      await Bun.sleep(300);
      expect(out.logRecords("config reload refused; previous config stays in force").filter((r) => r.role !== "supervisor")).toEqual([]);
      for (let i = 0; i < 4; i++) expect(await serves(port, 15)).toBe(true);

      // SIGTERM: every worker drains; the supervisor exits 0 once all have.
      const workerPids = [pids[0]!, back.pid as number];
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      for (const pid of workerPids) expect(alive(pid)).toBe(false);
      expect(out.logRecords("worker died; restarting it")).toHaveLength(1);
    }, 120_000);
  });
}

test("workers do not outlive their supervisor", async () => {
  const cfg = join(dir, "orphans.yaml");
  writeFileSync(cfg, groupConfig(backend.port));
  const group = await startGroupProcess(ways.source(cfg), dir, procs);
  const { proc } = group;
  const pids = group.pids;
  proc.kill("SIGKILL");
  await eventually(() => pids.every((pid) => !alive(pid)), "both workers to exit after the supervisor was killed");
}, 60_000);

test("a worker that does not answer in time is left out of /metrics and flagged; /health and /ready name it; after 3 unanswered pings it is killed and restarted", async () => {
  const cfg = join(dir, "stopped.yaml");
  writeFileSync(cfg, groupConfig(backend.port));
  const group = await startGroupProcess(ways.source(cfg), dir, procs);
  const { proc, out } = group;
  const pids = group.pids;
  const adminPort = group.adminPort;
  const from = out.stdout.length;
  process.kill(pids[0]!, "SIGSTOP");
  // All at once: each waits out the 2 s answer deadline, and the watchdog kills the worker about 6 s after the stop.
  const [e, health, ready, status] = await Promise.all([
    scrapeGroup(adminPort),
    fetch(`http://127.0.0.1:${adminPort}/health`),
    fetch(`http://127.0.0.1:${adminPort}/ready`),
    fetch(`http://127.0.0.1:${adminPort}/api/status`),
  ]);
  expect(samplesOf(e, "game_gateway_worker_up", { worker: "0" }).map((s) => s.value)).toEqual([0]);
  expect(samplesOf(e, "game_gateway_worker_up", { worker: "1" }).map((s) => s.value)).toEqual([1]);
  expect(new Set(samplesOf(e, "process_cpu_seconds_total").map((s) => s.labels.worker))).toEqual(new Set(["1", "supervisor"]));
  expect(health.status).toBe(503);
  expect(JSON.stringify(await health.json())).toContain("worker 0 did not answer within 2000 ms");
  expect(ready.status).toBe(503);
  expect(((await ready.json()) as { reason: string }).reason).toContain("worker 0 did not answer");
  const body = (await status.json()) as { ready: boolean; not_ready_reason: string; workers: { answered: boolean }[] };
  expect(body).toMatchObject({ ready: false, not_ready_reason: "worker 0 did not answer within 2000 ms" });
  expect(body.workers.map((w) => w.answered)).toEqual([false, true]);

  // The watchdog: a worker that leaves its liveness pings unanswered is killed (SIGKILL works on a
  // stopped process) and restarted, and counted as a restart.
  const killed = await out.logLine("worker unresponsive; killing it", 15_000, from);
  expect(killed).toMatchObject({ worker: 0, pid: pids[0], unanswered_pings: 3 });
  expect(await out.logLine("worker died; restarting it", 15_000, from)).toMatchObject({ worker: 0, signal: "SIGKILL" });
  const back = await out.logLine("worker ready", 30_000, from);
  expect(back.worker).toBe(0);
  expect(alive(pids[0]!)).toBe(false);
  expect((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status).toBe(200);
  expect(samplesOf(await scrapeGroup(adminPort), "game_gateway_worker_restarts_total", { worker: "0" }).map((s) => s.value)).toEqual([1]);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
}, 60_000);

// The status page at / of the group's admin port: a Workers panel, a row per worker with its pid
// and sessions, in a real headless Chromium (skipped without one, as test/admin/status-page.test.ts).
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
(existsSync(CHROMIUM) ? test : test.skip)("the status page shows each worker: pid, state, sessions, restarts", async () => {
  const cfg = join(dir, "page.yaml");
  writeFileSync(cfg, groupConfig(backend.port));
  const group = await startGroupProcess(ways.source(cfg), dir, procs);
  const { proc } = group;
  const pids = group.pids;
  const port = group.port;
  const clients: { client: GameClient; worker: number }[] = [];
  for (let i = 0; i < 64 && new Set(clients.map((c) => c.worker)).size < 2; i++) clients.push(await connectOne(port, `page player ${i}`));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"], timeout: 30_000 });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${group.adminPort}/`);
    await page.locator("#workers-panel").waitFor({ state: "visible", timeout: 15_000 });
    const rows = page.locator("tr[data-testid=worker-row]");
    await eventually(async () => (await rows.count()) === 2, "two worker rows");
    for (const i of [0, 1]) {
      const row = page.locator(`tr[data-testid=worker-row][data-worker="${i}"]`);
      expect(await row.getByTestId("worker-pid").getAttribute("data-value")).toBe(String(pids[i]));
      expect(await row.getByTestId("worker-state").getAttribute("data-value")).toBe("running");
      expect(await row.getByTestId("worker-restarts").getAttribute("data-value")).toBe("0");
      expect(Number(await row.getByTestId("worker-sessions").getAttribute("data-value"))).toBe(clients.filter((c) => c.worker === i).length);
    }
    expect(Number(await page.getByTestId("sessions").getAttribute("data-value"))).toBe(clients.length);
    // The latency quantiles are the slowest worker's, and the page says so.
    expect(await page.getByTestId("latency-merged").getAttribute("data-value")).toContain("slowest worker");
    expect(Number(await page.locator("tr[data-testid=backend-row]").getByTestId("backend-sessions").getAttribute("data-value"))).toBe(clients.length);
  } finally {
    await browser.close();
    for (const c of clients) c.client.close();
    proc.kill("SIGTERM");
    await proc.exited;
  }
}, 90_000);

// Per-IP limits hold for the machine: the kernel spreads one address's connections over both
// workers, and the supervisor's one count admits max_connections_per_ip of them in all.
for (const [way, command] of Object.entries(ways)) {
  test(`max_connections_per_ip 3 over 2 workers admits exactly 3 of 8 connections from one address; a dead worker's share is freed (${way})`, async () => {
    const cfg = join(dir, `per-ip-${way}.yaml`);
    writeFileSync(cfg, groupConfig(backend.port).replace("max_connections_per_ip: 100000", "max_connections_per_ip: 3"));
    const group = await startGroupProcess(command(cfg), dir, procs);
    const { proc, out } = group;
    const port = group.port;
    const pids = group.pids;
    const adminPort = group.adminPort;

    /** Connects n clients at once; the ones that round-trip were admitted, each with the worker its session is on. */
    const attempt = async (n: number, tag: string): Promise<{ client: GameClient; worker: number }[]> => {
      // A refused connection is reset at once: sometimes before the client's connect has even returned.
      const tries = await Promise.allSettled(Array.from({ length: n }, () => GameClient.connect("127.0.0.1", port)));
      const clients = tries.flatMap((t) => (t.status === "fulfilled" ? [t.value] : []));
      const ok = await Promise.all(clients.map((c, i) => roundTrips(c, `${tag} ${i}`)));
      for (const [i, c] of clients.entries()) if (!ok[i]) c.close();
      return clients.flatMap((client, i) => (ok[i] ? [{ client, worker: workerOfSessionId(backend.sessionOf(`${tag} ${i}`)!, 2) }] : []));
    };

    const first = await attempt(8, "first");
    expect(first).toHaveLength(3);
    const e = await scrapeGroup(adminPort);
    expect(sumOf(e, "game_gateway_connection_rejected_total", { reason: "ip_rate_limit" })).toBe(5);
    expect(sumOf(e, "game_gateway_connection_refusals_total", { refusal: "per_ip_limit" })).toBe(5);

    // A worker killed with its players: the supervisor frees what it held, so as many new ones get in.
    const victim = first[0]!.worker;
    const lost = first.filter((c) => c.worker === victim).length;
    const from = out.stdout.length;
    process.kill(pids[victim]!, "SIGKILL");
    await out.logLine("worker died; restarting it", 15_000, from);
    for (const c of first.filter((c) => c.worker === victim)) await c.client.closed;
    // Back to two listeners first: a SYN the kernel hashed to the killed worker's socket as it closed is reset.
    await out.logLine("worker ready", 30_000, from);
    const second = await attempt(8, "second");
    expect(second).toHaveLength(lost);

    // Players who leave free their places too.
    for (const c of [...first, ...second]) c.client.close();
    await eventually(async () => (await attempt(1, "probe")).length === 1, "a place freed by players who left");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  }, 90_000);
}
