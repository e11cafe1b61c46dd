// The group's admin port over a real group of 2 workers run from source: merged counters never go
// backwards (a worker restarted, or silent past the scrape's bound), /api/status merges every
// worker's figures, and the supervisor's own process shows in /metrics.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { workerOfSessionId } from "../../src/session/session-id.ts";
import { startReferenceBackend, type ReferenceBackend } from "../support/reference-backend.ts";
import { eventually, str, text } from "../support/harness.ts";
import { parseExposition, samplesOf, sumOf } from "../support/prom-text.ts";
import { groupConfig, scrapeGroup, startGroupProcess, type StartedGroup } from "../support/worker-group.ts";

const root = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "gw-group-admin-"));
const procs: Subprocess[] = [];
let backend: ReferenceBackend;
beforeAll(() => {
  backend = startReferenceBackend();
});
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  backend.stop();
});

type Group = StartedGroup;

function startGroup(name: string): Promise<Group> {
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(cfg, groupConfig(backend.port));
  return startGroupProcess([process.execPath, join(root, "src/cli/main.ts"), "--config", cfg], dir, procs);
}

/** Clients that each round-tripped once, until both workers have at least `each`. */
async function clientsOnBoth(g: Group, each: number): Promise<{ client: GameClient; worker: number }[]> {
  const clients: { client: GameClient; worker: number }[] = [];
  const on = (w: number) => clients.filter((c) => c.worker === w).length;
  for (let i = 0; i < 200 && (on(0) < each || on(1) < each); i++) {
    const client = await GameClient.connect("127.0.0.1", g.port);
    client.send(1, serverIdFor(10), text(`p${i}`));
    expect(str((await client.next()).body)).toBe(`p${i}`);
    clients.push({ client, worker: workerOfSessionId(backend.sessions.at(-1)!, 2) });
  }
  expect([on(0) >= each, on(1) >= each]).toEqual([true, true]);
  return clients;
}

const scrape = scrapeGroup;

/** The summed series a dashboard rate()s: each must never fall between two scrapes. */
function counters(e: ReturnType<typeof parseExposition>) {
  return {
    connections: sumOf(e, "game_gateway_connections_total"),
    messagesIn: sumOf(e, "game_gateway_messages_processed_total", { direction: "client_to_backend" }),
    latencyCount: sumOf(e, "game_gateway_backend_connection_latency_seconds_count"),
  };
}

test("merged counters never go backwards: a worker killed and restarted, then a worker silent past the scrape's bound", async () => {
  const g = await startGroup("counters");
  const clients = await clientsOnBoth(g, 2);
  const n = clients.length;
  const before = counters(await scrape(g.adminPort));
  expect(before.connections).toBe(n);
  expect(before.messagesIn).toBe(n);

  // kill -9 worker 1; its replacement starts its counters at 0, the group's sums do not.
  const from = g.out.stdout.length;
  process.kill(g.pids[1]!, "SIGKILL");
  const back = await g.out.logLine("worker ready", 30_000, from);
  expect(back.worker).toBe(1);
  await eventually(async () => samplesOf(await scrape(g.adminPort), "game_gateway_worker_up").every((s) => s.value === 1), "both workers answering");
  const afterRestart = await scrape(g.adminPort);
  expect(sumOf(afterRestart, "game_gateway_worker_restarts_total")).toBe(1);
  const restarted = counters(afterRestart);
  expect(restarted.connections).toBeGreaterThanOrEqual(before.connections);
  expect(restarted.messagesIn).toBeGreaterThanOrEqual(before.messagesIn);
  expect(restarted.latencyCount).toBeGreaterThanOrEqual(before.latencyCount);

  // A new connection after the restart is counted on top.
  const more = await GameClient.connect("127.0.0.1", g.port);
  more.send(1, serverIdFor(10), text("more"));
  expect(str((await more.next()).body)).toBe("more");
  const plusOne = counters(await scrape(g.adminPort));
  expect(plusOne.connections).toBe(restarted.connections + 1);

  // Worker 0 stopped past the 2 s bound: left out of this scrape (worker_up 0), its counters carried.
  process.kill(g.pids[0]!, "SIGSTOP");
  try {
    const silent = await scrape(g.adminPort);
    expect(samplesOf(silent, "game_gateway_worker_up", { worker: "0" }).map((s) => s.value)).toEqual([0]);
    const carried = counters(silent);
    expect(carried.connections).toBeGreaterThanOrEqual(plusOne.connections);
    expect(carried.messagesIn).toBeGreaterThanOrEqual(plusOne.messagesIn);
    expect(carried.latencyCount).toBeGreaterThanOrEqual(plusOne.latencyCount);
    // Gauges of the silent worker are omitted, not carried: only worker 1's live connections count.
    expect(sumOf(silent, "game_gateway_connections_active")).toBeLessThan(clients.length);
  } finally {
    process.kill(g.pids[0]!, "SIGCONT");
  }
  expect(counters(await scrape(g.adminPort)).connections).toBe(plusOne.connections);
  more.close();
  for (const c of clients) c.client.close();
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
}, 90_000);

