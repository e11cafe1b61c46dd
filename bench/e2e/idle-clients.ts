// Holds many idle client connections open, for the capacity workload (d) of scripts/bench-e2e.ts:
// the load tester keeps every connection busy until its duration ends, so it cannot measure what
// an idle player costs a proxy.
//
//   bun bench/e2e/idle-clients.ts --port N [--host 127.0.0.1] [--connections 15000]
//        [--send-frame] [--source-addresses N] [--concurrency 500] [--timeout-ms 60000]
//
// Dials --connections connections (at most --concurrency dials outstanding at once). With
// --send-frame each connection sends one client frame (MessageID 1, server type 10, 16-byte body)
// as soon as it opens, so a gateway gives it a session and a backend binding, and waits for the
// echo. Then it prints one JSON line on stdout:
//   {"ready":{"open":N,"failed":N,"replied":N,"closedByPeer":N,"ms":N}}
// and holds everything open, reading nothing more, until stdin closes or SIGTERM/SIGINT arrives;
// then it closes every connection, prints {"closed":{"closedByPeer":N}} and exits 0.
//
// With --source-addresses N (Linux loopback only) connection i binds 127.0.0.(1 + i mod N)-style
// addresses from 127.0.0.1 up, which keeps the ephemeral ports of one address far from exhausted.
import type { Socket, TCPSocketConnectOptions } from "bun";
import { makeServerId, writeClientHeader } from "../../src/protocol/client-frame.ts";
import { flagValue, withTwoDashFlags } from "../../src/cli/args.ts";

const argv = withTwoDashFlags(process.argv.slice(2));

const arg = (name: string, fallback: string): string => flagValue(argv, name, fallback);
const flag = (name: string): boolean => argv.includes(`--${name}`);

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));
const total = Number(arg("connections", "15000"));
const sendFrame = flag("send-frame");
const spread = Math.max(1, Number(arg("source-addresses", "1")));
const concurrency = Math.max(1, Number(arg("concurrency", "500")));
const timeoutMs = Number(arg("timeout-ms", "60000"));
if (!(port > 0 && port < 65536) || !(total > 0)) {
  process.stderr.write("usage: idle-clients.ts --port N [--connections N] [--send-frame] [--source-addresses N]\n");
  process.exit(2);
}

// [u16 Length][u16 MessageID][u32 ServerID] + body: MessageID 1, server type 10, world 0, inst 0,
// as the load tester sends by default (the gateway routes server type 10 to the echo backend).
const BODY = 16;
const frame = new Uint8Array(8 + BODY);
writeClientHeader(frame, 0, BODY, 1, makeServerId({ isZip: false, worldId: 0, serverType: 10, instId: 0 }));

function sourceAddress(k: number): string {
  const a = 1 + k;
  return `127.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

interface Conn {
  got: number;
  replied: boolean;
  closedByUs: boolean;
  open: boolean;
}

let dialled = 0;
let outstanding = 0;
let open = 0;
let failed = 0;
let replied = 0;
let closedByPeer = 0;
let ready = false;
let closing = false;
const sockets: Socket<Conn>[] = [];
const t0 = performance.now();

const handlers = {
  binaryType: "uint8array" as const,
  open(socket: Socket<Conn>) {
    outstanding--;
    open++;
    socket.data.open = true;
    sockets.push(socket);
    socket.setNoDelay(true);
    if (sendFrame) socket.write(frame);
    pump();
  },
  data(socket: Socket<Conn>, chunk: Uint8Array) {
    const c = socket.data;
    c.got += chunk.length;
    if (!c.replied && c.got >= frame.length) {
      c.replied = true;
      replied++;
      check();
    }
  },
  close(socket: Socket<Conn>) {
    const c = socket.data;
    if (!c.open) return;
    c.open = false;
    open--;
    if (!c.closedByUs) closedByPeer++;
  },
  error() {},
  connectError() {
    outstanding--;
    failed++;
    pump();
  },
};

type ConnectOptions = TCPSocketConnectOptions<Conn> & { localAddress?: string };

function pump(): void {
  while (outstanding < concurrency && dialled < total && !closing) {
    const k = dialled++;
    outstanding++;
    const opts: ConnectOptions = {
      hostname: host,
      port,
      socket: handlers,
      data: { got: 0, replied: false, closedByUs: false, open: false },
    };
    if (spread > 1) opts.localAddress = sourceAddress(k % spread);
    Bun.connect(opts).catch(() => {});
  }
  check();
}

function check(): void {
  if (ready) return;
  const allDialled = dialled === total && outstanding === 0;
  const allReplied = !sendFrame || replied >= open;
  if ((allDialled && allReplied) || performance.now() - t0 > timeoutMs) {
    ready = true;
    clearInterval(watchdog);
    const ms = Math.round(performance.now() - t0);
    process.stdout.write(`${JSON.stringify({ ready: { open, failed, replied, closedByPeer, ms } })}\n`);
  }
}

const watchdog = setInterval(check, 250);

function shutdown(): void {
  if (closing) return;
  closing = true;
  for (const s of sockets) {
    s.data.closedByUs = true;
    s.terminate();
  }
  process.stdout.write(`${JSON.stringify({ closed: { closedByPeer } })}\n`, () => process.exit(0));
}

process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
// The parent closes our stdin to end the hold.
(async () => {
  for await (const _ of Bun.stdin.stream()) {
    // nothing is expected on stdin; it only ending matters
  }
  shutdown();
})();

pump();
