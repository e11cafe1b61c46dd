// Allocations per round trip in workload c's shape (open loop, 10 frames/s per client, 1 KiB
// bodies): how many heap cells of each type the gateway's process allocates per round trip, and
// which of them the runtime makes (Bun's per-read buffers) rather than the gateway's own code.
//
//   bun bench/alloc-per-roundtrip.ts                       # gateway, then direct, alternating, 3 rounds
//   bun bench/alloc-per-roundtrip.ts --targets gateway --clients 2000 --rounds 1 --json out.json
//
// This process is the measured one: it runs the real gateway in-process (Gateway.start on a
// loopback port, the same config as scripts/bench-e2e.ts), or, as the "direct" target, a bare
// Bun.listen echo server that allocates nothing itself, so whatever it shows per round trip is
// the runtime's. The demo backend and the load tester (`game-gateway loadtest`) run in their own
// processes, so their allocations are not counted.
//
// How allocations are counted: JavaScriptCore's heapStats() counts every cell in the heap,
// including dead ones not yet swept. So after gcAndSweep() (an empty slate) and a short window
// of traffic with no collection in it, the per-type difference of objectTypeCounts is what was
// allocated in the window, dead or alive. A window is kept only if no collection ran in it: a
// WeakRef to an unreachable object made at its start must still resolve at its end (any eden or
// full collection would clear it). The window is sized to stay under the eden budget (8 MiB of
// allocation by default in Bun 1.4.5; see BUN_JSC_logGC=2's "bytes allowed").
//
// Reads are counted by wrapping the handlers that receive each socket chunk (TcpClientPort.onData,
// BackendConnection.onSocketData; the echo server's data handler) with a counter: no allocation.
// A separate probe afterwards inspects a sample of chunks (whether each read brings a new
// ArrayBuffer, its size) outside the counting windows, since touching `.buffer` can itself allocate.
import { gcAndSweep, heapStats, jscDescribe } from "bun:jsc";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { parseConfig } from "../src/config/load.ts";
import { Gateway } from "../src/gateway.ts";
import { TcpClientPort } from "../src/net/tcp-listener.ts";
import { BackendConnection } from "../src/backend/backend-connection.ts";
import { flagValue, withTwoDashFlags } from "../src/cli/args.ts";

const ROOT = join(import.meta.dir, "..");
const CLI = join(ROOT, "src/cli/main.ts");
const HOST = "127.0.0.1";

const argv = withTwoDashFlags(process.argv.slice(2));
const arg = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const targets = arg("targets", "gateway,direct").split(",") as ("gateway" | "direct")[];
const clients = Number(arg("clients", "2000"));
const rate = Number(arg("rate", "10"));
const size = Number(arg("message-size", "1024"));
const rounds = Number(arg("rounds", "3"));
const windows = Number(arg("windows", "6"));
const windowMs = Number(arg("window-ms", "250"));
const warmupS = Number(arg("warmup", "3"));
const jsonOut = arg("json", "");

// ---- read counting ------------------------------------------------------------------------------

interface ReadTally {
  reads: number;
  bytes: number;
}
const clientReads: ReadTally = { reads: 0, bytes: 0 };
const backendReads: ReadTally = { reads: 0, bytes: 0 };
/** Set to an array to capture chunks for the probe (outside the counting windows only). */
let probe: Uint8Array[] | null = null;

function countRead(t: ReadTally, chunk: Uint8Array): void {
  t.reads++;
  t.bytes += chunk.length;
  if (probe !== null && probe.length < 2000) probe.push(chunk);
}

function instrumentGateway(): void {
  const port = TcpClientPort.prototype as unknown as { onData(chunk: Uint8Array): void };
  const onData = port.onData;
  port.onData = function (this: unknown, chunk: Uint8Array): void {
    countRead(clientReads, chunk);
    onData.call(this, chunk);
  };
  const conn = BackendConnection.prototype as unknown as { onSocketData(chunk: Uint8Array): void };
  const onSocketData = conn.onSocketData;
  conn.onSocketData = function (this: unknown, chunk: Uint8Array): void {
    countRead(backendReads, chunk);
    onSocketData.call(this, chunk);
  };
}

// ---- the targets ----------------------------------------------------------------------------------

