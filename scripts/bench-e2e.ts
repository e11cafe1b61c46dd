// End-to-end benchmark: the same client workload, from the project's own load tester, against
// the gateway and its peers on this machine's loopback, in one run, with ratios.
//
//   bun scripts/bench-e2e.ts [--quick] [--json FILE] [--targets direct,haproxy,nginx,gateway,...]
//                            [--workloads a,b,c,d,e,f] [--profile | --no-profile] [--profile-workload a|b|c]
//                            [--profile-dir DIR] [--heavy N]
//                            [--syscalls | --no-syscalls] [--rounds N] [--c-ramp R] [--idle N]
//                            [--fixed-rates 25000,50000] [--fixed-bodies 64,1024] [--fixed-clients 1000]
//                            [--keep-temp]
//
// Targets
//   direct   clients -> bench/e2e/echo-server.ts (a plain Bun TCP echo server): the floor.
//   haproxy  clients -> HAProxy (TCP mode, nbthread 1, no logging) -> another echo server.
//            Skipped, with a message, when no haproxy is on PATH or at /usr/sbin/haproxy
//            ($BENCH_E2E_HAPROXY overrides the binary; "none" skips it).
//   nginx    clients -> nginx's stream proxy (one process, epoll, tcp_nodelay, no access log;
//            bench/e2e/nginx.ts) -> another echo server. Skipped, with a message, when nginx or
//            its stream module is missing ($BENCH_E2E_NGINX overrides the binary; "none" skips it).
//            HAProxy and nginx are the peers: the gateway is compared with the better of the two
//            on each figure ("best peer"), and the table names which one that was.
//   gateway-ws, gateway-ws-sniffed, gateway-tls  (only when named in --targets; a, b and f only)
//            the gateway reached by WebSocket clients on its dedicated listener (server.ws_listen_addr),
//            by WebSocket clients on its TCP port (server.sniff_websocket), or by TLS clients on
//            its TCP port (server.tls.*, a self-signed certificate made by openssl in the temp dir);
//            the load tester's --ws / --tls. Compared with the plain TCP gateway in the same run.
//   gateway  clients -> this gateway (one process, `bun src/cli/main.ts --config <temp yaml>`)
//            -> the demo echo backend (`bun src/cli/main.ts demo-backend`), multiplexed.
//   gateway-grpc  (only when named in --targets) the same gateway with server.use_grpc: true ->
//            a gRPC echo backend under Node (bench/e2e/grpc-echo-server.mjs, one StreamPackets stream).
//            The load tester addresses server type 0, so the ServerID it checks in replies is the 0 a
//            gRPC packet (which has no ServerID) gives. `--targets gateway,gateway-grpc --workloads a,b`
//            compares the gateway's CPU per round trip with gRPC and with TCP backends.
//   gateway-otel  (only when named in --targets) the same gateway with span export on:
//            OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP/gRPC receiver in a process of its own
//            (bench/e2e/otlp-sink.ts). `--targets gateway,gateway-otel --workloads a` measures
//            the cost of export: CPU per round trip with export on vs off, in one run.
//   gateway-base  (only when named in --targets, with --base-root DIR) the gateway of another
//            checkout (DIR/src/cli/main.ts, e.g. `git worktree add DIR 637012f` with node_modules
//            linked), same config, same demo backend (this tree's): `--targets gateway,gateway-base
//            --workloads a,b --base-root DIR` compares two versions' CPU per round trip, interleaved.
// Every target returns each client frame unchanged (same MessageID, ServerID and body), so the
// load tester's byte-for-byte reply check holds for all three.
//
// Workloads (the load tester, `bun src/cli/main.ts loadtest ... --json`, drives a-c)
//   a  100 clients, closed loop, 1 frame in flight each, 64-byte bodies
//   b  1,000 clients, closed loop, 4 in flight each, 64-byte bodies
//   c  5,000 clients, open loop, 10 frames/s each, 1,024-byte bodies (the guide's typical traffic),
//      connecting at --c-ramp per second (2,500: 2 s). All 5,000 dials at once (--c-ramp 0)
//      overflow a Bun listener's accept queue (kernel ListenOverflows, 1 s SYN retransmits) for
//      every target, direct included, and that, not the steady traffic, then sets p99.
//   d  capacity: RSS of the proxy process with 0 and with 15,000 idle clients
//      (bench/e2e/idle-clients.ts; gateway clients send one frame each so they hold a session)
//   f  equal offered load: open loop at each of --fixed-rates round trips/s in total (1,000 clients
//      x rate/1,000 each), with each of --fixed-bodies, through every target; CPU per round trip
//      and p50/p99 at the same load. A run whose generator could not send the offered rate, or
//      used about a core, is labelled GEN (generator-limited), here and in the JSON.
// Open loop (c, f): the offered rate counts the ramp (connection i starts at i / ramp seconds,
// bench/e2e/offered-load.ts), and each result carries the generator's pacing lateness
// (generatorPacing); a p99 over 5 ms is labelled GEN too: the generator sent bursts.
//   e  noisy neighbour (gateway only): one quiet client (64-byte round trips, one every 10 ms,
//      from this process) alone, then beside --heavy N clients (the load tester, 4 frames of
//      60,000 bytes in flight each: 240 KB writes in a loop) on the same shared backend
//      connection; the quiet client's p50/p99 in both phases and their ratio.
// Each of a-c and f runs against every target in turn (a: direct, haproxy, nginx, gateway; then b;
// ...; even rounds, and every other f run, in reverse order), so load from other processes on the
// machine hits all targets alike; a and b run --rounds times (2 by default, 1 with --quick) and are
// pooled (mean rate and latency; total CPU / total round trips). d starts each target afresh.
//
// CPU: utime+stime from /proc/PID/stat of the proxy process (HAProxy, nginx or the gateway) and of the
// echo server / demo backend, read before the load tester starts and after it exits, divided by
// the round trips it received: CPU per round trip (connection setup and teardown included).
// "cores" is the same counter over the steady middle of the run (30%..90% of the duration)
// divided by that wall time. The load generator's own CPU (wait4 rusage, workers included) and
// the machine-wide busy time (/proc/stat) are recorded so the load from other processes shows.
//
//      HAProxy needs two descriptors per client: where the open-files limit cannot be raised
//      (no CAP_SYS_RESOURCE) its run holds as many clients as fit, and says so.
//
// --quick: 5-8 s runs, one round, 5,000 idle clients, no profile or census (about 2 minutes).
// Default (full: direct, haproxy, nginx, gateway; a-f): about 15 minutes on 2 cores; the
// WebSocket and TLS targets add about 1.5 minutes each.
// --profile (default in a full run): one more workload-b run (--profile-workload picks another)
// against a fresh gateway started under `bun --cpu-prof`; the top functions by self time are printed and stored in the JSON.
//
// --syscalls (default in a full run, when `perf stat` works here): after a-c, each of them
// again, shorter, against each target with `perf stat` counting the syscalls of the proxy and
// the backend over the steady window: syscalls per round trip (perf costs CPU, so these runs
// are kept out of the CPU and throughput figures).
//
// Results: a table on stdout and JSON in bench/e2e/results-<date>[-quick].json (or --json FILE).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { withTwoDashFlags } from "../src/cli/args.ts";
import { GameClient, serverIdFor } from "../src/client/game-client.ts";
import { findNginx, nginxCommand, nginxConfig, type NginxInstall } from "../bench/e2e/nginx.ts";
import { offeredPerSecond as rampedOfferedPerSecond } from "../bench/e2e/offered-load.ts";

// Measure what ships: the release build sets NODE_ENV=production, which drops the development
// invariant checks (src/invariant.ts); the gateway, backend and load tester inherit this.
process.env.NODE_ENV = "production";

const ROOT = resolve(import.meta.dir, "..");
const BUN = process.execPath;
const CLI = join(ROOT, "src/cli/main.ts");
const ECHO = join(ROOT, "bench/e2e/echo-server.ts");
const IDLE = join(ROOT, "bench/e2e/idle-clients.ts");
const HOST = "127.0.0.1";
/** File descriptors asked for every child (15,000 idle clients need ~30,000 in HAProxy). */
const NOFILE = 65536;

type TargetName =
  | "direct" | "haproxy" | "nginx" | "gateway"
  | "gateway-otel" | "gateway-grpc" | "gateway-ws" | "gateway-ws-sniffed" | "gateway-tls" | "gateway-base";
type LoadId = "a" | "b" | "c" | "f";
type WorkloadId = LoadId | "d" | "e";
/** The default targets; the other gateway variants run only when --targets names them. */
const TARGETS: readonly TargetName[] = ["direct", "haproxy", "nginx", "gateway"];
const ALL_TARGETS: readonly TargetName[] = [...TARGETS, "gateway-otel", "gateway-grpc", "gateway-ws", "gateway-ws-sniffed", "gateway-tls", "gateway-base"];
/** What an operations team would put in front of game servers instead: the gateway is held against the better of them on each figure. */
const PEERS: readonly TargetName[] = ["haproxy", "nginx"];
/** The gateway reached over another client transport than plain TCP: run in a, b and f only (not c, d). */
const CLIENT_TRANSPORTS: readonly TargetName[] = ["gateway-ws", "gateway-ws-sniffed", "gateway-tls"];
const isGateway = (t: TargetName): boolean => t.startsWith("gateway");
/** Whether a target takes part in a workload (the client-transport variants skip c's 5,000 clients and d's idle holder, which speaks TCP). */
const runsIn = (t: TargetName, w: WorkloadId): boolean => !CLIENT_TRANSPORTS.includes(t) || w === "a" || w === "b" || w === "f";
/** The gateway-grpc target's route and load: server type 0, so a reply's ServerID (0 from a gRPC packet) matches what was sent. */
const GRPC_SERVER_TYPE = 0;
const DEFAULT_SERVER_TYPE = 10;
const WORKLOADS: readonly WorkloadId[] = ["a", "b", "c", "d", "e", "f"];

// --- options ---------------------------------------------------------------------------------

const USAGE = `bun scripts/bench-e2e.ts [--quick] [--json FILE]
                         [--targets direct,haproxy,nginx,gateway,gateway-otel,gateway-grpc,gateway-ws,gateway-ws-sniffed,gateway-tls,gateway-base]
                         [--base-root DIR]
                         [--workloads a,b,c,d,e,f] [--profile | --no-profile] [--profile-workload a|b|c]
                         [--profile-dir DIR] [--syscalls | --no-syscalls] [--rounds N] [--c-ramp R] [--idle N] [--heavy N]
                         [--fixed-rates R,R] [--fixed-bodies B,B] [--fixed-clients N] [--keep-temp]`;

interface Options {
  quick: boolean;
  jsonPath: string;
  targets: TargetName[];
  workloads: WorkloadId[];
  profile: boolean;
  /** Which load workload the profile run repeats (b by default). */
  profileWorkload: "a" | "b" | "c";
  profileDir: string | null;
  syscalls: boolean;
  /** Rounds of a and b (each round runs every target once). */
  rounds: number;
  /** Workload c: connections opened per second (0 = all 5,000 at once). */
  cRamp: number;
  idle: number;
  /** Workload e: heavy clients beside the quiet one. */
  heavy: number;
  /** Workload f: the offered round trips per second (all clients together), each run with each body size. */
  fixedRates: number[];
  fixedBodies: number[];
  fixedClients: number;
  keepTemp: boolean;
  /** Target gateway-base: the checkout whose gateway it runs. */
  baseRoot: string | null;
}

