// Garbage-collector pauses in workload c, and what they do to its tail latency. Runs the
// gateway (its own process, `bun src/cli/main.ts`, in front of the demo backend) or the bare Bun
// echo server under `game-gateway loadtest` at c's shape, with JavaScriptCore's GC log on
// (BUN_JSC_logGC=1), and reports per run: collections per second (eden and full), their pauses
// (median, p99, max, total per second of wall time), the measured process's cores, and the load
// tester's p50/p99/p99.9 and errors.
//
//   bun bench/gc-pauses.ts                                   # gateway, 5,000 clients, 20 s, 2 rounds
//   bun bench/gc-pauses.ts --targets gateway,direct --variants "default;BUN_JSC_largeHeapSize=67108864"
//
// --variants: environments to compare, `;`-separated, each `default` or `K=V[,K=V]`; every round
// runs each (target, variant) once, in reverse order on even rounds (A B B A ...), so a burst of
// outside load lands on all of them.
//
// The log line of each collection ("[GC<...>: START ... => EdenCollection, ... p=1.14ms ...]") gives
// its kind and pause. A pause delays every frame that arrives meanwhile; when pauses take more
// than 1% of wall time, they alone can set p99.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flagValue, withTwoDashFlags } from "../src/cli/args.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = join(ROOT, "src/cli/main.ts");
const ECHO = join(ROOT, "bench/e2e/echo-server.ts");
const HOST = "127.0.0.1";

const argv = withTwoDashFlags(process.argv.slice(2));
const arg = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const targets = arg("targets", "gateway").split(",");
const variants = arg("variants", "default").split(";");
const clients = Number(arg("clients", "5000"));
const rate = Number(arg("rate", "10"));
const size = Number(arg("message-size", "1024"));
const seconds = Number(arg("seconds", "20"));
const rounds = Number(arg("rounds", "2"));
const jsonOut = arg("json", "");

