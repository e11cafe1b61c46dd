// A group's config and its stop, run for real (the supervisor and its workers from source): a worker
// that restarts runs the config the group has in force, not the file on disk; an edit followed by
// SIGHUP validates and applies once; the supervisor exits even when a worker is hung; a second
// group cannot start on a port the first serves; no log line repeats a key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { startReferenceBackend, type ReferenceBackend } from "../support/reference-backend.ts";
import { eventually, str, text } from "../support/harness.ts";
import { parseExposition, samplesOf } from "../support/prom-text.ts";
import { alive, groupConfig, serves, startGroupProcess } from "../support/worker-group.ts";

const root = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "gw-group-config-"));
const procs: Subprocess[] = [];
/** Every worker pid seen: a test that fails with a worker stopped (SIGSTOP) must not leave it behind. */
const workerPids: number[] = [];
let backend: ReferenceBackend;
beforeAll(() => {
  backend = startReferenceBackend();
});
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  for (const pid of workerPids) if (alive(pid)) process.kill(pid, "SIGKILL");
  backend.stop();
});

function configText(listen = "127.0.0.1:0", extra: string[] = []): string {
  return groupConfig(backend.port, { listen, extra, drainDelay: "0s", gracefulShutdown: "1s" });
}

const route15 = () => `    - { server_type: 15, endpoints: ["127.0.0.1:${backend.port}"] }`;

async function startGroup(name: string, contents: string) {
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(cfg, contents);
  const g = await startGroupProcess([process.execPath, join(root, "src/cli/main.ts"), "--config", cfg], dir, procs);
  workerPids.push(...g.pids);
  return { cfg, ...g };
}

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function configVersions(adminPort: number): Promise<number[]> {
  const e = parseExposition(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text());
  return ["0", "1"].map((w) => samplesOf(e, "game_gateway_config_version", { worker: w })[0]?.value ?? -1);
}

/** The top-level keys of a one-line JSON object that appear more than once (JSON.parse keeps the last silently). */
function duplicateKeys(line: string): string[] {
  const seen = new Set<string>();
  const dup: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
    else if (ch === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === "\\" ? 2 : 1;
      const s = line.slice(i + 1, j);
      if (depth === 1 && line[j + 1] === ":") {
        if (seen.has(s)) dup.push(s);
        seen.add(s);
      }
      i = j;
    }
  }
  return dup;
}

test("a worker restarted after a refused reload runs the config in force; a reload while one restarts is applied, and it starts on it; versions stay aligned", async () => {
  const g = await startGroup("refused", configText());
  // An invalid file: refused by the supervisor, once.
  writeFileSync(g.cfg, configText() + "\nbogus_key: 1\n");
  g.proc.kill("SIGHUP");
  await g.out.logLine("config reload refused; previous config stays in force", 15_000);
  // Killed now, the worker must come back on the config in force, not crash on the file.
  let from = g.out.stdout.length;
  process.kill(g.pids[1]!, "SIGKILL");
  expect(await g.out.logLine("worker ready", 30_000, from)).toMatchObject({ worker: 1, config_version: 1 });
  await Bun.sleep(500);
  expect(g.out.logRecords("worker died; restarting it")).toHaveLength(1);
  expect(g.out.stderr).not.toContain("bogus_key");
  expect((await fetch(`http://127.0.0.1:${g.adminPort}/ready`)).status).toBe(200);

  // A valid reload that lands while worker 1 restarts: applied, not "refused"; worker 1 runs it too.
  from = g.out.stdout.length;
  writeFileSync(g.cfg, configText("127.0.0.1:0", [route15()]));
  process.kill(g.pids[0]!, "SIGKILL");
  await g.out.logLine("worker died; restarting it", 15_000, from);
  g.proc.kill("SIGHUP");
  const supervisorSays = () => g.out.logRecords("config reloaded").filter((r) => r.role === "supervisor");
  await eventually(() => supervisorSays().length > 0, "the supervisor's reload record");
  const reloaded = supervisorSays()[0]!;
  expect(reloaded.version).toBe(2);
  expect(reloaded.versions).toContain("pending");
  expect(g.out.logRecords("config reload refused by some workers; they keep their previous config")).toEqual([]);
  await g.out.logLine("worker ready", 30_000, from);
  await eventually(async () => JSON.stringify(await configVersions(g.adminPort)) === "[2,2]", "both workers on config_version 2");
  for (let i = 0; i < 8; i++) expect(await serves(g.port, 15)).toBe(true);
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
}, 60_000);

test("after a reload that needs a restart (listen_addr), a restarted worker keeps the old listen_addr like its sibling", async () => {
  const [oldPort, newPort] = [freePort(), freePort()];
  const g = await startGroup("listen", configText(`127.0.0.1:${oldPort}`));
  writeFileSync(g.cfg, configText(`127.0.0.1:${newPort}`));
  g.proc.kill("SIGHUP");
  expect((await g.out.logLine("config keys changed that need a restart; old values kept", 15_000)).keys).toEqual(["server.listen_addr"]);
  const from = g.out.stdout.length;
  process.kill(g.pids[1]!, "SIGKILL");
  const listening = await g.out.logLine("gateway listening", 30_000, from);
  expect(listening).toMatchObject({ worker: 1, listen: `127.0.0.1:${oldPort}` });
  await g.out.logLine("worker ready", 30_000, from);
  expect(await serves(newPort, 10)).toBe(false);
  for (let i = 0; i < 4; i++) expect(await serves(oldPort, 10)).toBe(true);
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
}, 60_000);