function profileWorkload(v: string): "a" | "b" | "c" {
  if (v !== "a" && v !== "b" && v !== "c") throw new Error(`--profile-workload: "${v}" is not one of a, b, c`);
  return v;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
    return v;
  };
  const known = new Set([
    "--quick", "--json", "--targets", "--workloads", "--profile", "--no-profile", "--profile-workload", "--profile-dir", "--idle", "--keep-temp",
    "--syscalls", "--no-syscalls", "--rounds", "--c-ramp", "--heavy", "--fixed-rates", "--fixed-bodies", "--fixed-clients", "--base-root", "--help", "--h",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!known.has(a)) throw new Error(`unknown argument "${a}"`);
    if (["--json", "--targets", "--workloads", "--profile-workload", "--profile-dir", "--idle", "--rounds", "--c-ramp", "--heavy", "--fixed-rates", "--fixed-bodies", "--fixed-clients", "--base-root"].includes(a)) i++;
  }
  if (argv.includes("--help") || argv.includes("--h")) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = argv.includes("--quick");
  const list = <T extends string>(name: string, all: readonly T[]): T[] => {
    const v = value(name);
    if (v === undefined) return [...all];
    const got = v.split(",").map((s) => s.trim()) as T[];
    for (const g of got) if (!all.includes(g)) throw new Error(`${name}: "${g}" is not one of ${all.join(", ")}`);
    return all.filter((t) => got.includes(t));
  };
  const date = new Date().toISOString().slice(0, 10);
  const idle = Number(value("--idle") ?? (quick ? 5000 : 15000));
  if (!Number.isInteger(idle) || idle < 1) throw new Error("--idle must be a positive integer");
  const rounds = Number(value("--rounds") ?? (quick ? 1 : 2));
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error("--rounds must be 1..10");
  const heavy = Number(value("--heavy") ?? 4);
  if (!Number.isInteger(heavy) || heavy < 1 || heavy > 100) throw new Error("--heavy must be 1..100");
  const cRamp = Number(value("--c-ramp") ?? 2500);
  if (!Number.isFinite(cRamp) || cRamp < 0) throw new Error("--c-ramp must be 0 (all at once) or more");
  const numbers = (name: string, fallback: string, min: number, max: number): number[] => {
    const text = value(name) ?? fallback;
    const got = text.split(",").map((x) => Number(x.trim()));
    for (const n of got) if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}: got "${text}", expected a comma-separated list of integers ${min}..${max}`);
    return got;
  };
  const fixedRates = numbers("--fixed-rates", "25000,50000", 1, 1_000_000);
  const fixedBodies = numbers("--fixed-bodies", "64,1024", 16, 65_535);
  const fixedClients = Number(value("--fixed-clients") ?? 1000);
  if (!Number.isInteger(fixedClients) || fixedClients < 1 || fixedClients > 10_000) throw new Error(`--fixed-clients: got ${fixedClients}, expected 1..10000`);
  const baseRoot = value("--base-root") ?? null;
  const targets = value("--targets") === undefined ? [...TARGETS] : list("--targets", ALL_TARGETS);
  if (targets.includes("gateway-base") && baseRoot === null) throw new Error("--targets gateway-base needs --base-root DIR");
  if (baseRoot !== null && !existsSync(join(baseRoot, "src/cli/main.ts"))) throw new Error(`--base-root: ${baseRoot}/src/cli/main.ts does not exist`);
  return {
    quick,
    jsonPath: resolve(value("--json") ?? join(ROOT, `bench/e2e/results-${date}${quick ? "-quick" : ""}.json`)),
    targets,
    workloads: list("--workloads", WORKLOADS),
    profile: argv.includes("--profile") || (!quick && !argv.includes("--no-profile")),
    profileWorkload: profileWorkload(value("--profile-workload") ?? "b"),
    profileDir: value("--profile-dir") ?? null,
    syscalls: argv.includes("--syscalls") || (!quick && !argv.includes("--no-syscalls")),
    rounds,
    cRamp,
    idle,
    heavy,
    fixedRates,
    fixedBodies,
    fixedClients,
    keepTemp: argv.includes("--keep-temp"),
    baseRoot: baseRoot === null ? null : resolve(baseRoot),
  };
}

interface LoadWorkload {
  readonly id: LoadId;
  /** Unique per run: the id for a-c, the id with rate and body for each fixed-rate run of f ("f25k-64B"). */
  readonly key: string;
  readonly title: string;
  readonly connections: number;
  /** 0 = closed loop. */
  readonly rate: number;
  readonly inFlight: number;
  readonly messageSize: number;
  readonly seconds: number;
  /** Connections opened per second (0 = all at once). */
  readonly ramp: number;
  /** Load tester processes: one is fastest for a-b here; c needs both cores' worth of sending. */
  readonly processes: number;
}

function loadWorkloads(quick: boolean, cRamp: number): Record<"a" | "b" | "c", LoadWorkload> {
  return {
    a: { id: "a", key: "a", title: "100 clients, 1 in flight, 64 B", connections: 100, rate: 0, inFlight: 1, messageSize: 64, seconds: quick ? 5 : 15, ramp: 0, processes: 1 },
    b: { id: "b", key: "b", title: "1,000 clients, 4 in flight, 64 B", connections: 1000, rate: 0, inFlight: 4, messageSize: 64, seconds: quick ? 5 : 15, ramp: 0, processes: 1 },
    c: { id: "c", key: "c", title: "5,000 clients, 10 msg/s each (open loop), 1 KiB", connections: 5000, rate: 10, inFlight: 1, messageSize: 1024, seconds: quick ? 8 : 30, ramp: cRamp, processes: 2 },
  };
}

/**
 * f: equal offered load. Closed-loop a and b let each target run at its own saturation, so its
 * CPU per round trip depends on how hard it is driven (a lightly loaded proxy wakes more often per
 * message); here every target gets the same open-loop rate, clients x per-client rate, with each
 * body size. One load-tester process: it holds 50,000 frames/s here on about half a core, and a
 * run where it could not (sent < offered, or its CPU near a core) is labelled generator-limited.
 */
function fixedRateWorkloads(opts: Options): LoadWorkload[] {
  const out: LoadWorkload[] = [];
  for (const total of opts.fixedRates) {
    for (const body of opts.fixedBodies) {
      const perClient = total / opts.fixedClients;
      out.push({
        id: "f",
        key: `f${total % 1000 === 0 ? `${total / 1000}k` : total}-${body}B`,
        title: `${fmtInt(total)} rt/s offered (${fmtInt(opts.fixedClients)} clients x ${fmt(perClient, perClient % 1 === 0 ? 0 : 1)}/s), ${body} B`,
        connections: opts.fixedClients,
        rate: perClient,
        inFlight: 1,
        messageSize: body,
        seconds: opts.quick ? 5 : 10,
        ramp: 0,
        processes: 1,
      });
    }
  }
  return out;
}

// --- small helpers ---------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const T0 = performance.now();
function log(line: string): void {
  process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
}

function clkTck(): number {
  try {
    const r = Bun.spawnSync(["getconf", "CLK_TCK"]);
    const n = Number(r.stdout.toString().trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {}
  return 100;
}
const CLK_TCK = clkTck();

/** utime + stime of one process, in seconds (null once it is gone). */
function cpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Resident set size in bytes (VmRSS). */
function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Machine-wide busy and total CPU seconds since boot (all cores). */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

/** Kernel TCP counters that show accept-queue overflows and retransmitted handshakes (machine-wide). */
const KERNEL_COUNTERS = ["ListenOverflows", "ListenDrops", "TCPSynRetrans", "TCPTimeouts", "TCPAbortOnData"];

function kernelCounters(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n").filter((l) => l.startsWith("TcpExt:"));
    const names = (lines[0] ?? "").trim().split(/\s+/);
    const values = (lines[1] ?? "").trim().split(/\s+/);
    names.forEach((n, i) => {
      if (KERNEL_COUNTERS.includes(n)) out[n] = Number(values[i]);
    });
  } catch {}
  return out;
}

function freePort(): number {
  const l = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

async function waitForPort(port: number, ms: number, alive: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (!alive()) throw new Error(`process exited before listening on ${port}`);
    try {
      const s = await Bun.connect({ hostname: HOST, port, socket: { data() {}, error() {} } });
      s.end();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listening on ${HOST}:${port} after ${ms} ms`);
}

/**
 * The open-files limit children can get: NOFILE if this process may raise its hard limit, else
 * the hard limit (a container without CAP_SYS_RESOURCE cannot go past it).
 */
function childFdLimit(): number {
  try {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync("/proc/self/limits", "utf8"));
    const hard = m === null || m[2] === "unlimited" ? NOFILE : Number(m[2]);
    if (hard >= NOFILE) return NOFILE;
    const r = Bun.spawnSync(["sh", "-c", `ulimit -n ${NOFILE} 2>/dev/null && ulimit -n`]);
    const got = Number(r.stdout.toString().trim());
    return Number.isInteger(got) && got > hard ? got : hard;
  } catch {
    return 1024;
  }
}

