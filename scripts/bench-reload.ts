// Reload stall benchmark: how long live clients wait while a gateway reloads a large config file.
//
//   bun scripts/bench-reload.ts [--main PATH] [--bytes N] [--clients N] [--rounds N]
//
// Starts a demo backend (in this process) and a gateway (`bun <main> --config FILE`, a separate
// process), keeps --clients closed-loop clients sending through it, and then:
//   valid     rewrites FILE as valid YAML of --bytes bytes (default: the largest the loader allows,
//             MAX_CONFIG_FILE_BYTES), one route per (server_type, world) to the same backend;
//   oversize  rewrites FILE at twice that size (refused unread by a capped loader).
// For each it reports the longest time any client waited for a reply while the reload ran
// (from writing the file, which the gateway's watcher picks up after its 250 ms debounce, to
// its "config reloaded"/"reload refused" log line, plus 200 ms), the
// same over a quiet window of equal length before it (the noise floor), and the gateway's peak
// RSS (VmHWM). --main points at another checkout's src/cli/main.ts to measure the code before a
// change. Timings are this machine's, under whatever else runs on it: compare runs side by side.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GameClient, serverIdFor } from "../src/client/game-client.ts";
import { MAX_CONFIG_FILE_BYTES } from "../src/config/load.ts";
import { DemoBackend } from "../src/demo/demo-backend.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}
const MAIN = resolve(arg("main", join(import.meta.dir, "../src/cli/main.ts")));
const BYTES = Number(arg("bytes", String(MAX_CONFIG_FILE_BYTES)));
const CLIENTS = Number(arg("clients", "20"));
const ROUNDS = Number(arg("rounds", "3"));
const T = 10;

const backend = await DemoBackend.start({ port: 0 });
const endpoint = `127.0.0.1:${backend.port}`;
const dir = mkdtempSync(join(tmpdir(), "gw-bench-reload-"));
const file = join(dir, "gw.yaml");
const HEAD = [
  "server:",
  '  listen_addr: "127.0.0.1:0"',
  "  health_check_port: -1",
  "  workers: 1",
  "security: { max_connections_per_ip: 100000, connection_rate_limit: 100000 }",
  "log: { level: info, access_log: off }",
  "routing:",
  "  rules:",
  `    - { server_type: ${T}, endpoints: ["${endpoint}"] }`,
];

/** Valid YAML of about `bytes` bytes: the base rule plus one rule per (server_type, world). */
function bigConfig(bytes: number): string {
  const lines = [...HEAD];
  let size = lines.join("\n").length;
  for (let i = 0; ; i++) {
    const l = `    - { server_type: ${i % 256}, world_id: ${Math.floor(i / 256) + 1}, service_name: filler-${i}, strategy: round_robin, endpoints: ["${endpoint}"] }`;
    if (size + l.length + 2 > bytes) break;
    lines.push(l);
    size += l.length + 1;
  }
  return `${lines.join("\n")}\n`;
}

writeFileSync(file, `${HEAD.join("\n")}\n`);
const gw = Bun.spawn([process.execPath, MAIN, "--config", file], { stdout: "pipe", stderr: "inherit", stdin: "ignore" });
const logLines: string[] = [];
const port = await new Promise<number>((resolvePort, reject) => {
  const reader = gw.stdout.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let found = false;
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return found ? undefined : reject(new Error("gateway exited"));
      buf += decoder.decode(value);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logLines.push(line);
        const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(line);
        if (m && !found) {
          found = true;
          resolvePort(Number(m[1]));
        }
      }
    }
  })();
});

// Closed-loop clients; gapMax is the longest wait for a reply since the last reset.
let gapMax = 0;
let running = true;
const clients = await Promise.all(Array.from({ length: CLIENTS }, () => GameClient.connect("127.0.0.1", port)));
const loops = clients.map(async (c, i) => {
  const body = new TextEncoder().encode(`client ${i}`);
  while (running) {
    const t0 = performance.now();
    c.send(1, serverIdFor(T), body);
    await c.next(60_000);
    gapMax = Math.max(gapMax, performance.now() - t0);
  }
});

const peakRssMb = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const outcomes = () => logLines.filter((l) => l.includes('"body":"config reloaded"') || l.includes('"body":"config reload refused'));

/** Writes FILE (the gateway's watcher reloads it) and waits for the gateway to log the outcome. */
async function reloadWith(text: string): Promise<boolean> {
  const before = outcomes().length;
  writeFileSync(file, text);
  while (outcomes().length === before) await Bun.sleep(5);
  return outcomes().at(-1)!.includes('"config reloaded"');
}

async function measure(text: string): Promise<{ quietMs: number; reloadMs: number; maxGapMs: number; ok: boolean }> {
  gapMax = 0;
  await Bun.sleep(1000); // the noise floor: the same clients with nothing reloading
  const quietMs = gapMax;
  gapMax = 0;
  const t0 = performance.now();
  const ok = await reloadWith(text);
  const reloadMs = performance.now() - t0;
  await Bun.sleep(200);
  return { quietMs, reloadMs, maxGapMs: gapMax, ok };
}

const fmt = (n: number): string => n.toFixed(1).padStart(8);
console.log(`gateway: ${MAIN}\nclients: ${CLIENTS}, file cap: ${MAX_CONFIG_FILE_BYTES} bytes`);
console.log("case       file bytes   applied  reload ms  max gap ms  quiet gap ms");
for (const [name, bytes] of [["valid", BYTES], ["oversize", 2 * MAX_CONFIG_FILE_BYTES]] as const) {
  const text = bigConfig(bytes);
  for (let r = 0; r < ROUNDS; r++) {
    await reloadWith(`${HEAD.join("\n")}\n# round ${r}\n`); // back to a small file between rounds
    const m = await measure(text);
    console.log(`${name.padEnd(10)} ${String(text.length).padStart(10)}   ${String(m.ok).padEnd(7)} ${fmt(m.reloadMs)}    ${fmt(m.maxGapMs)}      ${fmt(m.quietMs)}`);
  }
}
console.log(`gateway peak RSS (VmHWM): ${peakRssMb().toFixed(0)} MB`);
running = false;
for (const c of clients) c.close();
await Promise.allSettled(loops);
gw.kill("SIGTERM");
await gw.exited;
await backend.stop();