test("an edit followed by SIGHUP is validated and applied once, and the workers' records say what asked", async () => {
  const g = await startGroup("dedupe", configText());
  writeFileSync(g.cfg, configText("127.0.0.1:0", [route15()]));
  g.proc.kill("SIGHUP");
  await g.out.logLine("config reloaded", 15_000);
  // The file watcher sees the same edit: give it time to fire, then count.
  await Bun.sleep(1500);
  const supervisorRecords = g.out.logRecords("config reloaded").filter((r) => r.role === "supervisor");
  expect(supervisorRecords).toHaveLength(1);
  const workerRecords = g.out.logRecords("config reloaded").filter((r) => r.role !== "supervisor");
  expect(workerRecords).toHaveLength(2);
  for (const r of workerRecords) expect(r.source).toBe(supervisorRecords[0]!.source);
  expect(JSON.stringify(await configVersions(g.adminPort))).toBe("[2,2]");

  // An invalid edit and SIGHUP: one refusal.
  writeFileSync(g.cfg, readFileSync(g.cfg, "utf8").replace("graceful_shutdown_timeout: 1s", "graceful_shutdown_timeout: soon"));
  g.proc.kill("SIGHUP");
  await g.out.logLine("config reload refused; previous config stays in force", 15_000);
  await Bun.sleep(1500);
  expect(g.out.logRecords("config reload refused; previous config stays in force")).toHaveLength(1);

  // Logged at all: no line of the group repeats a key (a worker's lines carry `worker` once).
  g.proc.kill("SIGKILL");
  await eventually(() => g.pids.every((pid) => !alive(pid)), "the workers to exit after their supervisor");
  await g.proc.exited;
  const lines = g.out.stdout.split("\n").filter((l) => l.startsWith("{"));
  const gone = lines.filter((l) => l.includes('"supervisor gone; worker exiting"'));
  expect(gone.length).toBeGreaterThan(0);
  expect(lines.flatMap((l) => duplicateKeys(l).map((k) => `${k} in ${l}`))).toEqual([]);
}, 60_000);

test("access-log records of a worker carry `worker`", async () => {
  const g = await startGroup("access", configText());
  const c = await GameClient.connect("127.0.0.1", g.port);
  c.send(1, serverIdFor(10), text("hello"));
  expect(str((await c.next()).body)).toBe("hello");
  c.close();
  // The drain writes out the batched records (rather than waiting for the 5 s flush).
  g.proc.kill("SIGTERM");
  expect(await g.proc.exited).toBe(0);
  await g.out.ended;
  const records = g.out.logRecords("access_log");
  expect(records.length).toBeGreaterThan(0);
  for (const r of records) expect([0, 1]).toContain(r.worker as number);
}, 60_000);

test("SIGTERM with a stopped worker: the supervisor kills it after drain_delay + graceful_shutdown_timeout + the margin, and exits 1", async () => {
  const g = await startGroup("hung-drain", configText());
  process.kill(g.pids[0]!, "SIGSTOP");
  g.proc.kill("SIGTERM");
  const killed = await g.out.logLine("worker did not exit in time; killing it", 20_000);
  expect(killed).toMatchObject({ worker: 0, pid: g.pids[0], phase: "drain" });
  expect(await g.proc.exited).toBe(1);
  for (const pid of g.pids) expect(alive(pid)).toBe(false);
}, 60_000);

test("a second SIGTERM kills a stopped worker at once (after the 1 s the others get to write out their logs)", async () => {
  const g = await startGroup("hung-second", configText());
  process.kill(g.pids[0]!, "SIGSTOP");
  g.proc.kill("SIGTERM");
  await g.out.logLine("draining every worker", 10_000);
  g.proc.kill("SIGTERM");
  expect(await g.out.logLine("worker did not exit in time; killing it", 10_000)).toMatchObject({ worker: 0, phase: "exit now" });
  expect(await g.proc.exited).toBe(1);
  for (const pid of g.pids) expect(alive(pid)).toBe(false);
}, 60_000);

test("a second group on the listen_addr a group already serves fails to start, naming the key", async () => {
  const port = freePort();
  const a = await startGroup("first", configText(`127.0.0.1:${port}`));
  const cfg = join(dir, "second.yaml");
  writeFileSync(cfg, configText(`127.0.0.1:${port}`));
  const b = Bun.spawn([process.execPath, join(root, "src/cli/main.ts"), "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  procs.push(b);
  expect(await b.exited).toBe(1);
  expect(await new Response(b.stderr).text()).toContain(`server.listen_addr 127.0.0.1:${port}: address already in use`);
  expect(await serves(port, 10)).toBe(true);
  a.proc.kill("SIGTERM");
  expect(await a.proc.exited).toBe(0);
}, 60_000);