/** HAProxy's binary: $BENCH_E2E_HAPROXY if set ("none" = pretend it is absent), else PATH, else /usr/sbin. */
function findHaproxy(): string | null {
  const forced = process.env.BENCH_E2E_HAPROXY;
  if (forced !== undefined && forced !== "") return forced === "none" || !existsSync(forced) ? null : forced;
  const onPath = Bun.which("haproxy");
  if (onPath !== null) return onPath;
  return existsSync("/usr/sbin/haproxy") ? "/usr/sbin/haproxy" : null;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
const fmt = (n: number | null | undefined, digits = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

// --- child processes -------------------------------------------------------------------------

/** Reads a child's output line by line, keeping a tail and letting a caller wait for a line. */
class LineTap {
  readonly tail: string[] = [];
  lines = 0;
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>, private readonly keep = 30) {
    this.done = this.read(stream);
  }

  private async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of stream) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          this.onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      }
    } catch {}
    if (pending !== "") this.onLine(pending);
  }

  private onLine(line: string): void {
    this.lines++;
    this.tail.push(line);
    if (this.tail.length > this.keep) this.tail.shift();
    for (const w of [...this.waiters]) {
      const m = w.re.exec(line);
      if (m) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  waitFor(re: RegExp, ms: number): Promise<RegExpExecArray> {
    for (const line of this.tail) {
      const m = re.exec(line);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const w = { re, resolve: (m: RegExpExecArray) => (clearTimeout(t), resolve(m)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no line matching ${re} within ${ms} ms; last lines:\n${this.tail.slice(-10).join("\n")}`));
      }, ms);
      this.waiters.push(w);
    });
  }
}

/** Every child this script started; ended at exit, by pid, if still running. */
const children = new Set<Child>();

class Child {
  readonly proc: Bun.Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  readonly out: LineTap;
  readonly err: LineTap;

  constructor(
    readonly name: string,
    cmd: string[],
    opts: { stdin?: "pipe" | "ignore"; raiseFds?: boolean; keepLines?: number; env?: Record<string, string> } = {},
  ) {
    // `ulimit -n` then exec: the pid stays the child's, so /proc/PID is the measured process.
    const full = opts.raiseFds === false ? cmd : ["sh", "-c", `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`, "sh", ...cmd];
    // Always passed: Bun.spawn without env hands the child the environment this process started
    // with, not process.env as changed since, so NODE_ENV=production (set above) would not reach
    // it and the gateway would run its development checks, which the release binary does not.
    const env = { ...process.env, ...opts.env };
    this.proc = Bun.spawn({ cmd: full, cwd: ROOT, env, stdin: opts.stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
    this.out = new LineTap(this.proc.stdout, opts.keepLines);
    this.err = new LineTap(this.proc.stderr);
    children.add(this);
    void this.proc.exited.then(() => children.delete(this));
  }

  get pid(): number {
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => {
      if (this.alive) this.proc.kill("SIGKILL");
    }, graceMs);
    await this.proc.exited;
    clearTimeout(t);
  }

  lastLines(n = 8): string {
    return [...this.out.tail, ...this.err.tail].slice(-n).join("\n");
  }
}

function killAllChildren(): void {
  for (const c of children) if (c.alive) c.proc.kill("SIGKILL");
}

// --- targets ---------------------------------------------------------------------------------

interface Target {
  readonly name: TargetName;
  readonly port: number;
  /** The measured proxy process (null for direct). */
  readonly proxy: Child | null;
  /** The echo server or demo backend behind it (for direct: the echo server itself). */
  readonly backend: Child;
  readonly tempDir: string;
  /** The gateway's admin port, for /metrics (null for the others). */
  readonly adminPort: number | null;
  /** The server type the load tester addresses (the route the gateway has for it). */
  readonly serverType?: number;
  /** Load tester flags for this target's client transport (--ws, --tls). */
  readonly clientArgs?: readonly string[];
  stop(): Promise<void>;
}

async function startEcho(name: string): Promise<{ child: Child; port: number }> {
  const child = new Child(name, [BUN, ECHO, "--host", HOST, "--port", "0"]);
  const m = await child.out.waitFor(/^listening [\d.]+:(\d+)$/, 15_000);
  return { child, port: Number(m[1]) };
}

async function startDirect(tempDir: string): Promise<Target> {
  const echo = await startEcho("echo-server (direct)");
  return { name: "direct", port: echo.port, proxy: null, backend: echo.child, tempDir, adminPort: null, stop: () => echo.child.stop() };
}

function haproxyConfig(port: number, echoPort: number, maxconn: number): string {
  return `# generated by scripts/bench-e2e.ts
global
    nbthread 1
    maxconn ${maxconn}
    # no "log" line: logging is off

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m

frontend bench
    bind ${HOST}:${port}
    maxconn ${maxconn}
    default_backend echo

backend echo
    server echo ${HOST}:${echoPort} maxconn ${maxconn}
`;
}

async function startHaproxy(bin: string, tempDir: string, maxconn: number): Promise<Target> {
  const echo = await startEcho("echo-server (behind haproxy)");
  const port = freePort();
  const cfg = join(tempDir, `haproxy-${port}.cfg`);
  writeFileSync(cfg, haproxyConfig(port, echo.port, maxconn));
  return proxyTarget("haproxy", [bin, "-db", "-f", cfg], port, echo, tempDir);
}

async function startNginx(install: NginxInstall, tempDir: string, maxConnections: number): Promise<Target> {
  const echo = await startEcho("echo-server (behind nginx)");
  const port = freePort();
  const dir = join(tempDir, `nginx-${port}`);
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, "nginx.conf");
  writeFileSync(cfg, nginxConfig({ install, dir, host: HOST, port, echoPort: echo.port, maxConnections }));
  return proxyTarget("nginx", nginxCommand(install, cfg, dir), port, echo, tempDir);
}

/** A peer proxy (haproxy, nginx) started on `port` in front of its own echo server: up once the port answers. */
async function proxyTarget(name: "haproxy" | "nginx", command: string[], port: number, echo: { child: Child; port: number }, tempDir: string): Promise<Target> {
  const child = new Child(name, command);
  try {
    await waitForPort(port, 15_000, () => child.alive);
  } catch (e) {
    await echo.child.stop();
    throw new Error(`${name} did not start: ${(e as Error).message}\n${child.lastLines()}`);
  }
  return {
    name,
    port,
    proxy: child,
    backend: echo.child,
    tempDir,
    adminPort: null,
    stop: async () => {
      await child.stop();
      await echo.child.stop();
    },
  };
}

/** How the load tester reaches a gateway target: plain TCP, WebSocket (dedicated or sniffed), or TLS. */
type ClientTransport = "tcp" | "ws" | "ws-sniffed" | "tls";

function transportOf(name: TargetName): ClientTransport {
  return name === "gateway-ws" ? "ws" : name === "gateway-ws-sniffed" ? "ws-sniffed" : name === "gateway-tls" ? "tls" : "tcp";
}

/** A self-signed certificate for gateway-tls, made once per run by openssl in the temp dir. */
function benchCertificate(tempDir: string): { cert: string; key: string } {
  const cert = join(tempDir, "gateway-tls.crt");
  const key = join(tempDir, "gateway-tls.key");
  if (!existsSync(cert)) {
    const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=bench-e2e"], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl could not make the gateway-tls certificate: ${r.stderr.toString()}`);
  }
  return { cert, key };
}

interface GatewayListeners {
  port: number;
  adminPort: number;
  /** The dedicated WebSocket listener's port (transport ws). */
  wsPort: number | null;
  /** PEM files for server.tls (transport tls). */
  tls: { cert: string; key: string } | null;
}

function gatewayConfig(l: GatewayListeners, backendPort: number, maxConnections: number, grpc = false): string {
  return `# generated by scripts/bench-e2e.ts
server:
  listen_addr: "${HOST}:${l.port}"
  health_check_port: ${l.adminPort}
  gateway_name: bench-e2e
  workers: 1
  use_grpc: ${grpc}
${l.wsPort === null ? "" : `  ws_listen_addr: "${HOST}:${l.wsPort}"\n  ws_path: /ws\n`}${l.tls === null ? "" : `  tls:\n    cert_file: "${l.tls.cert}"\n    key_file: "${l.tls.key}"\n`}connection_pool:
  max_connections: ${maxConnections}
security:
  max_connections_per_ip: 1000000
  connection_rate_limit: 1000000
routing:
  rules:
    - server_type: ${grpc ? GRPC_SERVER_TYPE : DEFAULT_SERVER_TYPE}
      service_name: echo
      strategy: round_robin
      endpoints: ["${HOST}:${backendPort}"]
log:
  level: warn
  access_log: "off"
`;
}

/**
 * A gateway target by name: gateway-otel exports spans to an OTLP/gRPC sink started beside it,
 * gateway-grpc has a gRPC echo backend, gateway-ws/-ws-sniffed/-tls differ in how clients reach it,
 * gateway-base runs the gateway of the checkout at baseRoot.
 */
async function startGateway(tempDir: string, maxConnections: number, profileDir: string | null = null, name: TargetName = "gateway", baseRoot: string | null = null): Promise<Target> {
  const otlp = name === "gateway-otel";
  const grpc = name === "gateway-grpc";
  const transport = transportOf(name);
  const sink = otlp ? new Child("otlp-sink", [BUN, join(ROOT, "bench/e2e/otlp-sink.ts")], { raiseFds: false }) : null;
  const sinkAddress = sink === null ? null : (await sink.out.waitFor(/otlp sink listening on ([\d.]+:\d+)/, 15_000))[1]!;
  const demo = grpc
    ? new Child("grpc-echo", ["node", join(ROOT, "bench/e2e/grpc-echo-server.mjs"), join(ROOT, "src/backend/grpc/game_gateway.proto"), "0"])
    : new Child("demo-backend", [BUN, CLI, "demo-backend", "--host", HOST, "--port", "0"]);
  const m = await demo.out.waitFor(grpc ? /grpc echo listening on (\d+)/ : /demo backend listening on [\d.]+:(\d+)/, 15_000);
  const backendPort = Number(m[1]);
  const listeners: GatewayListeners = {
    port: freePort(),
    adminPort: freePort(),
    wsPort: transport === "ws" ? freePort() : null,
    tls: transport === "tls" ? benchCertificate(tempDir) : null,
  };
  const port = listeners.wsPort ?? listeners.port;
  const adminPort = listeners.adminPort;
  const cfg = join(tempDir, `gateway-${port}.yaml`);
  writeFileSync(cfg, gatewayConfig(listeners, backendPort, maxConnections, grpc));
  const prof = profileDir === null ? [] : ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profileDir}`];
  const env = sinkAddress === null ? undefined : { OTEL_EXPORTER_OTLP_ENDPOINT: sinkAddress };
  const cli = baseRoot === null ? CLI : join(baseRoot, "src/cli/main.ts");
  const child = new Child(name, [BUN, ...prof, cli, "--config", cfg], { env });
  // The sniffed port takes a WebSocket handshake on any path; /ws keeps the two WebSocket targets alike.
  const clientArgs =
    transport === "ws" || transport === "ws-sniffed" ? ["--ws", "--ws-path", "/ws"] : transport === "tls" ? ["--tls", "--tls-insecure"] : [];
  try {
    await waitForPort(port, 20_000, () => child.alive);
  } catch (e) {
    await demo.stop();
    await sink?.stop();
    throw new Error(`gateway did not start: ${(e as Error).message}\n${child.lastLines()}`);
  }
  // Let its backend connections open before the first session needs them.
  await sleep(500);
  return {
    name,
    port,
    proxy: child,
    backend: demo,
    tempDir,
    adminPort,
    serverType: grpc ? GRPC_SERVER_TYPE : DEFAULT_SERVER_TYPE,
    clientArgs,
    stop: async () => {
      await child.stop(15_000);
      await demo.stop();
      await sink?.stop();
    },
  };
}

// --- gateway counters ------------------------------------------------------------------------

/** Counters that tell why a gateway run went wrong (closes by reason, drops, pauses, rejections). */
const TELLING = /^game_gateway_(client_closes_total|frames_dropped_total|protocol_violations_total|backend_backpressure_pauses_total|connection_rejected_total|routing_errors_total|backend_timeouts_total)\b/;

async function gatewayCounters(adminPort: number | null): Promise<Map<string, number> | null> {
  if (adminPort === null) return null;
  try {
    const res = await fetch(`http://${HOST}:${adminPort}/metrics`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    const m = new Map<string, number>();
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || !TELLING.test(line)) continue;
      const sp = line.lastIndexOf(" ");
      m.set(line.slice(0, sp).replace(/^game_gateway_/, ""), Number(line.slice(sp + 1)));
    }
    return m;
  } catch {
    return null;
  }
}

