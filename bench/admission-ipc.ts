// What a worker pays per connection to ask the supervisor for its per-IP admission: a
// RemoteAdmission in a child process (test/net/fixtures/admission-worker.ts) does admit + release
// round trips one after another against an AdmissionBroker in this process over Bun's IPC,
// alternated (A B A B ...) with the single-process path (AdmissionControl.request + release in
// this process), and the ratio is reported per round, so machine noise shows as spread.
//
//   bun bench/admission-ipc.ts [--rounds 6] [--n 20000]

import { AdmissionBroker } from "../src/net/admission-broker.ts";
import { AdmissionControl } from "../src/net/admission.ts";
import type { AdmissionWaiter } from "../src/net/admission-gate.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.findIndex((a) => a === `--${name}` || a === `-${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = flag("rounds", 6);
const n = flag("n", 20_000);
const LIMITS = { maxPerIp: 1_000_000, ratePerSec: 1e12, maxTrackedIps: 100_000 };

const broker = new AdmissionBroker(LIMITS);
let onBench: ((ns: number) => void) | null = null;
let onReady: (() => void) | null = null;
const child = Bun.spawn({
  cmd: [process.execPath, new URL("../test/net/fixtures/admission-worker.ts", import.meta.url).pathname],
  env: { ...process.env, WORKER: "0" },
  stdout: "inherit",
  stderr: "inherit",
  ipc(message, proc) {
    const reply = broker.receive(message, 0);
    if (reply !== null) return void proc.send(reply);
    const m = message as { t: string; ns?: number };
    if (m.t === "bench") onBench?.(m.ns!);
    else if (m.t === "ready") onReady?.();
  },
});
await new Promise<void>((resolve) => (onReady = resolve));

const remoteRound = (count: number): Promise<number> =>
  new Promise((resolve) => {
    onBench = (ns) => resolve(ns / count);
    child.send({ t: "bench", ip: "198.51.100.7", n: count });
  });

const local = new AdmissionControl(LIMITS);
const noWaiter: AdmissionWaiter = { admissionDecided: () => {} };
let sink = 0;
function localRound(count: number): number {
  const started = Bun.nanoseconds();
  for (let i = 0; i < count; i++) {
    if (local.request("198.51.100.7", noWaiter) === null) local.release("198.51.100.7");
    else sink++;
  }
  return (Bun.nanoseconds() - started) / count;
}

// Warm both paths (JIT, IPC channel).
localRound(n);
await remoteRound(Math.min(n, 2000));

const rows: { local: number; remote: number }[] = [];
for (let r = 0; r < rounds; r++) {
  const l = localRound(n * 50); // the local path is ~1000x cheaper: more iterations for a readable time
  const remote = await remoteRound(n);
  rows.push({ local: l, remote });
}
child.kill();

const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
console.log("round  local (sync)  remote (IPC round trip)  ratio");
for (const [i, row] of rows.entries()) console.log(`${String(i + 1).padStart(5)}  ${fmt(row.local).padStart(12)}  ${fmt(row.remote).padStart(23)}  ${(row.remote / row.local).toFixed(0)}x`);
const ratios = rows.map((r) => r.remote / r.local).sort((a, b) => a - b);
const remotes = rows.map((r) => r.remote).sort((a, b) => a - b);
console.log(
  `median: remote ${fmt(remotes[Math.floor(remotes.length / 2)]!)} per admission (admit + answer + release), ratio ${ratios[Math.floor(ratios.length / 2)]!.toFixed(0)}x; ` +
    `spread of the remote figure ${fmt(remotes[0]!)} .. ${fmt(remotes.at(-1)!)}${sink > 0 ? ` (${sink} refused)` : ""}`,
);
