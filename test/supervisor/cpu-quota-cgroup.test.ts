// The default worker count inside a real cgroup with a CPU quota of 1.5 CPUs: the gateway
// (src/cli/main.ts, server.workers: 0) is started in it and must run 2 workers (1.5 rounded up),
// say why on its start line and in /api/status, and keep its workers in the cgroup; with 0.5 CPUs,
// one process whose start line says why. Needs a cgroup this test can
// create (root, and a writable cgroup v1 cpu controller or v2 with cpu in the parent's
// cgroup.subtree_control); skipped, saying why, where there is none.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ChildOutput, eventually } from "../support/harness.ts";
import { startReferenceBackend, type ReferenceBackend } from "../support/reference-backend.ts";
import { groupConfig, serves } from "../support/worker-group.ts";

const root = join(import.meta.dir, "../..");

interface TestCgroup {
  readonly dir: string;
  readonly setQuota: (quota: number, period: number) => void;
}

/** A new cgroup under this process's own one in the cpu hierarchy, or why there cannot be one. */
function makeCgroup(name: string): TestCgroup | string {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root: cannot create a cgroup";
  // coreutils' nproc counts the affinity mask: with one CPU, 1 worker is the answer with or without a quota.
  const cpus = Number(Bun.spawnSync(["nproc"]).stdout.toString());
  if (!(cpus >= 2)) return `${cpus} CPU: a quota of 1.5 would not change the count`;
  const own = readFileSync("/proc/self/cgroup", "utf8").split("\n");
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" "));
  const fsOf = (f: string[]) => f.slice(f.indexOf("-", 6) + 1);
  // A v1 hierarchy holding cpu, as the kernel lists it for this process and mounts it.
  const v1Line = own.find((l) => l.split(":")[1]?.split(",").includes("cpu"));
  const v1Mount = mounts.find((f) => fsOf(f)[0] === "cgroup" && fsOf(f)[2]?.split(",").includes("cpu") && f[3] === "/");
  const v2Line = own.find((l) => l.startsWith("0::"));
  const v2Mount = mounts.find((f) => fsOf(f)[0] === "cgroup2" && f[3] === "/");
  let dir: string;
  let setQuota: (quota: number, period: number) => void;
  if (v1Line !== undefined && v1Mount !== undefined) {
    dir = join(v1Mount[4]!, v1Line.split(":").slice(2).join(":"), name);
    setQuota = (quota, period) => {
      writeFileSync(join(dir, "cpu.cfs_period_us"), String(period));
      writeFileSync(join(dir, "cpu.cfs_quota_us"), String(quota));
    };
  } else if (v2Line !== undefined && v2Mount !== undefined) {
    const parent = join(v2Mount[4]!, v2Line.slice(3));
    const controllers = existsSync(join(parent, "cgroup.subtree_control")) ? readFileSync(join(parent, "cgroup.subtree_control"), "utf8") : "";
    if (!controllers.split(/\s+/).includes("cpu")) return `cgroup v2 without the cpu controller in ${parent}/cgroup.subtree_control`;
    dir = join(parent, name);
    setQuota = (quota, period) => writeFileSync(join(dir, "cpu.max"), `${quota} ${period}`);
  } else {
    return "no cpu controller mounted (cgroup v1 cpu or cgroup v2)";
  }
  try {
    mkdirSync(dir);
  } catch (e) {
    return `cannot create ${dir}: ${(e as Error).message}`;
  }
  return { dir, setQuota };
}

/** Whether the cgroup is gone (EBUSY while a process is still in it). */
function removed(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT";
  }
}

const cgroup = makeCgroup(`gw-quota-test-${process.pid}`);
if (typeof cgroup === "string") console.warn(`skipping the real-cgroup test: ${cgroup}`);
const canRun = typeof cgroup !== "string";

const procs: Subprocess[] = [];
let backend: ReferenceBackend;
beforeAll(() => {
  backend = startReferenceBackend();
});
afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  backend.stop();
  // A cgroup is removed once no process is left in it (the workers die with their supervisor).
  if (typeof cgroup !== "string") await eventually(() => removed(cgroup.dir), `${cgroup.dir} removed`);
});

/** The gateway (server.workers: 0) started inside the cgroup, and its start line (the supervisor's, or the single process's). */
async function startInCgroup(group: TestCgroup): Promise<{ proc: Subprocess; started: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), "gw-quota-"));
  const cfg = join(dir, "gateway.yaml");
  writeFileSync(cfg, groupConfig(backend.port, { workers: 0 }));
  // The shell moves itself into the cgroup, then becomes the gateway: every process it starts is born there.
  const proc = Bun.spawn(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group.dir, process.execPath, join(root, "src/cli/main.ts"), "--config", cfg], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  procs.push(proc);
  const out = new ChildOutput(proc);
  // One worker is a single process ("gateway listening", no worker field), more a group: either line ends the wait.
  const [line] = await out.line(/^\{(?![^\n]*"worker":)[^\n]*"body":"gateway (group )?listening"[^\n]*$/m, 30_000);
  return { proc, started: JSON.parse(line) as Record<string, unknown> };
}

test.skipIf(!canRun)("in a cgroup with a CPU quota of 1.5 CPUs, server.workers: 0 starts 2 workers and says why", async () => {
  const group = cgroup as TestCgroup;
  group.setQuota(150_000, 100_000);
  const { proc, started } = await startInCgroup(group);
  expect(started.body).toBe("gateway group listening");
  expect(started.workers).toBe(2);
  expect(started.workers_reason).toMatch(/^CPU quota 1\.5 of \d+ CPUs$/);
  const pids = started.pids as number[];
  expect(pids).toHaveLength(2);
  // The workers run inside the quota, beside their supervisor.
  const members = readFileSync(join(group.dir, "cgroup.procs"), "utf8").split("\n").map(Number);
  expect(members).toEqual(expect.arrayContaining([proc.pid, ...pids]));
  const status = (await (await fetch(`http://127.0.0.1:${String(started.admin_port)}/api/status`)).json()) as Record<string, unknown>;
  expect(status.workers_reason).toBe(started.workers_reason);
  expect(status.workers).toHaveLength(2);
  expect(await serves(Number(String(started.listen).split(":").at(-1)), 10)).toBe(true);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
}, 60_000);

test.skipIf(!canRun)("with a quota of half a CPU, one process, whose start line says why", async () => {
  const group = cgroup as TestCgroup;
  group.setQuota(50_000, 100_000);
  const { proc, started } = await startInCgroup(group);
  expect(started.body).toBe("gateway listening");
  expect(started.workers).toBe(1);
  expect(started.workers_reason).toMatch(/^CPU quota 0\.5 of \d+ CPUs$/);
  expect(await serves(Number(String(started.listen).split(":").at(-1)), 10)).toBe(true);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
}, 60_000);