function counterDeltas(before: Map<string, number> | null, after: Map<string, number> | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (after === null) return out;
  for (const [k, v] of after) {
    const d = v - (before?.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

// --- syscall census (perf) -------------------------------------------------------------------

/** Syscalls counted per process; raw_syscalls:sys_enter is all of them. */
const SYSCALLS = ["sendto", "recvfrom", "sendmsg", "recvmsg", "write", "read", "writev", "readv", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"];

function perfUsable(): boolean {
  if (Bun.which("perf") === null) return false;
  try {
    return Bun.spawnSync(["perf", "stat", "-e", "raw_syscalls:sys_enter", "--", "true"], { stderr: "pipe" }).exitCode === 0;
  } catch {
    return false;
  }
}

/** Starts `perf stat` on one process for `seconds`; resolves to syscall name -> count. */
function perfSyscalls(pid: number, seconds: number): Promise<Record<string, number>> {
  const events = ["raw_syscalls:sys_enter", ...SYSCALLS.map((n) => `syscalls:sys_enter_${n}`)].join(",");
  const p = Bun.spawn({ cmd: ["perf", "stat", "-x", ",", "-e", events, "-p", String(pid), "--", "sleep", String(seconds)], stdout: "ignore", stderr: "pipe" });
  return (async () => {
    const text = await new Response(p.stderr).text();
    await p.exited;
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const f = line.split(",");
      const n = Number(f[0]);
      const ev = f[2] ?? "";
      if (!Number.isFinite(n) || ev === "") continue;
      const name = ev === "raw_syscalls:sys_enter" ? "all" : ev.replace("syscalls:sys_enter_", "");
      if (n > 0) out[name] = n;
    }
    return out;
  })();
}

interface Census {
  windowSeconds: number;
  /** Round trips in the window, estimated from the run's mean rate. */
  approxRoundTrips: number;
  proxyPerRoundTrip: Record<string, number> | null;
  backendPerRoundTrip: Record<string, number>;
}

// --- load runs -------------------------------------------------------------------------------

interface LoadtestJson {
  elapsedSeconds: number;
  connections: { attempted: number; ok: number; failed: number; closedByPeer: number };
  messages: { sent: number; received: number; timedOut: number; lost: number; late: number; skipped: number };
  throughput: { messagesPerSecond: number };
  latencyMs: { count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Open loop: how late the load tester's pacing ran (src/loadtest/README.md, "Pacing"); null in a closed loop. */
  pacing?: { lateMs: { p50: number; p99: number; max: number }; fromReplies: number; fromTimer: number } | null;
  errors: Record<string, number> & { total: number };
  passed: boolean;
  warnings: string[];
}

interface LoadResult {
  target: TargetName;
  workload: LoadId;
  /** Which run of the workload (a-c: the id; f: "f25k-64B" and so on). */
  key: string;
  round: number;
  ok: boolean;
  failure?: string;
  roundTripsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  messages: LoadtestJson["messages"];
  connections: LoadtestJson["connections"];
  errors: Record<string, number>;
  errorsTotal: number;
  elapsedSeconds: number;
  /** CPU seconds over the whole load-tester run. */
  proxyCpuSeconds: number | null;
  backendCpuSeconds: number | null;
  /** Microseconds of CPU per round trip received. */
  proxyCpuUsPerRoundTrip: number | null;
  backendCpuUsPerRoundTrip: number | null;
  /** Cores busy over the steady middle of the run. */
  proxyCoresSteady: number | null;
  backendCoresSteady: number | null;
  generatorCpuSeconds: number | null;
  /** The load tester's CPU over its run (worker processes included) / its elapsed time. */
  generatorCores: number | null;
  /**
   * Open loop: the rate the schedule asks for, ramp included (connection i starts at i / ramp s;
   * bench/e2e/offered-load.ts), and frames actually sent per second of sending.
   */
  offeredPerSecond: number | null;
  /** Open loop: clients x per-client rate, the rate once every client is connected. */
  nominalPerSecond: number | null;
  sentPerSecond: number;
  /**
   * Open loop: how late the generator's pacing ran (the oldest slot each pacing call sent, ms),
   * and what drove it. Late pacing sends the target bursts the schedule never asked for.
   */
  generatorPacing: { lateP50Ms: number; lateP99Ms: number; lateMaxMs: number; fromReplies: number; fromTimer: number } | null;
  /**
   * Why this result depends on the load generator rather than on the target, when it does: it
   * sent less than the offered rate, or its CPU was near one core per process (in a closed loop
   * the round trips/s are then the generator's ceiling as much as the target's). null = not.
   */
  generatorLimited: string | null;
  /** Machine-wide busy cores over the whole run, and the part no process of this run used. */
  machineBusyCores: number;
  otherCores: number | null;
  proxyLogLines: number;
  proxyLogSample: string[];
  /** Gateway only: changes in its telling counters over the run (closes by reason, drops, pauses). */
  gatewayCounters: Record<string, number>;
  /** Machine-wide kernel TCP counters that moved during the run (accept-queue overflows and such). */
  kernel: Record<string, number>;
  /** Syscalls per round trip (census runs only; perf attached, so not used for CPU figures). */
  syscalls?: Census;
  warnings: string[];
}

function loadtestArgs(port: number, w: LoadWorkload, seconds: number, serverType = DEFAULT_SERVER_TYPE, clientArgs: readonly string[] = []): string[] {
  return [
    BUN, CLI, "loadtest",
    "-host", HOST,
    "-port", String(port),
    "-server-type", String(serverType),
    "-connections", String(w.connections),
    "-duration", `${seconds}s`,
    "-rate", String(w.rate),
    "--in-flight", String(w.inFlight),
    "-message-size", String(w.messageSize),
    "--processes", String(w.processes),
    "--ramp", String(w.ramp),
    ...clientArgs,
    "--json",
  ];
}

async function runLoad(t: Target, w: LoadWorkload, seconds = w.seconds, census = false): Promise<LoadResult> {
  const proxyPid = t.proxy?.pid ?? null;
  const backendPid = t.backend.pid;
  const proxyLinesBefore = t.proxy === null ? 0 : t.proxy.out.lines + t.proxy.err.lines;
  const cpu = (pid: number | null): number | null => (pid === null ? null : cpuSeconds(pid));
  const counters0 = await gatewayCounters(t.adminPort);
  const kernel0 = kernelCounters();
  const p0 = cpu(proxyPid);
  const b0 = cpu(backendPid);
  const m0 = machineCpu();
  const wall0 = performance.now();

  const gen = new Child(`loadtest ${w.key}/${t.name}`, loadtestArgs(t.port, w, seconds, t.serverType, t.clientArgs), { keepLines: 100_000 });
  // The steady window: 30%..90% of the sending time.
  const steady: { p: number | null; b: number | null; at: number }[] = [];
  const timers = [0.3, 0.9].map((f) =>
    setTimeout(() => steady.push({ p: cpu(proxyPid), b: cpu(backendPid), at: performance.now() }), f * seconds * 1000),
  );
  const censusWindow = Math.max(1, Math.round(seconds * 0.6));
  // Set when the window opens (a run that ends before that has no census).
  let censusRuns: Promise<[Record<string, number> | null, Record<string, number>]> | null = null;
  if (census) {
    timers.push(
      setTimeout(() => {
        censusRuns = Promise.all([proxyPid === null ? Promise.resolve(null) : perfSyscalls(proxyPid, censusWindow), perfSyscalls(backendPid, censusWindow)]);
      }, 0.3 * seconds * 1000),
    );
  }
  // Bounded: the run is `seconds` plus the reply timeout (5 s) and closing; past that, stop it.
  const guard = setTimeout(() => {
    log(`${w.id}/${t.name}: load tester overran; interrupting`);
    gen.proc.kill("SIGINT");
    setTimeout(() => gen.alive && gen.proc.kill("SIGKILL"), 10_000);
  }, (seconds + 30) * 1000);
  const code = await gen.proc.exited;
  await Promise.all([gen.out.done, gen.err.done]);
  clearTimeout(guard);
  const counted: [Record<string, number> | null, Record<string, number>] | null = censusRuns === null ? null : await censusRuns;
  for (const tm of timers) clearTimeout(tm);

  const p1 = cpu(proxyPid);
  const b1 = cpu(backendPid);
  const m1 = machineCpu();
  const wallS = (performance.now() - wall0) / 1000;
  const ru = gen.proc.resourceUsage();
  const counters1 = await gatewayCounters(t.adminPort);
  const kernel1 = kernelCounters();
  const kernel: Record<string, number> = {};
  for (const k of Object.keys(kernel1)) if ((kernel1[k] ?? 0) - (kernel0[k] ?? 0) !== 0) kernel[k] = kernel1[k]! - (kernel0[k] ?? 0);
  const genCpu = ru === undefined ? null : Number(ru.cpuTime.total) / 1e6;

  const text = gen.out.tail.join("\n");
  let j: LoadtestJson | null = null;
  const start = text.indexOf("{");
  if (start >= 0) {
    try {
      j = JSON.parse(text.slice(start)) as LoadtestJson;
    } catch {}
  }
  const delta = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);
  const proxyCpu = delta(p0, p1);
  const backendCpu = delta(b0, b1);
  const received = j?.messages.received ?? 0;
  const perRt = (s: number | null): number | null => (s === null || received === 0 ? null : (s * 1e6) / received);
  let proxyCores: number | null = null;
  let backendCores: number | null = null;
  const [s0, s1] = steady;
  if (s0 !== undefined && s1 !== undefined && s1.at > s0.at) {
    const secs = (s1.at - s0.at) / 1000;
    const d = delta(s0.p, s1.p);
    const e = delta(s0.b, s1.b);
    proxyCores = d === null ? null : d / secs;
    backendCores = e === null ? null : e / secs;
  }
  const busy = m1.busy - m0.busy;
  const ours = (proxyCpu ?? 0) + (backendCpu ?? 0) + (genCpu ?? 0);
  const proxyTap = t.proxy;
  const proxyLines = proxyTap === null ? 0 : proxyTap.out.lines + proxyTap.err.lines - proxyLinesBefore;
  const generatorCores = genCpu === null || j === null ? null : genCpu / Math.max(0.001, j.elapsedSeconds);
  const offeredPerSecond = w.rate > 0 ? rampedOfferedPerSecond(w.connections, w.ramp, seconds, w.rate) : null;
  const nominalPerSecond = w.rate > 0 ? w.rate * w.connections : null;
  const sentPerSecond = (j?.messages.sent ?? 0) / seconds;
  const pacing = j?.pacing ?? null;
  const generatorPacing =
    pacing === null
      ? null
      : { lateP50Ms: pacing.lateMs.p50, lateP99Ms: pacing.lateMs.p99, lateMaxMs: pacing.lateMs.max, fromReplies: pacing.fromReplies, fromTimer: pacing.fromTimer };
  const errors: Record<string, number> = {};
  if (j !== null) for (const [k, v] of Object.entries(j.errors)) if (k !== "total" && v > 0) errors[k] = v;
  const failure =
    j === null
      ? `load tester exited ${code} without a JSON result: ${gen.lastLines(6)}`
      : t.proxy !== null && !t.proxy.alive
        ? `${t.proxy.name} exited during the run: ${t.proxy.lastLines(6)}`
        : undefined;
  return {
    target: t.name,
    workload: w.id,
    key: w.key,
    round: 1,
    ok: failure === undefined,
    ...(failure === undefined ? {} : { failure }),
    roundTripsPerSecond: j?.throughput.messagesPerSecond ?? 0,
    latencyMs: {
      p50: j?.latencyMs.p50 ?? NaN,
      p90: j?.latencyMs.p90 ?? NaN,
      p99: j?.latencyMs.p99 ?? NaN,
      p999: j?.latencyMs.p999 ?? NaN,
      max: j?.latencyMs.max ?? NaN,
      mean: j?.latencyMs.mean ?? NaN,
    },
    messages: j?.messages ?? { sent: 0, received: 0, timedOut: 0, lost: 0, late: 0, skipped: 0 },
    connections: j?.connections ?? { attempted: 0, ok: 0, failed: 0, closedByPeer: 0 },
    errors,
    errorsTotal: j?.errors.total ?? 0,
    elapsedSeconds: j?.elapsedSeconds ?? 0,
    proxyCpuSeconds: proxyCpu,
    backendCpuSeconds: backendCpu,
    proxyCpuUsPerRoundTrip: perRt(proxyCpu),
    backendCpuUsPerRoundTrip: perRt(backendCpu),
    proxyCoresSteady: proxyCores,
    backendCoresSteady: backendCores,
    generatorCpuSeconds: genCpu,
    generatorCores,
    offeredPerSecond,
    nominalPerSecond,
    sentPerSecond,
    generatorPacing,
    generatorLimited: generatorLimit(
      offeredPerSecond,
      sentPerSecond,
      j?.messages.skipped ?? 0,
      generatorCores,
      w.processes,
      genCpu === null ? null : Math.max(0, busy - ours) / wallS,
      generatorPacing?.lateP99Ms ?? null,
    ),
    machineBusyCores: busy / wallS,
    otherCores: genCpu === null ? null : Math.max(0, busy - ours) / wallS,
    proxyLogLines: proxyLines,
    proxyLogSample: proxyLines > 0 && proxyTap !== null ? [...proxyTap.out.tail, ...proxyTap.err.tail].slice(-Math.min(proxyLines, 3)) : [],
    gatewayCounters: counterDeltas(counters0, counters1),
    kernel,
    ...(counted === null || j === null
      ? {}
      : {
          syscalls: ((): Census => {
            const rts = j.throughput.messagesPerSecond * censusWindow;
            const per = (c: Record<string, number>): Record<string, number> =>
              Object.fromEntries(Object.entries(c).map(([k, v]) => [k, rts > 0 ? v / rts : 0]));
            return { windowSeconds: censusWindow, approxRoundTrips: rts, proxyPerRoundTrip: counted[0] === null ? null : per(counted[0]), backendPerRoundTrip: per(counted[1]) };
          })(),
        }),
    warnings: j?.warnings ?? [],
  };
}

/** Sent below this share of the offered rate: the generator could not offer the load. */
const OFFERED_SHARE = 0.97;
/** Generator CPU per load-tester process at or above this: near one core, saturated. */
const GENERATOR_SATURATED_CORES = 0.9;
/**
 * Open loop: the generator's pacing p99 lateness above this (ms) sent the target bursts it
 * cannot tell from its own queueing: c's target is p99 < 5 ms, which a generator that cannot hold
 * its schedule to 5 ms cannot resolve.
 */
const GENERATOR_PACING_P99_MS = 5;

function generatorLimit(
  offered: number | null,
  sent: number,
  skipped: number,
  cores: number | null,
  processes: number,
  otherCores: number | null,
  pacingP99Ms: number | null,
): string | null {
  const why: string[] = [];
  if (offered !== null && sent < OFFERED_SHARE * offered) {
    // A generator far from a core that still could not send: the machine's other work starved it.
    const starved = cores !== null && cores < GENERATOR_SATURATED_CORES * processes && otherCores !== null && otherCores >= 0.3;
    why.push(
      `sent ${fmtInt(sent)}/s of ${fmtInt(offered)}/s offered${skipped > 0 ? ` (${fmtInt(skipped)} sends skipped)` : ""}` +
        (starved ? `, with other processes on the machine using ${fmt(otherCores)} cores` : ""),
    );
  }
  if (cores !== null && cores >= GENERATOR_SATURATED_CORES * processes) why.push(`generator at ${fmt(cores)} cores (${processes} process${processes > 1 ? "es" : ""})`);
  if (pacingP99Ms !== null && pacingP99Ms > GENERATOR_PACING_P99_MS) why.push(`generator pacing p99 ${fmt(pacingP99Ms)} ms late`);
  return why.length === 0 ? null : why.join("; ");
}

function describeLoad(r: LoadResult): string {
  if (!r.ok) return `${r.key}/${r.target}: FAILED: ${r.failure}`;
  const cpu = r.proxyCpuUsPerRoundTrip !== null ? `, proxy ${fmt(r.proxyCpuUsPerRoundTrip)} µs/rt (${fmt(r.proxyCoresSteady)} cores)` : "";
  const offered = r.offeredPerSecond === null ? "" : ` (offered ${fmtInt(r.offeredPerSecond)}, sent ${fmtInt(r.sentPerSecond)}/s)`;
  const pacing = r.generatorPacing === null ? "" : `, pacing p99 ${fmt(r.generatorPacing.lateP99Ms)} ms late (max ${fmt(r.generatorPacing.lateMaxMs)})`;
  return (
    `${r.key}/${r.target}: ${fmtInt(r.roundTripsPerSecond)} rt/s${offered}, p50 ${fmt(r.latencyMs.p50, 3)} ms, p99 ${fmt(r.latencyMs.p99, 3)} ms, ` +
    `errors ${r.errorsTotal}${cpu}, backend ${fmt(r.backendCpuUsPerRoundTrip)} µs/rt, generator ${fmt(r.generatorCores)} cores${pacing}, others ${fmt(r.otherCores)} cores` +
    (r.generatorLimited === null ? "" : ` [GENERATOR-LIMITED: ${r.generatorLimited}]`)
  );
}

// --- capacity (d) ----------------------------------------------------------------------------

interface CapacityResult {
  target: TargetName;
  ok: boolean;
  failure?: string;
  clients: number;
  open: number;
  replied: number;
  failed: number;
  connectMs: number;
  /** The proxy (gateway, HAProxy) or, for direct, the echo server. */
  measured: string;
  rssIdleBytes: number | null;
  rssLoadedBytes: number | null;
  bytesPerConnection: number | null;
  backendRssIdleBytes: number | null;
  backendRssLoadedBytes: number | null;
  backendBytesPerConnection: number | null;
  fdLimit: string | null;
}

function fdLimit(pid: number): string | null {
  try {
    const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, "utf8"));
    return m ? `${m[1]}/${m[2]}` : null;
  } catch {
    return null;
  }
}

async function runCapacity(t: Target, clients: number): Promise<CapacityResult> {
  const measuredChild = t.proxy ?? t.backend;
  const other = t.proxy === null ? null : t.backend;
  await sleep(1500);
  const rss0 = rssBytes(measuredChild.pid);
  const brss0 = other === null ? null : rssBytes(other.pid);
  const holder = new Child(`idle-clients/${t.name}`, [
    BUN, IDLE,
    "--host", HOST,
    "--port", String(t.port),
    "--connections", String(clients),
    "--source-addresses", String(Math.max(1, Math.ceil(clients / 1000))),
    "--timeout-ms", "90000",
    ...(isGateway(t.name) ? ["--send-frame"] : []),
  ], { stdin: "pipe" });
  const base: CapacityResult = {
    target: t.name, ok: false, clients, open: 0, replied: 0, failed: 0, connectMs: 0, measured: measuredChild.name,
    rssIdleBytes: rss0, rssLoadedBytes: null, bytesPerConnection: null,
    backendRssIdleBytes: brss0, backendRssLoadedBytes: null, backendBytesPerConnection: null,
    fdLimit: fdLimit(measuredChild.pid),
  };
  try {
    const m = await holder.out.waitFor(/^\{"ready":(.*)\}$/, 100_000);
    const ready = JSON.parse(m[1]!) as { open: number; failed: number; replied: number; closedByPeer: number; ms: number };
    Object.assign(base, { open: ready.open, replied: ready.replied, failed: ready.failed, connectMs: ready.ms });
    // Let allocation settle, then read RSS three times and keep the last (it only grows here).
    let rss1: number | null = null;
    let brss1: number | null = null;
    for (let i = 0; i < 3; i++) {
      await sleep(1000);
      rss1 = rssBytes(measuredChild.pid);
      brss1 = other === null ? null : rssBytes(other.pid);
    }
    base.rssLoadedBytes = rss1;
    base.backendRssLoadedBytes = brss1;
    if (rss0 !== null && rss1 !== null && ready.open > 0) base.bytesPerConnection = (rss1 - rss0) / ready.open;
    if (brss0 !== null && brss1 !== null && ready.open > 0) base.backendBytesPerConnection = (brss1 - brss0) / ready.open;
    base.ok = ready.open === clients && (!isGateway(t.name) || ready.replied === clients);
    if (!base.ok) base.failure = `only ${ready.open} of ${clients} open (${ready.failed} failed), ${ready.replied} replied`;
  } catch (e) {
    base.failure = (e as Error).message;
  } finally {
    (holder.proc.stdin as import("bun").FileSink).end();
    const t2 = setTimeout(() => holder.alive && holder.proc.kill("SIGKILL"), 15_000);
    await holder.proc.exited;
    clearTimeout(t2);
  }
  return base;
}

// --- noisy neighbour (e) ---------------------------------------------------------------------

interface QuietLatency {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

interface NoisyResult {
  ok: boolean;
  failure?: string;
  heavyClients: number;
  seconds: number;
  quietAlone: QuietLatency;
  quietBesideHeavy: QuietLatency;
  p50Ratio: number | null;
  p99Ratio: number | null;
  heavyMessagesPerSecond: number;
  heavyMiBPerSecond: number;
  gatewayCounters: Record<string, number>;
}

const HEAVY_BODY = 60_000;
const HEAVY_IN_FLIGHT = 16;
const QUIET_EVERY_MS = 10;

function quantileOf(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Sequential 64-byte round trips, one every QUIET_EVERY_MS, for `seconds`. */
async function quietClient(port: number, seconds: number): Promise<QuietLatency> {
  const c = await GameClient.connect(HOST, port);
  const body = new Uint8Array(64);
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  try {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      c.send(i & 0xffff, serverIdFor(10), body);
      await c.next(10_000);
      times.push(performance.now() - t0);
      await sleep(QUIET_EVERY_MS);
    }
  } finally {
    c.close();
  }
  times.sort((a, b) => a - b);
  return { count: times.length, p50: quantileOf(times, 0.5), p99: quantileOf(times, 0.99), max: times[times.length - 1] ?? NaN };
}

async function runNoisyNeighbour(t: Target, heavy: number, seconds: number): Promise<NoisyResult> {
  const result: NoisyResult = {
    ok: false, heavyClients: heavy, seconds,
    quietAlone: { count: 0, p50: NaN, p99: NaN, max: NaN }, quietBesideHeavy: { count: 0, p50: NaN, p99: NaN, max: NaN },
    p50Ratio: null, p99Ratio: null, heavyMessagesPerSecond: 0, heavyMiBPerSecond: 0, gatewayCounters: {},
  };
  try {
    result.quietAlone = await quietClient(t.port, seconds);
    const counters0 = await gatewayCounters(t.adminPort);
    const w: LoadWorkload = {
      id: "b", key: "e-heavy", title: "heavy", connections: heavy, rate: 0, inFlight: HEAVY_IN_FLIGHT, messageSize: HEAVY_BODY,
      seconds: seconds + 2, ramp: 0, processes: 1,
    };
    const gen = Bun.spawn({ cmd: loadtestArgs(t.port, w, w.seconds, t.serverType, t.clientArgs), cwd: ROOT, env: { ...process.env }, stdout: "pipe", stderr: "pipe" });
    await sleep(1000); // the heavy clients are connected and looping
    result.quietBesideHeavy = await quietClient(t.port, seconds);
    const out = await new Response(gen.stdout).text();
    await gen.exited;
    const j = JSON.parse(out.slice(out.indexOf("{"))) as LoadtestJson;
    result.heavyMessagesPerSecond = j.throughput.messagesPerSecond;
    result.heavyMiBPerSecond = (j.throughput.messagesPerSecond * HEAVY_BODY) / 2 ** 20;
    result.gatewayCounters = counterDeltas(counters0, await gatewayCounters(t.adminPort));
    result.p50Ratio = ratio(result.quietBesideHeavy.p50, result.quietAlone.p50);
    result.p99Ratio = ratio(result.quietBesideHeavy.p99, result.quietAlone.p99);
    result.ok = true;
  } catch (e) {
    result.failure = (e as Error).message;
  }
  return result;
}

function describeNoisy(r: NoisyResult): string {
  if (!r.ok) return `e/gateway: FAILED: ${r.failure}`;
  const q = (l: QuietLatency) => `p50 ${fmt(l.p50, 3)} ms, p99 ${fmt(l.p99, 3)} ms, max ${fmt(l.max, 1)} ms (${l.count} round trips)`;
  return (
    `e/gateway: quiet client alone: ${q(r.quietAlone)}; beside ${r.heavyClients} heavy: ${q(r.quietBesideHeavy)}; ` +
    `ratio p50 ${fmt(r.p50Ratio)}, p99 ${fmt(r.p99Ratio)}; heavy ${fmtInt(r.heavyMessagesPerSecond)} msg/s (${fmt(r.heavyMiBPerSecond, 1)} MiB/s each way)`
  );
}

// --- profile ---------------------------------------------------------------------------------

interface ProfileEntry {
  function: string;
  location: string;
  selfMs: number;
  selfPercent: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Self time per function (summed over call sites), largest first, as % of non-idle samples. */
function topSelf(profile: CpuProfile, n: number): { entries: ProfileEntry[]; busyMs: number; idleMs: number; totalMs: number } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0) {
    // A sample's weight is the gap to the next one, capped at 4x the median gap: after the last
    // sample of a busy stretch the process may sleep for seconds, and that is not its function's.
    const sorted = deltas.slice(1).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? 1000;
    for (let i = 0; i < samples.length; i++) {
      const next = deltas[i + 1];
      const w = Math.min(next !== undefined ? next : median, 4 * median);
      selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + w);
    }
  } else {
    const per = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((a, x) => a + (x.hitCount ?? 0), 0));
    for (const node of profile.nodes) selfUs.set(node.id, (node.hitCount ?? 0) * per);
  }
  const agg = new Map<string, { fn: string; loc: string; us: number }>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    totalUs += us;
    const f = node.callFrame;
    if (f.functionName === "(idle)" || f.functionName === "(root)" || f.functionName === "(program)") {
      idleUs += us;
      continue;
    }
    const url = f.url.replace(/^file:\/\//, "").replace(`${ROOT}/`, "");
    const loc = url === "" ? "[native code]" : `${url}${f.lineNumber >= 0 ? `:${f.lineNumber + 1}` : ""}`;
    const fn = f.functionName === "" ? "(anonymous)" : f.functionName;
    const key = `${fn}\u0000${loc}`;
    const e = agg.get(key) ?? { fn, loc, us: 0 };
    e.us += us;
    agg.set(key, e);
  }
  const busyUs = totalUs - idleUs;
  const entries = [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({ function: e.fn, location: e.loc, selfMs: e.us / 1000, selfPercent: busyUs > 0 ? (100 * e.us) / busyUs : 0 }));
  return { entries, busyMs: busyUs / 1000, idleMs: idleUs / 1000, totalMs: totalUs / 1000 };
}

