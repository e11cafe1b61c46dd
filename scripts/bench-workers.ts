// Workers benchmark: workload b of scripts/bench-e2e.ts (1,000 clients, closed loop, 4 frames in
// flight each, 64-byte bodies) against the gateway with server.workers 1 and 2, interleaved
// (1 2 2 1 1 2 ...) so load from other processes hits both alike, the generator on the same cores.
//
//   bun scripts/bench-workers.ts [--rounds N] [--seconds S] [--workers 1,2]
//
// CPU is utime+stime from /proc of the supervisor and every worker (its children), summed, read
// before the load tester starts and after it exits, divided by the round trips it received; the
// demo echo backend's and the load generator's CPU are reported beside it, and the machine's busy
// share, so the competition for the cores shows.
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { withTwoDashFlags } from "../src/cli/args.ts";

process.env.NODE_ENV = "production";
const ROOT = resolve(import.meta.dir, "..");
const BUN = process.execPath;
const CLI = join(ROOT, "src/cli/main.ts");
const HOST = "127.0.0.1";
const CLK_TCK = 100;

const argv = withTwoDashFlags(process.argv.slice(2));
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
};
const ROUNDS = Number(flag("rounds") ?? 3);
const SECONDS = Number(flag("seconds") ?? 10);
const COUNTS = (flag("workers") ?? "1,2").split(",").map(Number);

function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function machineBusy(): { busy: number; total: number } {
  const v = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - v[3]! - v[4]!) / CLK_TCK, total: total / CLK_TCK };
}

async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