function envOf(variant: string): Record<string, string> {
  if (variant === "default") return {};
  const env: Record<string, string> = {};
  for (const kv of variant.split(",")) {
    const at = kv.indexOf("=");
    env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return env;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, in CLK_TCK (100/s)
}

/** Collects a child's output, resolving the first match of `ready` on stdout. */
function spawnWatched(cmd: string[], env: Record<string, string>, ready: RegExp | null) {
  const proc = Bun.spawn(cmd, { cwd: ROOT, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  let err = "";
  let resolveReady: (m: RegExpMatchArray) => void = () => {};
  const readyP = new Promise<RegExpMatchArray>((r) => (resolveReady = r));
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) add(dec.decode(chunk, { stream: true }));
  };
  const outDone = pump(proc.stdout, (s) => {
    out += s;
    const m = ready === null ? null : out.match(ready);
    if (m !== null) resolveReady(m);
  });
  const errDone = pump(proc.stderr, (s) => (err += s));
  return { proc, ready: readyP, output: async () => (await Promise.all([outDone, errDone]), { out, err }), text: () => ({ out, err }) };
}

/** A port free a moment ago (the gateway binds it from its config file). */
function freePort(): number {
  const l = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

interface RunRow {
  round: number;
  target: string;
  variant: string;
  edenPerS: number;
  fullPerS: number;
  pauseMedianMs: number;
  pauseP99Ms: number;
  pauseMaxMs: number;
  pausedMsPerS: number;
  cores: number;
  rtPerS: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  errorKinds: string;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function run(round: number, target: string, variant: string): Promise<RunRow> {
  const dir = mkdtempSync(join(tmpdir(), "gc-pauses-"));
  const env = { ...envOf(variant), BUN_JSC_logGC: "1" };
  let backend: ReturnType<typeof spawnWatched> | null = null;
  let server: ReturnType<typeof spawnWatched>;
  let port: number;
  if (target === "direct") {
    server = spawnWatched([process.execPath, ECHO, "--host", HOST, "--port", "0"], env, /listening [\d.]+:(\d+)/);
    port = Number((await server.ready)[1]);
  } else {
    backend = spawnWatched([process.execPath, CLI, "demo-backend", "--host", HOST, "--port", "0"], {}, /demo backend listening on [\d.]+:(\d+)/);
    const backendPort = Number((await backend.ready)[1]);
    port = freePort();
    const cfg = join(dir, "gateway.yaml");
    writeFileSync(
      cfg,
      `server: { listen_addr: "${HOST}:${port}", health_check_port: -1, gateway_name: gc-pauses }
connection_pool: { max_connections: 20000 }
security: { max_connections_per_ip: 1000000, connection_rate_limit: 1000000 }
routing:
  rules:
    - { server_type: 10, service_name: echo, strategy: round_robin, endpoints: ["${HOST}:${backendPort}"] }
log: { level: warn, access_log: "off" }
`,
    );
    server = spawnWatched(["sh", "-c", `ulimit -n 20000 2>/dev/null; exec "$0" "$@"`, process.execPath, CLI, "--config", cfg], env, null);
    // The gateway logs JSON on stdout; wait for its port instead.
    for (let i = 0; i < 200; i++) {
      try {
        const s = await Bun.connect({ hostname: HOST, port, socket: { data() {} } });
        s.end();
        break;
      } catch {
        await Bun.sleep(50);
      }
    }
    await Bun.sleep(500);
  }
  const lt = spawnWatched(
    ["sh", "-c", `ulimit -n 20000 2>/dev/null; exec "$0" "$@"`, process.execPath, CLI, "loadtest", "-host", HOST, "-port", String(port), "-connections", String(clients), "-rate", String(rate), "-message-size", String(size), "-duration", `${seconds}s`, "--ramp", "2500", "--processes", "2", "--json", "--max-error-rate", "1"],
    {},
    null,
  );
  // Steady window: from 30% to 90% of the run, as bench-e2e's "cores".
  await Bun.sleep(seconds * 300);
  const gcTextAt = server.text().err.length;
  const t0 = performance.now();
  const c0 = cpuTicks(server.proc.pid);
  await Bun.sleep(seconds * 600);
  const c1 = cpuTicks(server.proc.pid);
  const wall = (performance.now() - t0) / 1000;
  const gcText = server.text().err.slice(gcTextAt);
  await lt.proc.exited;
  const { out } = await lt.output();
  server.proc.kill();
  backend?.proc.kill();
  await server.proc.exited;
  await backend?.proc.exited;
  rmSync(dir, { recursive: true, force: true });
  const pauses: number[] = [];
  let eden = 0;
  let full = 0;
  for (const m of gcText.matchAll(/=> (EdenCollection|FullCollection).*?p=([\d.]+)ms/g)) {
    if (m[1] === "EdenCollection") eden++;
    else full++;
    pauses.push(Number(m[2]));
  }
  pauses.sort((a, b) => a - b);
  const j = JSON.parse(out.slice(out.indexOf("{"))) as {
    throughput: { messagesPerSecond: number };
    latencyMs: { p50: number; p99: number; p999: number };
    errors: Record<string, number>;
  };
  return {
    round,
    target,
    variant,
    edenPerS: eden / wall,
    fullPerS: full / wall,
    pauseMedianMs: quantile(pauses, 0.5),
    pauseP99Ms: quantile(pauses, 0.99),
    pauseMaxMs: pauses.at(-1) ?? 0,
    pausedMsPerS: pauses.reduce((a, b) => a + b, 0) / wall,
    cores: (c1 - c0) / 100 / wall,
    rtPerS: j.throughput.messagesPerSecond,
    p50: j.latencyMs.p50,
    p99: j.latencyMs.p99,
    p999: j.latencyMs.p999,
    errors: j.errors.total ?? 0,
    errorKinds: Object.entries(j.errors).filter(([k, v]) => k !== "total" && v > 0).map(([k, v]) => `${k} ${v}`).join(", "),
  };
}

const rows: RunRow[] = [];
const combos = targets.flatMap((t) => variants.map((v) => [t, v] as const));
for (let r = 1; r <= rounds; r++) {
  for (const [t, v] of r % 2 === 1 ? combos : [...combos].reverse()) {
    const row = await run(r, t, v);
    rows.push(row);
    const f = (n: number, d = 2) => n.toFixed(d);
    console.log(
      `round ${r} ${t} [${v}]: eden ${f(row.edenPerS, 1)}/s full ${f(row.fullPerS, 2)}/s pause med ${f(row.pauseMedianMs)} p99 ${f(row.pauseP99Ms)} max ${f(row.pauseMaxMs)} ms, paused ${f(row.pausedMsPerS, 1)} ms/s; ` +
        `${f(row.cores, 3)} cores; ${f(row.rtPerS, 0)} rt/s p50 ${f(row.p50, 3)} p99 ${f(row.p99, 3)} p99.9 ${f(row.p999, 3)} ms, ${row.errors} errors ${row.errorKinds}`,
    );
  }
}
if (jsonOut !== "") writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