interface ProfileResult {
  ok: boolean;
  failure?: string;
  workload: LoadId;
  run: LoadResult | null;
  busyMs: number;
  idleMs: number;
  top: ProfileEntry[];
  files: string[];
}

async function runProfile(tempDir: string, w: LoadWorkload, keepDir: string | null): Promise<ProfileResult> {
  const dir = join(tempDir, "cpu-prof");
  mkdirSync(dir, { recursive: true });
  const result: ProfileResult = { ok: false, workload: w.id, run: null, busyMs: 0, idleMs: 0, top: [], files: [] };
  let t: Target | null = null;
  try {
    t = await startGateway(tempDir, 20_000, dir);
    result.run = await runLoad(t, w);
    log(`profile run: ${describeLoad(result.run)}`);
  } catch (e) {
    result.failure = (e as Error).message;
  } finally {
    // The profile is written when the gateway exits (SIGTERM: drain, then exit 0).
    await t?.stop();
  }
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const prof = files.find((f) => f.endsWith(".cpuprofile"));
  if (prof === undefined) {
    result.failure ??= `no .cpuprofile written in ${dir}`;
    return result;
  }
  const top = topSelf(JSON.parse(readFileSync(join(dir, prof), "utf8")) as CpuProfile, 20);
  Object.assign(result, { ok: result.failure === undefined, top: top.entries, busyMs: top.busyMs, idleMs: top.idleMs });
  if (keepDir !== null) {
    mkdirSync(keepDir, { recursive: true });
    for (const f of files) {
      copyFileSync(join(dir, f), join(keepDir, f));
      result.files.push(join(keepDir, f));
    }
  }
  return result;
}

// --- report ----------------------------------------------------------------------------------

