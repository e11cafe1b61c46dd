// The cost of a round trip over each client transport, through one gateway process:
//   tcp       game clients on listen_addr (raw framed TCP)
//   ws        Bun WebSocket clients on the dedicated listener (server.ws_listen_addr, Bun.serve)
//   sniffed   Bun WebSocket clients on listen_addr (found by sniffing; websocket-driver framing)
// Each mode: --clients closed-loop clients, 1 frame in flight, 64-byte bodies, for --seconds;
// modes alternate over --rounds (tcp, ws, sniffed, then reversed) so machine load hits all alike.
// Reported: round trips/s and the gateway process's CPU (utime+stime) per round trip.
//
// --tls: the gateway serves TLS on both listeners (server.tls.*, a self-signed certificate made
// with openssl), and the clients connect with TLS (wss:// for both WebSocket modes).
//
//   bun bench/ws-roundtrip.ts [--clients 50] [--seconds 5] [--rounds 2] [--tls]
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { serverIdFor } from "../src/client/game-client.ts";
import { encodeClientFrame } from "../src/protocol/client-frame.ts";

const ROOT = resolve(import.meta.dir, "..");
const CLI = join(ROOT, "src/cli/main.ts");
const HOST = "127.0.0.1";
const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args[i + 1]);
};
const CLIENTS = opt("--clients", 50);
const SECONDS = opt("--seconds", 5);
const ROUNDS = opt("--rounds", 2);
const TLS = args.includes("--tls");
const FRAME = encodeClientFrame(1, serverIdFor(10), new Uint8Array(64).fill(7));

type Mode = "tcp" | "ws" | "sniffed";

function cpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // CLK_TCK is 100 on Linux
}

async function waitLine(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<RegExpExecArray> {
  const reader = stream.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${re}: ${text}`);
    text += new TextDecoder().decode(value);
    const m = re.exec(text);
    if (m !== null) {
      reader.releaseLock();
      return m;
    }
  }
}

/** One closed-loop client; resolves to its round trips when `until` passes. */
async function runClient(mode: Mode, tcpPort: number, wsPort: number, until: number): Promise<number> {
  let trips = 0;
  let got = 0;
  return new Promise<number>((resolveTrips, reject) => {
    const onBytes = (n: number, send: () => void, close: () => void) => {
      got += n;
      while (got >= FRAME.length) {
        got -= FRAME.length;
        trips++;
        if (Date.now() >= until) {
          close();
          return resolveTrips(trips);
        }
        send();
      }
    };
    if (mode === "tcp") {
      void Bun.connect({
        hostname: HOST,
        port: tcpPort,
        ...(TLS ? { tls: { rejectUnauthorized: false } } : {}),
        socket: {
          // With TLS, "open" comes before the handshake: write once it is done.
          ...(TLS ? { handshake: (s) => void s.write(FRAME) } : { open: (s) => void s.write(FRAME) }),
          data: (s, chunk) => onBytes(chunk.length, () => void s.write(FRAME), () => s.end()),
          error: (_s, e) => reject(e),
        },
      });
      return;
    }
    const scheme = TLS ? "wss" : "ws";
    const url = mode === "ws" ? `${scheme}://${HOST}:${wsPort}/ws` : `${scheme}://${HOST}:${tcpPort}/`;
    // Bun's WebSocket takes TLS options as a second argument (not in the DOM typing).
    const ws = new WebSocket(url, (TLS ? { tls: { rejectUnauthorized: false } } : undefined) as unknown as string[]);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => ws.send(FRAME);
    ws.onmessage = (e) => onBytes((e.data as ArrayBuffer).byteLength, () => ws.send(FRAME), () => ws.close());
    ws.onerror = () => reject(new Error(`${mode} client failed`));
  });
}

const tmp = mkdtempSync(join(tmpdir(), "ws-rt-"));
const demo = Bun.spawn([process.execPath, CLI, "demo-backend", "--host", HOST, "--port", "0"], { stdout: "pipe", stderr: "inherit" });
const backendPort = Number((await waitLine(demo.stdout, /demo backend listening on [\d.]+:(\d+)/))[1]);
const free = () => {
  const s = Bun.listen({ hostname: HOST, port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
};
const tcpPort = free();
const wsPort = free();
let tlsYaml = "";
if (TLS) {
  const made = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "gw.key", "-out", "gw.crt", "-days", "1", "-subj", "/CN=ws-bench"], { cwd: tmp });
  if (made.exitCode !== 0) throw new Error(`openssl: ${made.stderr.toString()}`);
  tlsYaml = `, tls: { cert_file: "${join(tmp, "gw.crt")}", key_file: "${join(tmp, "gw.key")}" }`;
}
const cfg = join(tmp, "gateway.yaml");
writeFileSync(
  cfg,
  `server: { listen_addr: "${HOST}:${tcpPort}", ws_listen_addr: "${HOST}:${wsPort}", health_check_port: -1, workers: 1, gateway_name: ws-bench${tlsYaml} }
security: { max_connections_per_ip: 1000000, connection_rate_limit: 1000000 }
routing: { rules: [ { server_type: 10, service_name: echo, strategy: round_robin, endpoints: ["${HOST}:${backendPort}"] } ] }
log: { level: warn, access_log: "off" }
`,
);
const gw = Bun.spawn([process.execPath, CLI, "--config", cfg], { stdout: "inherit", stderr: "inherit" });
await Bun.sleep(1500);

const totals: Record<Mode, { trips: number; cpu: number; wall: number }> = {
  tcp: { trips: 0, cpu: 0, wall: 0 },
  ws: { trips: 0, cpu: 0, wall: 0 },
  sniffed: { trips: 0, cpu: 0, wall: 0 },
};
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order: Mode[] = r % 2 === 0 ? ["tcp", "ws", "sniffed"] : ["sniffed", "ws", "tcp"];
    for (const mode of order) {
      const cpu0 = cpuSeconds(gw.pid);
      const t0 = Date.now();
      const until = t0 + SECONDS * 1000;
      const trips = (await Promise.all(Array.from({ length: CLIENTS }, () => runClient(mode, tcpPort, wsPort, until)))).reduce((a, b) => a + b, 0);
      const wall = (Date.now() - t0) / 1000;
      await Bun.sleep(300); // closes settle (their CPU is counted: connection setup and teardown included)
      const cpu = cpuSeconds(gw.pid) - cpu0;
      totals[mode].trips += trips;
      totals[mode].cpu += cpu;
      totals[mode].wall += wall;
      console.log(`round ${r + 1} ${mode}: ${Math.round(trips / wall)} rt/s, gateway ${((cpu / trips) * 1e6).toFixed(1)} µs/rt`);
    }
  }
  const us = (m: Mode) => (totals[m].cpu / totals[m].trips) * 1e6;
  const rate = (m: Mode) => totals[m].trips / totals[m].wall;
  console.log(`\n${TLS ? "TLS on both listeners" : "plain"}`);
  console.log(`| transport | round trips/s | gateway µs CPU/rt | CPU/rt vs tcp |`);
  console.log(`|---|---|---|---|`);
  for (const m of ["tcp", "ws", "sniffed"] as Mode[]) {
    console.log(`| ${m} | ${Math.round(rate(m))} | ${us(m).toFixed(1)} | ${(us(m) / us("tcp")).toFixed(2)} |`);
  }
} finally {
  gw.kill();
  demo.kill();
}
