// How long an event loop with a backlog of socket reads takes to run a setImmediate, under Bun and
// under Node, against the same load. It is why BatchedSocketWriter writes a batch past
// EARLY_WRITE_BYTES at once instead of waiting for its end-of-turn immediate
// (docs/performance.md, "c: the early write").
//
//   bun bench/immediate-backlog.ts                  # 5,000 clients, bursts every 100 ms, 1 KiB, 10 s
//   bun bench/immediate-backlog.ts --clients 2000 --seconds 5
//
// The same echo server runs twice, under Bun (Bun.listen) and under Node (node:net), one after the
// other. A Node child process (libuv timers, so the load's own timing is not Bun's) opens N
// connections and every 100 ms has every connection send one message of --size bytes at once, so
// each burst makes N sockets readable together. The server writes each chunk straight back and
// carries two probes:
//   1. setImmediate: the first read after the last immediate ran schedules one; when it runs, the
//      reads dispatched in between and the delay are recorded;
//   2. a setInterval(1 ms): how late each tick is.
// Each server prints one JSON line. `node` must be on PATH.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flagValue, withTwoDashFlags } from "../src/cli/args.ts";

const argv = withTwoDashFlags(process.argv.slice(2));
const clients = Number(flagValue(argv, "clients", "5000"));
const size = Number(flagValue(argv, "size", "1024"));
const seconds = Number(flagValue(argv, "seconds", "10"));

// The probes, shared by both servers (plain JavaScript, so Node runs it as is).
const PROBES = `
let reads = 0, pending = false, schedAt = 0, readsAtSched = 0;
const delays = [], between = [], lags = [];
function ran() { pending = false; delays.push(performance.now() - schedAt); between.push(reads - readsAtSched); }
function onRead() {
  reads++;
  if (!pending) { pending = true; schedAt = performance.now(); readsAtSched = reads; setImmediate(ran); }
}
let last = performance.now();
setInterval(() => { const now = performance.now(); lags.push(now - last - 1); last = now; }, 1);
function q(a, p) { const b = [...a].sort((x, y) => x - y); return b.length === 0 ? 0 : +b[Math.min(b.length - 1, Math.floor(b.length * p))].toFixed(2); }
function report(runtime) {
  return JSON.stringify({ runtime, reads, immediates: delays.length,
    immediateDelayMs: { p50: q(delays, 0.5), p99: q(delays, 0.99), max: q(delays, 1) },
    readsBeforeImmediate: { p50: q(between, 0.5), p99: q(between, 0.99), max: q(between, 1) },
    timerLateMs: { p99: q(lags, 0.99), max: q(lags, 1), over50: lags.filter((x) => x > 50).length } });
}
`;

const BUN_SERVER = `${PROBES}
const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data(s, d) { onRead(); s.write(d); } } });
console.log("port " + server.port);
process.on("SIGTERM", () => { console.log(report("bun " + Bun.version)); process.exit(0); });
`;

const NODE_SERVER = `${PROBES}
const net = require("node:net");
const server = net.createServer({ noDelay: true }, (s) => { s.on("data", (d) => { onRead(); s.write(d); }); s.on("error", () => {}); });
server.listen(0, "127.0.0.1", () => console.log("port " + server.address().port));
process.on("SIGTERM", () => { console.log(report("node " + process.version)); process.exit(0); });
`;

// Every 100 ms every connection sends one message at once: bursts of N readable sockets.
const CLIENT = `
const net = require("node:net");
const [port, n, size, seconds] = process.argv.slice(2).map(Number);
const msg = Buffer.alloc(size, 7);
const socks = [];
let opened = 0, echoed = 0;
for (let i = 0; i < n; i++) {
  const s = net.connect({ port, host: "127.0.0.1", noDelay: true }, () => opened++);
  s.on("data", (d) => (echoed += d.length));
  s.on("error", () => {});
  socks.push(s);
}
const wait = setInterval(() => {
  if (opened < n) return;
  clearInterval(wait);
  const burst = setInterval(() => { for (const s of socks) s.write(msg); }, 100);
  setTimeout(() => { clearInterval(burst); setTimeout(() => { console.log(JSON.stringify({ sentBytes: Math.round(seconds * 10) * n * size, echoedBytes: echoed })); process.exit(0); }, 1000); }, seconds * 1000);
}, 10);
`;

async function readLine(reader: { read(): Promise<{ value?: Uint8Array; done: boolean }> }, until: RegExp, seen = ""): Promise<string> {
  let out = seen;
  while (!until.test(out)) {
    const { value, done } = await reader.read();
    if (done) return out;
    out += new TextDecoder().decode(value);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "immediate-backlog-"));
try {
  writeFileSync(join(dir, "bun-server.js"), BUN_SERVER);
  writeFileSync(join(dir, "node-server.cjs"), NODE_SERVER);
  writeFileSync(join(dir, "client.cjs"), CLIENT);
  for (const [runtime, file] of [
    [process.execPath, "bun-server.js"],
    ["node", "node-server.cjs"],
  ] as const) {
    const server = Bun.spawn([runtime, join(dir, file)], { stdout: "pipe", stderr: "inherit" });
    const reader = server.stdout.getReader();
    const first = await readLine(reader, /port \d+/);
    const port = /port (\d+)/.exec(first)?.[1];
    if (port === undefined) throw new Error(`${file} exited before listening`);
    const client = Bun.spawn(["node", join(dir, "client.cjs"), port, String(clients), String(size), String(seconds)], { stdout: "pipe", stderr: "inherit" });
    const load = (await new Response(client.stdout).text()).trim();
    server.kill("SIGTERM");
    const rest = await readLine(reader, /"runtime"[^\n]*\n/);
    console.log(rest.slice(rest.indexOf("{")).trim(), load);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