interface Check {
  name: string;
  met: boolean | null;
  detail: string;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/** A markdown table; `align` has one letter per column (l or r), or a number: right from that column on. */
function table(headers: string[], rows: string[][], align: number | string = 1): string {
  const right = (i: number): boolean => (typeof align === "number" ? i >= align : align[i] === "r");
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ")} |`;
  const sep = `| ${widths.map((w, i) => (right(i) ? `${"-".repeat(w - 1)}:` : "-".repeat(w))).join(" | ")} |`;
  return [line(headers), sep, ...rows.map(line)].join("\n");
}

// --- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(withTwoDashFlags(process.argv.slice(2)));
  } catch (e) {
    process.stderr.write(`bench-e2e: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const W = loadWorkloads(opts.quick, opts.cRamp);
  const fixed = opts.workloads.includes("f") ? fixedRateWorkloads(opts) : [];
  /** Every load run's workload by its key: a-c and each fixed-rate run of f. */
  const byKey = new Map<string, LoadWorkload>([...Object.values(W), ...fixed].map((w) => [w.key, w]));
  const loadIds = opts.workloads.filter((w): w is LoadId => w !== "d" && w !== "e");
  const tempDir = mkdtempSync(join(tmpdir(), "bench-e2e-"));
  const haproxyBin = findHaproxy();
  let haproxyVersion: string | null = null;
  const skipped: Record<string, string> = {};
  let targets = [...opts.targets];
  if (targets.includes("haproxy")) {
    if (haproxyBin === null) {
      skipped.haproxy = "haproxy not found on PATH or at /usr/sbin/haproxy (Debian: apt-get install haproxy): HAProxy target skipped";
      process.stderr.write(`bench-e2e: ${skipped.haproxy}\n`);
      targets = targets.filter((t) => t !== "haproxy");
    } else {
      const v = Bun.spawnSync([haproxyBin, "-v"]).stdout.toString().split("\n")[0] ?? "";
      haproxyVersion = v.trim();
    }
  }
  const nginx = findNginx();
  if (targets.includes("nginx") && !nginx.ok) {
    skipped.nginx = `${nginx.why}: nginx target skipped`;
    process.stderr.write(`bench-e2e: ${skipped.nginx}\n`);
    targets = targets.filter((t) => t !== "nginx");
  }
  const cpuModel = cpus()[0]?.model ?? "unknown";
  const machine = {
    cpus: cpus().length,
    cpuModel,
    kernel: release(),
    bun: Bun.version,
    haproxy: haproxyVersion,
    nginx: nginx.ok ? nginx.install.version : null,
    clkTck: CLK_TCK,
    loadavgBefore: loadavg().map((x) => Number(x.toFixed(2))),
    loadavgAfter: [] as number[],
  };
  // Read-only: which code was measured (others may be editing src/ while this runs).
  const git = (args: string[]): string => {
    try {
      return Bun.spawnSync(["git", ...args], { cwd: ROOT }).stdout.toString().trim();
    } catch {
      return "";
    }
  };
  const source = {
    commit: git(["rev-parse", "--short", "HEAD"]),
    modified: git(["status", "--porcelain", "--", "src"]).split("\n").filter((l) => l !== "").map((l) => l.slice(3)),
  };
  log(
    `bench-e2e ${opts.quick ? "--quick" : "(full)"}: targets ${targets.join(", ")}; workloads ${opts.workloads.join(", ")}; ` +
      `${machine.cpus} cores (${cpuModel}); load average ${machine.loadavgBefore.join(" ")}`,
  );

  const cleanup = (): void => {
    killAllChildren();
    if (!opts.keepTemp) rmSync(tempDir, { recursive: true, force: true });
  };
  process.on("SIGINT", () => {
    process.stderr.write("bench-e2e: interrupted; stopping children\n");
    cleanup();
    process.exit(130);
  });

  const loadResults: LoadResult[] = [];
  const census: LoadResult[] = [];
  const capacity: CapacityResult[] = [];
  let profile: ProfileResult | null = null;
  let noisy: NoisyResult | null = null;
  const maxConnFor = (n: number): number => Math.max(20_000, n + 5_000);
  // HAProxy needs two descriptors per client (client side, server side) and refuses to start
  // when its maxconn cannot fit the open-files limit it can get.
  const fdLimit = childFdLimit();
  const haproxyMaxconn = Math.max(1000, Math.min(40_000, Math.floor((fdLimit - 500) / 2)));
  const haproxyIdle = Math.min(opts.idle, haproxyMaxconn - 100);
  const notes: string[] = [];
  if ((targets.includes("haproxy") || targets.includes("nginx")) && opts.workloads.includes("d") && haproxyIdle < opts.idle) {
    notes.push(
      `open-files limit ${fdLimit} (cannot be raised here): HAProxy and nginx hold 2 descriptors per client, so their capacity runs use ${fmtInt(haproxyIdle)} idle clients, not ${fmtInt(opts.idle)}`,
    );
    log(notes[notes.length - 1]!);
  }
  const transportsHere = targets.filter((t) => CLIENT_TRANSPORTS.includes(t));
  if (transportsHere.length > 0 && opts.workloads.some((w) => w === "c" || w === "d")) {
    notes.push(`${transportsHere.join(", ")}: run in a, b and f only (c's 5,000 clients and d's idle holder are TCP-transport measurements)`);
    log(notes[notes.length - 1]!);
  }
  /** Starts a target by name: peers with their own echo server, gateways with the demo backend. */
  const startTarget = (name: TargetName): Promise<Target> =>
    name === "direct" ? startDirect(tempDir)
    : name === "haproxy" ? startHaproxy(haproxyBin!, tempDir, haproxyMaxconn)
    : name === "nginx" ? startNginx((nginx as { install: NginxInstall }).install, tempDir, haproxyMaxconn)
    : startGateway(tempDir, maxConnFor(opts.idle), null, name, name === "gateway-base" ? opts.baseRoot : null);

  try {
    // a-c: every target up at once (idle ones cost nothing), runs interleaved per workload.
    if (loadIds.length > 0) {
      const up = new Map<TargetName, Target>();
      for (const name of targets) {
        try {
          const t = await startTarget(name);
          up.set(name, t);
          log(`${name} up on ${HOST}:${t.port} (${t.proxy ? `${t.proxy.name} pid ${t.proxy.pid}, ` : ""}${t.backend.name} pid ${t.backend.pid})`);
        } catch (e) {
          skipped[name] = `did not start: ${(e as Error).message}`;
          log(`${name}: ${skipped[name]}`);
        }
      }
      // Warm-up: JIT and allocator settle before anything is measured.
      for (const t of up.values()) {
        const warm: LoadWorkload = { ...W.b, id: "b", key: "warm-up", connections: 200, seconds: opts.quick ? 1 : 2 };
        await runLoad(t, warm, warm.seconds);
      }
      log("warm-up done");
      // a and b run --rounds times; c and each fixed-rate run of f once. Within each, every target in turn.
      const schedule: { w: LoadWorkload; round: number; flip: boolean }[] = [];
      for (let round = 1; round <= opts.rounds; round++) {
        for (const id of loadIds) if (id === "a" || id === "b") schedule.push({ w: W[id], round, flip: round % 2 === 0 });
      }
      if (loadIds.includes("c")) schedule.push({ w: W.c, round: 1, flip: false });
      fixed.forEach((w, i) => schedule.push({ w, round: 1, flip: i % 2 === 1 }));
      for (const { w, round, flip } of schedule) {
        // Every other run goes through the targets in reverse, so that no target always runs
        // right after another's teardown (TIME_WAIT, a warm cache).
        const order = flip ? [...up.values()].reverse() : [...up.values()];
        for (const t of order) {
          if (t.proxy !== null && !t.proxy.alive) continue;
          if (!runsIn(t.name, w.id)) continue;
          await sleep(1000);
          const r = { ...(await runLoad(t, w)), round };
          loadResults.push(r);
          log(`${opts.rounds > 1 && (w.id === "a" || w.id === "b") ? `round ${round} ` : ""}${describeLoad(r)}`);
          if (r.proxyLogLines > 0) log(`  ${t.name} logged ${r.proxyLogLines} lines, e.g. ${r.proxyLogSample[0]}`);
          const unusual = Object.entries(r.gatewayCounters).filter(([k]) => !k.includes('reason="client_closed"'));
          if (unusual.length > 0) log(`  gateway counters: ${unusual.map(([k, v]) => `${k} +${v}`).join(", ")}`);
          if (Object.keys(r.kernel).length > 0) log(`  kernel TCP counters: ${Object.entries(r.kernel).map(([k, v]) => `${k} +${v}`).join(", ")}`);
        }
      }
      if (opts.syscalls) {
        if (!perfUsable()) {
          notes.push("syscall census skipped: `perf stat -e raw_syscalls:sys_enter` does not work here");
          log(notes[notes.length - 1]!);
        } else {
          for (const id of loadIds) {
            if (id === "f") continue; // f's equal-load runs are about CPU and latency, not syscalls
            for (const t of up.values()) {
              if (t.proxy !== null && !t.proxy.alive) continue;
              if (!runsIn(t.name, id)) continue;
              await sleep(1000);
              const r = await runLoad(t, W[id], opts.quick ? 5 : 8, true);
              census.push(r);
              const sc = r.syscalls;
              log(
                `census ${id}/${t.name}: ${fmtInt(r.roundTripsPerSecond)} rt/s under perf; syscalls per round trip: ` +
                  `proxy ${fmt(sc?.proxyPerRoundTrip?.all)}, backend ${fmt(sc?.backendPerRoundTrip.all)}`,
              );
            }
          }
        }
      }
      for (const t of up.values()) await t.stop();
    }

    // d: a fresh process per target, so RSS at 0 is a new process's.
    if (opts.workloads.includes("d")) {
      for (const name of targets) {
        if (!runsIn(name, "d")) continue;
        let t: Target | null = null;
        try {
          t = await startTarget(name);
          const c = await runCapacity(t, name === "haproxy" || name === "nginx" ? haproxyIdle : opts.idle);
          capacity.push(c);
          log(
            `d/${name}: ${c.open} idle clients (${c.connectMs} ms to connect${isGateway(name) ? `, ${c.replied} with a session` : ""}); ` +
              `${c.measured} RSS ${fmt((c.rssIdleBytes ?? NaN) / 2 ** 20, 1)} -> ${fmt((c.rssLoadedBytes ?? NaN) / 2 ** 20, 1)} MiB = ` +
              `${fmtInt(c.bytesPerConnection ?? NaN)} B/connection${c.failure ? `; ${c.failure}` : ""}`,
          );
        } catch (e) {
          log(`d/${name}: failed: ${(e as Error).message}`);
          capacity.push({
            target: name, ok: false, failure: (e as Error).message, clients: opts.idle, open: 0, replied: 0, failed: 0, connectMs: 0,
            measured: name, rssIdleBytes: null, rssLoadedBytes: null, bytesPerConnection: null, backendRssIdleBytes: null,
            backendRssLoadedBytes: null, backendBytesPerConnection: null, fdLimit: null,
          });
        } finally {
          await t?.stop();
        }
        await sleep(1000);
      }
    }

    // e: a fresh gateway, quiet client alone then beside the heavy ones.
    if (opts.workloads.includes("e") && targets.includes("gateway")) {
      const t = await startGateway(tempDir, maxConnFor(0));
      try {
        noisy = await runNoisyNeighbour(t, opts.heavy, opts.quick ? 5 : 10);
        log(describeNoisy(noisy));
        const unusual = Object.entries(noisy.gatewayCounters).filter(([k]) => !k.includes('reason="client_closed"'));
        if (unusual.length > 0) log(`  gateway counters: ${unusual.map(([k, v]) => `${k} +${v}`).join(", ")}`);
      } finally {
        await t.stop();
      }
    }

    if (opts.profile && targets.includes("gateway")) {
      const pw = W[opts.profileWorkload];
      log(`profile: workload ${pw.id} against a fresh gateway under bun --cpu-prof (${pw.seconds} s)`);
      profile = await runProfile(tempDir, pw, opts.profileDir);
      if (!profile.ok) log(`profile: ${profile.failure}`);
    }
  } finally {
    killAllChildren();
  }
  machine.loadavgAfter = loadavg().map((x) => Number(x.toFixed(2)));

  // --- tables, ratios, checks ----------------------------------------------------------------
  /** One workload run (by key) and target over all rounds: mean rate and latency; total CPU / total round trips. */
  interface Pooled {
    roundTripsPerSecond: number;
    proxyCpuUsPerRoundTrip: number | null;
    backendCpuUsPerRoundTrip: number | null;
    /** Proxy + backend: the whole path's CPU per round trip. */
    pathCpuUsPerRoundTrip: number | null;
    p50: number;
    p99: number;
    generatorCores: number | null;
    /** Open loop: the worst round's generator pacing p99 lateness (ms); null in a closed loop. */
    generatorPacingP99Ms: number | null;
    /** Set when any round was generator-limited. */
    generatorLimited: string | null;
    rounds: LoadResult[];
  }
  const get = (key: string, t: TargetName): Pooled | undefined => {
    const rs = loadResults.filter((r) => r.key === key && r.target === t && r.ok);
    if (rs.length === 0) return undefined;
    const received = rs.reduce((a, r) => a + r.messages.received, 0);
    const sum = (f: (r: LoadResult) => number | null): number | null =>
      rs.some((r) => f(r) === null) || received === 0 ? null : (rs.reduce((a, r) => a + f(r)!, 0) * 1e6) / received;
    const mean = (f: (r: LoadResult) => number): number => rs.reduce((a, r) => a + f(r), 0) / rs.length;
    const proxy = sum((r) => r.proxyCpuSeconds);
    const backend = sum((r) => r.backendCpuSeconds);
    const limited = rs.filter((r) => r.generatorLimited !== null);
    return {
      roundTripsPerSecond: mean((r) => r.roundTripsPerSecond),
      proxyCpuUsPerRoundTrip: proxy,
      backendCpuUsPerRoundTrip: backend,
      pathCpuUsPerRoundTrip: proxy === null || backend === null ? null : proxy + backend,
      p50: mean((r) => r.latencyMs.p50),
      p99: mean((r) => r.latencyMs.p99),
      generatorCores: rs.some((r) => r.generatorCores === null) ? null : mean((r) => r.generatorCores!),
      generatorPacingP99Ms: rs.some((r) => r.generatorPacing === null) ? null : Math.max(...rs.map((r) => r.generatorPacing!.lateP99Ms)),
      generatorLimited: limited.length === 0 ? null : `${limited.length} of ${rs.length} runs: ${limited.map((r) => r.generatorLimited).join(" | ")}`,
      rounds: rs,
    };
  };

  /** A figure of a pooled result, and whether lower or higher is better. */
  interface Figure {
    name: string;
    of: (p: Pooled) => number | null;
    better: "lower" | "higher";
    digits: number;
  }
  const num = (v: number | null, digits: number): string => (digits === 0 && v !== null ? fmtInt(v) : fmt(v, digits));
  const FIGURES: Figure[] = [
    { name: "round trips/s", of: (p) => p.roundTripsPerSecond, better: "higher", digits: 0 },
    { name: "proxy CPU µs/rt", of: (p) => p.proxyCpuUsPerRoundTrip, better: "lower", digits: 2 },
    { name: "proxy+backend CPU µs/rt", of: (p) => p.pathCpuUsPerRoundTrip, better: "lower", digits: 2 },
    { name: "p50 ms", of: (p) => p.p50, better: "lower", digits: 3 },
    { name: "p99 ms", of: (p) => p.p99, better: "lower", digits: 3 },
  ];
  /** The better of the peers (HAProxy, nginx) on one figure of one workload run, and which peer that was. */
  const bestPeer = (key: string, f: Figure): { peer: TargetName; value: number; pooled: Pooled } | null => {
    let best: { peer: TargetName; value: number; pooled: Pooled } | null = null;
    for (const peer of PEERS) {
      const p = get(key, peer);
      const v = p === undefined ? null : f.of(p);
      if (p === undefined || v === null || !Number.isFinite(v)) continue;
      if (best === null || (f.better === "lower" ? v < best.value : v > best.value)) best = { peer, value: v, pooled: p };
    }
    return best;
  };
  /** Per-round ratios gateway / the given peer on one figure, when there are several rounds. */
  const perRound = (key: string, peer: TargetName, f: (r: LoadResult) => number | null): string => {
    const vals: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const g = loadResults.find((r) => r.key === key && r.target === "gateway" && r.round === round && r.ok);
      const h = loadResults.find((r) => r.key === key && r.target === peer && r.round === round && r.ok);
      const x = g && h ? ratio(f(g), f(h)) : null;
      if (x !== null) vals.push(x);
    }
    if (vals.length < 2) return "";
    return `; per round ${vals.map((v) => fmt(v)).join(", ")}`;
  };
  const limitNote = (...ps: (Pooled | undefined)[]): string => {
    const hit = ps.filter((p): p is Pooled => p !== undefined && p.generatorLimited !== null);
    return hit.length === 0 ? "" : ` [GENERATOR-LIMITED: ${hit.map((p) => `${p.rounds[0]!.target}: ${p.generatorLimited}`).join("; ")}]`;
  };

  const out: string[] = [];
  const pacingP99 = (r: LoadResult): string => (r.generatorPacing === null ? "-" : fmt(r.generatorPacing.lateP99Ms));
  const closedOrC = loadResults.filter((r) => r.workload !== "f");
  const fixedResults = loadResults.filter((r) => r.workload === "f");
  if (closedOrC.length > 0) {
    const rows = closedOrC.map((r) => [
      `${r.key}${opts.rounds > 1 && r.workload !== "c" ? ` #${r.round}` : ""}: ${byKey.get(r.key)?.title ?? r.key}`,
      r.target,
      r.ok ? fmtInt(r.roundTripsPerSecond) : "failed",
      fmt(r.latencyMs.p50, 3),
      fmt(r.latencyMs.p99, 3),
      fmtInt(r.errorsTotal),
      fmt(r.proxyCpuUsPerRoundTrip),
      fmt(r.proxyCoresSteady),
      fmt(r.backendCpuUsPerRoundTrip),
      fmt(r.backendCoresSteady),
      fmt(r.generatorCores),
      pacingP99(r),
      fmt(r.otherCores),
      r.generatorLimited === null ? "" : "GEN",
    ]);
    out.push(
      table(
        ["workload", "target", "round trips/s", "p50 ms", "p99 ms", "errors", "proxy µs/rt", "proxy cores", "backend µs/rt", "backend cores", "generator cores", "gen pacing p99 ms", "other cores", "limit"],
        rows,
        2,
      ),
    );
    out.push(
      "proxy = HAProxy, nginx or the gateway (none for direct); backend = the echo server (direct, haproxy, nginx) or the demo backend (gateway*);",
      "µs/rt = CPU microseconds per round trip over the whole run; cores = CPU over the steady 30-90% window; other = machine busy time no process of this run used;",
      "gen pacing p99 = open loop: how late the load tester sent the oldest due frame of each send, 99th percentile (- in a closed loop);",
      `limit GEN = generator-limited: the load tester sent under ${OFFERED_SHARE * 100}% of the offered rate (ramp included), used >= ${GENERATOR_SATURATED_CORES} core per process (its ceiling, not the target's), ` +
        `or paced more than ${GENERATOR_PACING_P99_MS} ms late at p99.`,
    );
  }
  if (fixedResults.length > 0) {
    const rows = fixedResults.map((r) => [
      r.key,
      r.target,
      fmtInt(r.offeredPerSecond ?? 0),
      fmtInt(r.sentPerSecond),
      r.ok ? fmtInt(r.roundTripsPerSecond) : "failed",
      fmt(r.latencyMs.p50, 3),
      fmt(r.latencyMs.p99, 3),
      fmtInt(r.errorsTotal),
      fmt(r.proxyCpuUsPerRoundTrip),
      fmt(r.proxyCoresSteady),
      fmt(r.backendCpuUsPerRoundTrip),
      fmt(r.generatorCores),
      pacingP99(r),
      fmt(r.otherCores),
      r.generatorLimited === null ? "" : "GEN",
    ]);
    out.push(
      "",
      `f, equal offered load (open loop; ${fmtInt(opts.fixedClients)} clients, 1 load-tester process):`,
      table(
        ["run", "target", "offered rt/s", "sent/s", "received rt/s", "p50 ms", "p99 ms", "errors", "proxy µs/rt", "proxy cores", "backend µs/rt", "generator cores", "gen pacing p99 ms", "other cores", "limit"],
        rows,
        2,
      ),
    );
  }
  for (const r of loadResults) {
    const unusual = Object.entries(r.gatewayCounters).filter(([k]) => !k.includes('reason="client_closed"'));
    if (unusual.length > 0) out.push(`gateway counters during ${r.key}/${r.target}: ${unusual.map(([k, v]) => `${k} +${fmtInt(v)}`).join(", ")}`);
    if (r.warnings.length > 0) out.push(`load tester warnings during ${r.key}/${r.target}: ${r.warnings.join("; ")}`);
    if (r.generatorLimited !== null) out.push(`generator-limited: ${r.key}/${r.target}: ${r.generatorLimited}`);
    if (r.errorsTotal > 0 && Object.keys(r.kernel).length > 0) {
      out.push(`kernel TCP counters during ${r.key}/${r.target} (errors ${r.errorsTotal}): ${Object.entries(r.kernel).map(([k, v]) => `${k} +${fmtInt(v)}`).join(", ")}`);
    }
  }

  const ratios: Record<string, unknown> = {};
  const checks: Check[] = [];
  /** The runs compared with the peers: a, b and every fixed-rate run of f. */
  const comparedKeys = [...(["a", "b"] as const).filter((id) => loadIds.includes(id)), ...fixed.map((w) => w.key)];
  const bestRows: string[][] = [];
  for (const key of comparedKeys) {
    const g = get(key, "gateway");
    const h = get(key, "haproxy");
    const n = get(key, "nginx");
    const d = get(key, "direct");
    const isFixed = key.startsWith("f");
    const vsBest: Record<string, unknown> = {};
    for (const f of FIGURES) {
      if (isFixed && f.name === "round trips/s") continue; // the same offered rate for all
      const best = bestPeer(key, f);
      const gv = g === undefined ? null : f.of(g);
      const x = ratio(gv, best?.value);
      vsBest[f.name] = best === null ? null : { peer: best.peer, peerValue: best.value, gateway: gv, ratio: x };
      if (g !== undefined && best !== null) {
        const other = PEERS.find((p) => p !== best.peer);
        const ov = other === undefined ? undefined : get(key, other);
        bestRows.push([
          key,
          f.name,
          num(gv, f.digits),
          `${best.peer} ${num(best.value, f.digits)}`,
          fmt(x),
          ov === undefined || other === undefined ? "-" : `${other} ${num(f.of(ov), f.digits)}`,
          `${fmt(g.generatorCores)} / ${fmt(best.pooled.generatorCores)}`,
          g.generatorPacingP99Ms === null ? "-" : `${fmt(g.generatorPacingP99Ms)} / ${fmt(best.pooled.generatorPacingP99Ms)}`,
          g.generatorLimited !== null || best.pooled.generatorLimited !== null ? "GEN" : "",
        ]);
      }
    }
    const grpc = get(key, "gateway-grpc");
    const grpcCpu = ratio(grpc?.proxyCpuUsPerRoundTrip, g?.proxyCpuUsPerRoundTrip);
    if (grpcCpu !== null) {
      out.push(
        `(${key}) gRPC / TCP backends, gateway CPU per round trip: ${fmt(grpcCpu)}x (${fmt(grpc!.proxyCpuUsPerRoundTrip)} vs ${fmt(g!.proxyCpuUsPerRoundTrip)} µs/rt); ` +
          `round trips/s ${fmt(grpc!.roundTripsPerSecond)} vs ${fmt(g!.roundTripsPerSecond)} (${fmt(ratio(grpc?.roundTripsPerSecond, g?.roundTripsPerSecond))}x)`,
      );
    }
    const otel = get(key, "gateway-otel");
    const exportCpu = ratio(otel?.proxyCpuUsPerRoundTrip, g?.proxyCpuUsPerRoundTrip);
    if (exportCpu !== null) {
      out.push(
        `(${key}) span export on / off, gateway CPU per round trip: ${fmt(exportCpu)}x (${fmt(otel!.proxyCpuUsPerRoundTrip)} vs ${fmt(g!.proxyCpuUsPerRoundTrip)} µs/rt); ` +
          `round trips/s ${fmt(ratio(otel?.roundTripsPerSecond, g?.roundTripsPerSecond))}x`,
      );
    }
    const transports: Record<string, unknown> = {};
    for (const t of CLIENT_TRANSPORTS) {
      const p = get(key, t);
      if (p === undefined) continue;
      transports[t] = {
        cpuOverTcp: ratio(p.proxyCpuUsPerRoundTrip, g?.proxyCpuUsPerRoundTrip),
        throughputOverTcp: ratio(p.roundTripsPerSecond, g?.roundTripsPerSecond),
      };
    }
    ratios[key] = {
      gatewayVsBestPeer: vsBest,
      grpcOverTcpBackendCpuPerRoundTrip: grpcCpu,
      otelExportOnOverOffCpuPerRoundTrip: exportCpu,
      clientTransportsOverTcp: transports,
      gatewayOverHaproxyThroughput: ratio(g?.roundTripsPerSecond, h?.roundTripsPerSecond),
      gatewayOverHaproxyCpuPerRoundTrip: ratio(g?.proxyCpuUsPerRoundTrip, h?.proxyCpuUsPerRoundTrip),
      gatewayOverNginxThroughput: ratio(g?.roundTripsPerSecond, n?.roundTripsPerSecond),
      gatewayOverNginxCpuPerRoundTrip: ratio(g?.proxyCpuUsPerRoundTrip, n?.proxyCpuUsPerRoundTrip),
      nginxOverHaproxyCpuPerRoundTrip: ratio(n?.proxyCpuUsPerRoundTrip, h?.proxyCpuUsPerRoundTrip),
      gatewayPlusBackendOverHaproxyPlusEchoCpuPerRoundTrip: ratio(g?.pathCpuUsPerRoundTrip, h?.pathCpuUsPerRoundTrip),
      gatewayOverDirectThroughput: ratio(g?.roundTripsPerSecond, d?.roundTripsPerSecond),
      haproxyOverDirectThroughput: ratio(h?.roundTripsPerSecond, d?.roundTripsPerSecond),
      nginxOverDirectThroughput: ratio(n?.roundTripsPerSecond, d?.roundTripsPerSecond),
      directEchoOverBestPeerCpuPerRoundTrip: ratio(d?.backendCpuUsPerRoundTrip, bestPeer(key, FIGURES[1]!)?.value),
    };
    const cpuFigure = FIGURES[1]!;
    const cpuBest = bestPeer(key, cpuFigure);
    const cpu = ratio(g?.proxyCpuUsPerRoundTrip, cpuBest?.value);
    // The floor on this runtime: the direct Bun echo server does a client's read and write and
    // nothing else, so a Bun proxy can come under it only by making fewer syscalls per round trip.
    const floor = ratio(d?.backendCpuUsPerRoundTrip, cpuBest?.value);
    const floorNote =
      floor === null || g === undefined || g.proxyCpuUsPerRoundTrip === null
        ? ""
        : `; Bun floor (the direct echo server, no proxy hop) ${fmt(d!.backendCpuUsPerRoundTrip)} µs/rt = ${fmt(floor)}x, ` +
          `the gateway ${fmt(g.proxyCpuUsPerRoundTrip - d!.backendCpuUsPerRoundTrip!)} µs/rt above it`;
    const cpuDetail =
      cpu === null
        ? "not measured"
        : `${fmt(cpu)}x (${fmt(g!.proxyCpuUsPerRoundTrip)} vs ${cpuBest!.peer} ${fmt(cpuBest!.value)} µs/rt${perRound(key, cpuBest!.peer, (r) => r.proxyCpuUsPerRoundTrip)})${floorNote}${limitNote(g, cpuBest!.pooled)}`;
    if (!isFixed) {
      const thrBest = bestPeer(key, FIGURES[0]!);
      const thr = ratio(g?.roundTripsPerSecond, thrBest?.value);
      checks.push({
        name: `(${key}) round trips/s through the gateway >= 1.2x the best peer's`,
        met: thr === null ? null : thr >= 1.2,
        detail:
          thr === null
            ? "not measured"
            : `${fmt(thr)}x (${fmtInt(g!.roundTripsPerSecond)} vs ${thrBest!.peer} ${fmtInt(thrBest!.value)} rt/s${perRound(key, thrBest!.peer, (r) => r.roundTripsPerSecond)})${limitNote(g, thrBest!.pooled)}`,
      });
    }
    checks.push({ name: `(${key}) gateway CPU per round trip <= 0.6x the best peer's`, met: cpu === null ? null : cpu <= 0.6, detail: cpuDetail });
  }
  if (loadIds.includes("c")) {
    const g = loadResults.find((r) => r.workload === "c" && r.target === "gateway");
    const okRun = g !== undefined && g.ok;
    // A c run whose generator could not offer the load says nothing about the gateway at that load.
    const cLimit = okRun && g.generatorLimited !== null ? ` [GENERATOR-LIMITED: ${g.generatorLimited}]` : "";
    // The same load with no proxy at all: what the generator and the machine allow any target.
    const direct = loadResults.find((r) => r.workload === "c" && r.target === "direct" && r.ok);
    const directP99 = direct === undefined ? "" : `; direct (no proxy) p99 ${fmt(direct.latencyMs.p99, 3)} ms in this run`;
    const directCpu = direct === undefined ? "" : `; the direct echo server ${fmt(direct.backendCpuUsPerRoundTrip)} µs/rt`;
    checks.push({
      name: "(c) p99 round trip under 5 ms",
      met: okRun ? g.latencyMs.p99 < 5 : null,
      detail: okRun ? `p99 ${fmt(g.latencyMs.p99, 3)} ms (p50 ${fmt(g.latencyMs.p50, 3)} ms)${directP99}${cLimit}` : "not measured",
    });
    checks.push({
      name: "(c) no errors",
      met: okRun ? g.errorsTotal === 0 : null,
      detail: okRun
        ? `${fmtInt(g.errorsTotal)} errors${g.errorsTotal > 0 ? ` (${Object.entries(g.errors).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""} of ${fmtInt(g.messages.sent)} sent${cLimit}`
        : "not measured",
    });
    checks.push({
      name: "(c) gateway CPU under 0.5 core",
      met: okRun && g.proxyCoresSteady !== null ? g.proxyCoresSteady < 0.5 : null,
      detail: okRun ? `${fmt(g.proxyCoresSteady)} cores (steady window), ${fmt(g.proxyCpuUsPerRoundTrip)} µs/rt${directCpu}${cLimit}` : "not measured",
    });
  }
  if (opts.workloads.includes("d")) {
    const c = capacity.find((x) => x.target === "gateway");
    checks.push({
      name: "(d) under 2 KB of RSS per idle client connection",
      met: c !== undefined && c.bytesPerConnection !== null && c.open === opts.idle ? c.bytesPerConnection < 2048 : null,
      detail: c === undefined || c.bytesPerConnection === null ? "not measured" : `${fmtInt(c.bytesPerConnection)} B per connection (${fmtInt(c.open)} clients)`,
    });
  }

  if (opts.rounds > 1 && comparedKeys.length > 0) {
    const rows: string[][] = [];
    for (const key of comparedKeys.filter((k) => !k.startsWith("f"))) {
      for (const t of targets) {
        const p = get(key, t);
        if (p === undefined) continue;
        rows.push([key, t, String(p.rounds.length), fmtInt(p.roundTripsPerSecond), fmt(p.p99, 3), fmt(p.proxyCpuUsPerRoundTrip), fmt(p.backendCpuUsPerRoundTrip), fmt(p.generatorCores)]);
      }
    }
    out.push("", `pooled over ${opts.rounds} rounds (mean rate and p99; total CPU / total round trips):`);
    out.push(table(["workload", "target", "rounds", "round trips/s", "p99 ms", "proxy µs/rt", "backend µs/rt", "generator cores"], rows, 2));
  }
  if (bestRows.length > 0) {
    out.push(
      "",
      "the gateway against the best peer (HAProxy or nginx, whichever is better on that figure), pooled over the rounds:",
      table(["workload", "figure", "gateway", "best peer", "gateway / best", "other peer", "generator cores (gateway / best peer's run)", "gen pacing p99 ms (same)", "limit"], bestRows, 2),
    );
  }
  const transportRows: string[][] = [];
  for (const key of comparedKeys) {
    const g = get(key, "gateway");
    if (g === undefined) continue;
    for (const t of ["gateway" as TargetName, ...CLIENT_TRANSPORTS]) {
      const p = get(key, t);
      if (p === undefined || (t === "gateway" && !CLIENT_TRANSPORTS.some((x) => get(key, x) !== undefined))) continue;
      transportRows.push([key, t, fmtInt(p.roundTripsPerSecond), fmt(p.p99, 3), fmt(p.proxyCpuUsPerRoundTrip), fmt(ratio(p.proxyCpuUsPerRoundTrip, g.proxyCpuUsPerRoundTrip)), fmt(p.generatorCores), p.generatorLimited === null ? "" : "GEN"]);
    }
  }
  if (transportRows.length > 0) {
    out.push(
      "",
      "client transports (gateway = TCP; -ws = dedicated WebSocket listener; -ws-sniffed = WebSocket on the TCP port; -tls = TLS on the TCP port):",
      table(["workload", "target", "round trips/s", "p99 ms", "gateway µs/rt", "vs TCP", "generator cores", "limit"], transportRows, 2),
    );
  }
  if (capacity.length > 0) {
    const rows = capacity.map((c) => [
      c.target,
      c.measured,
      fmtInt(c.open),
      fmt((c.rssIdleBytes ?? NaN) / 2 ** 20, 1),
      fmt((c.rssLoadedBytes ?? NaN) / 2 ** 20, 1),
      fmtInt(c.bytesPerConnection ?? NaN),
      fmtInt(c.backendBytesPerConnection ?? NaN),
    ]);
    out.push("", table(["target", "measured process", "idle clients", "RSS at 0 (MiB)", "RSS loaded (MiB)", "bytes/connection", "backend bytes/connection"], rows, 2));
  }
  if (census.some((r) => r.syscalls !== undefined)) {
    const per = (m: Record<string, number> | null | undefined, ...names: string[]): string =>
      m === null || m === undefined ? "-" : fmt(names.reduce((a, n) => a + (m[n] ?? 0), 0));
    const rows = census
      .filter((r) => r.syscalls !== undefined)
      .map((r) => {
        const p = r.syscalls!.proxyPerRoundTrip;
        const b = r.syscalls!.backendPerRoundTrip;
        return [
          r.workload,
          r.target,
          fmtInt(r.roundTripsPerSecond),
          per(p, "all"),
          per(p, "sendto", "sendmsg", "write", "writev"),
          per(p, "recvfrom", "recvmsg", "read", "readv"),
          per(p, "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"),
          per(b, "all"),
          per(b, "sendto", "sendmsg", "write", "writev"),
          per(b, "recvfrom", "recvmsg", "read", "readv"),
        ];
      });
    out.push(
      "",
      "syscalls per round trip (perf stat over the steady window of separate, shorter runs; round trips estimated from the run's mean rate):",
      table(["workload", "target", "rt/s (perf on)", "proxy all", "proxy send", "proxy recv", "proxy epoll", "backend all", "backend send", "backend recv"], rows, 2),
    );
  }
  if (profile !== null && profile.top.length > 0) {
    out.push(
      "",
      `gateway CPU profile, workload ${profile.workload} (${fmtInt(profile.run?.roundTripsPerSecond ?? 0)} rt/s under the profiler); self time, % of ${fmt(profile.busyMs / 1000, 1)} s non-idle:`,
      table(
        ["#", "self %", "self ms", "function", "location"],
        profile.top.slice(0, 15).map((e, i) => [String(i + 1), fmt(e.selfPercent, 1), fmtInt(e.selfMs), e.function, e.location]),
        "rrrll",
      ),
    );
  }
  if (checks.length > 0) {
    out.push("", "targets:");
    for (const c of checks) out.push(`  ${c.met === null ? "n/a " : c.met ? "MET " : "MISS"}  ${c.name}: ${c.detail}`);
  }
  for (const [name, why] of Object.entries(skipped)) out.push(`skipped ${name}: ${why}`);
  for (const n of notes) out.push(`note: ${n}`);
  out.push(`load average before ${machine.loadavgBefore.join(" ")}, after ${machine.loadavgAfter.join(" ")}; ${((performance.now() - T0) / 1000).toFixed(0)} s`);
  console.log(out.join("\n"));

  if (noisy !== null) out.push("", describeNoisy(noisy));
  const doc = {
    date: new Date().toISOString(),
    mode: opts.quick ? "quick" : "full",
    machine,
    source,
    workloads: { ...W, d: { id: "d", idleClients: opts.idle }, f: fixed },
    rounds: opts.rounds,
    skipped,
    notes,
    fdLimit,
    results: loadResults,
    syscallCensus: census,
    capacity,
    noisyNeighbour: noisy,
    ratios,
    checks,
    profile,
  };
  mkdirSync(dirname(opts.jsonPath), { recursive: true });
  writeFileSync(opts.jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`results written to ${opts.jsonPath}`);
  if (opts.keepTemp) console.log(`temp files kept in ${tempDir}`);
  else rmSync(tempDir, { recursive: true, force: true });
}

await main();
process.exit(0);