interface Running {
  port: number;
  /** Clients connected now (the gateway: live sessions, which exist once a client has sent a frame). */
  live(): number;
  stop(): Promise<void>;
}

async function child(cmd: string[], ready: RegExp): Promise<{ proc: Bun.Subprocess<"ignore", "pipe", "pipe">; match: RegExpMatchArray }> {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const reader = proc.stdout.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${cmd.join(" ")} exited before ready:\n${text}`);
    text += new TextDecoder().decode(value);
    const m = text.match(ready);
    if (m !== null) {
      reader.releaseLock();
      void proc.stdout.pipeTo(new WritableStream()); // keep draining
      return { proc, match: m };
    }
  }
}

async function startGateway(): Promise<Running> {
  const demo = await child([process.execPath, CLI, "demo-backend", "--host", HOST, "--port", "0"], /demo backend listening on [\d.]+:(\d+)/);
  const backendPort = Number(demo.match[1]);
  const yaml = `
server: { listen_addr: "${HOST}:0", health_check_port: -1, gateway_name: alloc-bench }
connection_pool: { max_connections: 20000 }
security: { max_connections_per_ip: 1000000, connection_rate_limit: 1000000 }
routing:
  rules:
    - { server_type: 10, service_name: echo, strategy: round_robin, endpoints: ["${HOST}:${backendPort}"] }
log: { level: warn, access_log: "off" }
`;
  const gw = Gateway.start(parseConfig(yaml).config, { defaultMetrics: false });
  await Bun.sleep(500); // backend connections open
  return {
    port: gw.port,
    live: () => gw.sessions.size,
    stop: async () => {
      await gw.stop();
      demo.proc.kill();
      await demo.proc.exited;
    },
  };
}

/** A bare echo server: the runtime's allocations and nothing else (it writes each chunk back as is). */
function startDirect(): Running {
  let open = 0;
  const listener = Bun.listen<undefined>({
    hostname: HOST,
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        open++;
        socket.setNoDelay(true);
      },
      close() {
        open--;
      },
      data(socket: Socket<undefined>, chunk: Uint8Array) {
        countRead(clientReads, chunk);
        socket.write(chunk); // 1 KiB frames: the socket takes them whole here
      },
    },
  });
  return {
    port: listener.port,
    live: () => open,
    stop: async () => listener.stop(true),
  };
}

// ---- measuring ------------------------------------------------------------------------------------

interface Window {
  ms: number;
  clientReads: number;
  clientBytes: number;
  backendReads: number;
  backendBytes: number;
  cells: Record<string, number>;
}

function snapshotCounts(): Record<string, number> {
  return { ...heapStats().objectTypeCounts };
}

/** Cells heapStats() itself allocates between two calls, measured with nothing else running in between. */
function heapStatsOverhead(): Record<string, number> {
  gcAndSweep();
  const a = snapshotCounts();
  const b = snapshotCounts();
  return diff(a, b);
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

async function measureWindow(overhead: Record<string, number>): Promise<Window | null> {
  gcAndSweep();
  // An unreachable object: only a collection can clear the WeakRef (WeakRef targets stay alive to
  // the end of the current job, so the check happens in a later one).
  const sentinel = new WeakRef({ sentinel: true });
  const c0 = { ...clientReads };
  const b0 = { ...backendReads };
  const t0 = performance.now();
  const before = snapshotCounts();
  await Bun.sleep(windowMs);
  const after = snapshotCounts();
  const ms = performance.now() - t0;
  if (sentinel.deref() === undefined) return null; // a collection ran: the counts are not allocations
  const cells = diff(before, after);
  for (const [k, v] of Object.entries(overhead)) if (cells[k] !== undefined) cells[k] -= v;
  return {
    ms,
    clientReads: clientReads.reads - c0.reads,
    clientBytes: clientReads.bytes - c0.bytes,
    backendReads: backendReads.reads - b0.reads,
    backendBytes: backendReads.bytes - b0.bytes,
    cells,
  };
}

/** What a sample of chunks looks like: a new ArrayBuffer per read? how big? (allocates: not in a window) */
async function probeChunks(): Promise<Record<string, unknown>> {
  probe = [];
  await Bun.sleep(200);
  const chunks = probe;
  probe = null;
  const buffers = new Set<ArrayBufferLike>();
  let offsetZero = 0;
  let wholeBuffer = 0;
  for (const c of chunks) {
    buffers.add(c.buffer);
    if (c.byteOffset === 0) offsetZero++;
    if (c.buffer.byteLength === c.length) wholeBuffer++;
  }
  return {
    chunks: chunks.length,
    distinctArrayBuffers: buffers.size,
    byteOffsetZero: offsetZero,
    bufferIsExactlyTheChunk: wholeBuffer,
    constructor: chunks[0]?.constructor.name,
    describe: chunks[0] === undefined ? "" : jscDescribe(chunks[0]).slice(0, 160),
  };
}

async function loadTester(port: number, seconds: number): Promise<Bun.Subprocess> {
  return Bun.spawn(
    [process.execPath, CLI, "loadtest", "-host", HOST, "-port", String(port), "-connections", String(clients), "-rate", String(rate), "-message-size", String(size), "-duration", `${seconds}s`, "--ramp", "2500", "--json", "--processes", "1"],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
}

interface TargetResult {
  target: string;
  round: number;
  windowsKept: number;
  windowsDiscarded: number;
  roundTrips: number;
  clientReadsPerRt: number;
  backendReadsPerRt: number;
  readBytesPerRt: number;
  cellsPerRt: Record<string, number>;
  probe: Record<string, unknown>;
}

async function runTarget(target: "gateway" | "direct", round: number): Promise<TargetResult> {
  clientReads.reads = clientReads.bytes = backendReads.reads = backendReads.bytes = 0;
  const running = target === "gateway" ? await startGateway() : startDirect();
  // Long enough for a slow ramp on a busy machine; stopped once the windows are done.
  const lt = await loadTester(running.port, 300);
  // Steady state only: every client connected (the ramp allocates per connection), then warm-up.
  const rampDeadline = performance.now() + 120_000;
  while (running.live() < clients && performance.now() < rampDeadline) await Bun.sleep(100);
  await Bun.sleep(warmupS * 1000);
  const overhead = heapStatsOverhead();
  const kept: Window[] = [];
  let discarded = 0;
  for (let i = 0; i < windows * 3 && kept.length < windows; i++) {
    const w = await measureWindow(overhead);
    if (w === null) discarded++;
    else kept.push(w);
  }
  const probed = await probeChunks();
  lt.kill();
  await lt.exited;
  await running.stop();
  // A round trip is one client frame in and its reply out: frames = client bytes / frame size.
  const frame = size + 8;
  let rts = 0;
  let cReads = 0;
  let bReads = 0;
  let bytes = 0;
  const cells: Record<string, number> = {};
  for (const w of kept) {
    rts += w.clientBytes / frame;
    cReads += w.clientReads;
    bReads += w.backendReads;
    bytes += w.clientBytes + w.backendBytes;
    for (const [k, v] of Object.entries(w.cells)) cells[k] = (cells[k] ?? 0) + v;
  }
  const perRt: Record<string, number> = {};
  for (const [k, v] of Object.entries(cells).sort((a, b) => b[1] - a[1])) {
    const per = v / rts;
    if (Math.abs(per) >= 0.001) perRt[k] = Number(per.toFixed(3));
  }
  return {
    target,
    round,
    windowsKept: kept.length,
    windowsDiscarded: discarded,
    roundTrips: Math.round(rts),
    clientReadsPerRt: Number((cReads / rts).toFixed(3)),
    backendReadsPerRt: Number((bReads / rts).toFixed(4)),
    readBytesPerRt: Math.round(bytes / rts),
    cellsPerRt: perRt,
    probe: probed,
  };
}

if (targets.includes("gateway")) instrumentGateway();
const results: TargetResult[] = [];
for (let r = 1; r <= rounds; r++) {
  // A B A B ...: each round runs every target, in reverse order on even rounds.
  const order = r % 2 === 1 ? targets : [...targets].reverse();
  for (const t of order) {
    const res = await runTarget(t, r);
    results.push(res);
    console.log(JSON.stringify(res));
  }
}
if (jsonOut !== "") writeFileSync(jsonOut, JSON.stringify(results, null, 2));
process.exit(0);