test("/api/status merges every worker's figures: backend rows summed by endpoint, latency the slowest worker's with counts summed", async () => {
  const g = await startGroup("status");
  const clients = await clientsOnBoth(g, 2);
  const n = clients.length;
  type Latency = { p50_ms: number | null; p99_ms: number | null; count: number };
  type Status = {
    connections: number;
    messages: { in: number };
    backends: { endpoint: string; connections_open: number; sessions: number; breaker: string; reachable: boolean }[];
    routes: { server_type: number; endpoints: number; reachable: number }[];
    latency: { upstream: Latency; downstream: Latency };
    buffers: { outstanding: number } | null;
    workers: { connections: number; latency: { upstream: Latency } }[];
  };
  const status = async (): Promise<Status> => (await (await fetch(`http://127.0.0.1:${g.adminPort}/api/status`)).json()) as Status;
  // The backend holds one connection per session (per_session), whichever worker dialled it.
  await eventually(async () => (await status()).backends[0]?.connections_open === n, `${n} backend connections across both workers`);
  const s = await status();
  expect(s.connections).toBe(n);
  expect(s.backends).toHaveLength(1);
  expect(s.backends[0]).toMatchObject({ endpoint: `127.0.0.1:${backend.port}`, connections_open: n, sessions: n, breaker: "closed", reachable: true });
  expect(s.routes).toEqual([expect.objectContaining({ server_type: 10, endpoints: 1, reachable: 1 })]);
  // Each worker timed its own messages; the group's count is all of them, its quantiles the slowest worker's.
  expect(s.workers.map((w) => w.latency.upstream.count).every((c) => c > 0)).toBe(true);
  expect(s.latency.upstream.count).toBe(s.workers.reduce((t, w) => t + w.latency.upstream.count, 0));
  expect(s.latency.upstream.count).toBe(s.messages.in);
  expect(s.latency.upstream.p99_ms).toBe(Math.max(...s.workers.map((w) => w.latency.upstream.p99_ms ?? 0)));
  expect(s.buffers).not.toBeNull();
  for (const c of clients) c.client.close();
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
}, 90_000);

test("the supervisor's own process is in the group's /metrics, labelled worker=\"supervisor\" beside each worker's", async () => {
  const g = await startGroup("own-process");
  const text = await (await fetch(`http://127.0.0.1:${g.adminPort}/metrics`)).text();
  const e = parseExposition(text); // also: one HELP and TYPE per family, or it would not parse as one
  for (const family of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "nodejs_eventloop_lag_seconds", "game_gateway_process_resident_memory_bytes"]) {
    expect([family, new Set(samplesOf(e, family).map((s) => s.labels.worker))]).toEqual([family, new Set(["0", "1", "supervisor"])]);
  }
  expect(samplesOf(e, "process_resident_memory_bytes", { worker: "supervisor" })[0]!.value).toBeGreaterThan(0);
  // Its start time is the supervisor's (the oldest of the three processes), not a worker's.
  const started = (w: string) => samplesOf(e, "process_start_time_seconds", { worker: w })[0]!.value;
  expect(started("supervisor")).toBeLessThanOrEqual(Math.min(started("0"), started("1")));
  // Nothing of the supervisor's is summed into the gateway's own counters.
  expect(samplesOf(e, "game_gateway_connections_total").every((s) => s.labels.worker === undefined)).toBe(true);
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
}, 60_000);