async function waitForLine(proc: Bun.Subprocess<"ignore", "pipe", "inherit">, pattern: RegExp, timeoutMs: number): Promise<void> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before ${pattern}:\n${text}`);
    text += decoder.decode(value);
    if (pattern.test(text)) {
      reader.releaseLock();
      void proc.stdout.pipeTo(new WritableStream()); // keep draining
      return;
    }
  }
  throw new Error(`no ${pattern} within ${timeoutMs} ms`);
}

interface Run {
  workers: number;
  round: number;
  rtPerS: number;
  received: number;
  gatewayCpu: number;
  backendCpu: number;
  generatorCpu: number;
  machineBusyShare: number;
  p99Ms: number;
}

async function runOnce(workers: number, round: number, backendPort: number, backendPid: number, dir: string): Promise<Run> {
  const port = await freePort();
  const cfg = join(dir, `gw-${workers}.yaml`);
  writeFileSync(
    cfg,
    [
      `server: { listen_addr: "${HOST}:${port}", health_check_port: -1, gateway_name: bench-workers, workers: ${workers} }`,
      "connection_pool: { max_connections: 100000 }",
      "security: { max_connections_per_ip: 1000000, connection_rate_limit: 1000000 }",
      `routing: { rules: [{ server_type: 10, endpoints: ["${HOST}:${backendPort}"] }] }`,
      'log: { level: info, access_log: "off" }',
      "graceful_shutdown_timeout: 2s",
    ].join("\n"),
  );
  const gw = Bun.spawn([BUN, CLI, "--config", cfg], { cwd: ROOT, stdout: "pipe", stderr: "inherit", stdin: "ignore", env: { ...process.env, LOG_LEVEL: "info" } });
  // One process logs "gateway listening"; a group's supervisor logs "gateway group listening" once all workers are.
  await waitForLine(gw, workers > 1 ? /"gateway group listening"/ : /"gateway listening"/, 30_000);
  await Bun.sleep(1000); // backend connections open
  const pids = [gw.pid, ...childrenOf(gw.pid)];
  const cpu = () => pids.reduce((t, p) => t + cpuSeconds(p), 0);
  const g0 = cpu();
  const b0 = cpuSeconds(backendPid);
  const m0 = machineBusy();
  const gen = Bun.spawn(
    [BUN, CLI, "loadtest", "-host", HOST, "-port", String(port), "-server-type", "10", "-connections", "1000", "-duration", `${SECONDS}s`, "-rate", "0", "--in-flight", "4", "-message-size", "64", "--json"],
    { cwd: ROOT, stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(gen.stdout).text();
  await gen.exited;
  const g1 = cpu();
  const b1 = cpuSeconds(backendPid);
  const m1 = machineBusy();
  gw.kill("SIGTERM");
  await gw.exited;
  const j = JSON.parse(out.slice(out.indexOf("{"))) as { elapsedSeconds: number; messages: { received: number }; throughput: { messagesPerSecond: number }; latencyMs: { p99: number } };
  const ru = gen.resourceUsage();
  return {
    workers,
    round,
    rtPerS: j.throughput.messagesPerSecond,
    received: j.messages.received,
    gatewayCpu: g1 - g0,
    backendCpu: b1 - b0,
    generatorCpu: ru === undefined ? 0 : Number(ru.cpuTime.total) / 1e6,
    machineBusyShare: (m1.busy - m0.busy) / (m1.total - m0.total),
    p99Ms: j.latencyMs.p99,
  };
}

const dir = mkdtempSync(join(tmpdir(), "bench-workers-"));
const backendPort = await freePort();
const backend = Bun.spawn([BUN, CLI, "demo-backend", "--port", String(backendPort)], { cwd: ROOT, stdout: "pipe", stderr: "inherit" });
await waitForLine(backend, /listening/, 15_000);
const runs: Run[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? COUNTS : [...COUNTS].reverse();
    for (const n of order) {
      const run = await runOnce(n, r, backendPort, backend.pid, dir);
      runs.push(run);
      console.error(
        `round ${r} workers ${n}: ${Math.round(run.rtPerS)} rt/s, gateway ${((run.gatewayCpu * 1e6) / run.received).toFixed(1)} µs CPU/rt, ` +
          `gateway ${(run.gatewayCpu / SECONDS).toFixed(2)} cores, backend ${(run.backendCpu / SECONDS).toFixed(2)}, generator ${(run.generatorCpu / SECONDS).toFixed(2)}, machine busy ${(run.machineBusyShare * 100).toFixed(0)}%`,
      );
    }
  }
} finally {
  backend.kill("SIGTERM");
}

const summary = COUNTS.map((n) => {
  const rs = runs.filter((r) => r.workers === n);
  const received = rs.reduce((t, r) => t + r.received, 0);
  const rates = rs.map((r) => r.rtPerS);
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const spread = (Math.max(...rates) - Math.min(...rates)) / mean;
  return {
    workers: n,
    rtPerS: mean,
    rtSpread: spread,
    gatewayCpuUsPerRt: (rs.reduce((t, r) => t + r.gatewayCpu, 0) * 1e6) / received,
    backendCpuUsPerRt: (rs.reduce((t, r) => t + r.backendCpu, 0) * 1e6) / received,
    generatorCpuUsPerRt: (rs.reduce((t, r) => t + r.generatorCpu, 0) * 1e6) / received,
    p99Ms: rs.map((r) => r.p99Ms),
    machineBusy: rs.map((r) => Math.round(r.machineBusyShare * 100)),
  };
});
const base = summary[0]!;
console.log("workers | rt/s (spread) | vs 1 | gateway µs CPU/rt | vs 1 | backend µs/rt | generator µs/rt | machine busy %");
for (const s of summary) {
  console.log(
    `${s.workers} | ${Math.round(s.rtPerS)} (±${(s.rtSpread * 50).toFixed(0)}%) | ${(s.rtPerS / base.rtPerS).toFixed(2)} | ${s.gatewayCpuUsPerRt.toFixed(1)} | ${(s.gatewayCpuUsPerRt / base.gatewayCpuUsPerRt).toFixed(2)} | ${s.backendCpuUsPerRt.toFixed(1)} | ${s.generatorCpuUsPerRt.toFixed(1)} | ${s.machineBusy.join(", ")}`,
  );
}
console.log(JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, runs, summary }, null, 2));
