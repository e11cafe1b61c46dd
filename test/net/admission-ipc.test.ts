// Machine-wide per-IP limits across processes: two child processes, each a worker's real
// RemoteAdmission, share the parent's AdmissionBroker over Bun's IPC (Bun.spawn with ipc), as
// the supervisor's workers do.

import { afterEach, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { AdmissionBroker } from "../../src/net/admission-broker.ts";
import { ADMISSION_PENDING, type GateRefusal } from "../../src/net/admission-gate.ts";
import { RemoteAdmission } from "../../src/net/remote-admission.ts";
import { eventually } from "../support/eventually.ts";

const FIXTURE = new URL("./fixtures/admission-worker.ts", import.meta.url).pathname;

interface Worker {
  readonly index: number;
  readonly proc: Subprocess;
  /** The next control reply of type t from this child. */
  next(t: string): Promise<Record<string, unknown>>;
}

const children: Subprocess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill();
});

async function spawnWorker(broker: AdmissionBroker, index: number): Promise<Worker> {
  const inbox: Record<string, unknown>[] = [];
  const waiting: { t: string; resolve: (m: Record<string, unknown>) => void }[] = [];
  const deliver = (): void => {
    for (let i = 0; i < waiting.length; i++) {
      const at = inbox.findIndex((m) => m.t === waiting[i]!.t);
      if (at < 0) continue;
      const [m] = inbox.splice(at, 1);
      waiting.splice(i--, 1)[0]!.resolve(m!);
    }
  };
  const proc = Bun.spawn({
    cmd: [process.execPath, FIXTURE],
    env: { ...process.env, WORKER: String(index) },
    stdout: "inherit",
    stderr: "inherit",
    ipc(message, child) {
      // What the supervisor does: the broker answers admission messages, on the channel they came by.
      const reply = broker.receive(message, index);
      if (reply !== null) return void child.send(reply);
      if ((message as { t?: string }).t === "admit" || (message as { t?: string }).t === "release") return;
      inbox.push(message as Record<string, unknown>);
      deliver();
    },
  });
  children.push(proc);
  void proc.exited.then(() => broker.dropWorker(index));
  const worker: Worker = {
    index,
    proc,
    next: (t) =>
      new Promise((resolve) => {
        waiting.push({ t, resolve });
        deliver();
      }),
  };
  await worker.next("ready");
  return worker;
}

const admittedIn = (m: Record<string, unknown>): number => (m.results as (string | null)[]).filter((r) => r === null).length;

describe("RemoteAdmission over IPC, two workers, one broker", () => {
  test("8 attempts from one address with max_connections_per_ip 3: exactly 3 admitted across both", async () => {
    const broker = new AdmissionBroker({ maxPerIp: 3, ratePerSec: 1_000_000, maxTrackedIps: 1000 });
    const [a, b] = await Promise.all([spawnWorker(broker, 0), spawnWorker(broker, 1)]);
    const triedA = a.next("tried");
    const triedB = b.next("tried");
    a.proc.send({ t: "try", ip: "198.51.100.7", n: 4 });
    b.proc.send({ t: "try", ip: "198.51.100.7", n: 4 });
    const [ra, rb] = await Promise.all([triedA, triedB]);
    expect(admittedIn(ra) + admittedIn(rb)).toBe(3);
    for (const r of [...(ra.results as unknown[]), ...(rb.results as unknown[])]) expect(r === null || r === "per_ip_limit").toBe(true);
    expect(broker.heldBy(0, "198.51.100.7") + broker.heldBy(1, "198.51.100.7")).toBe(3);

    // Another address is not held back by this one.
    const other = a.next("tried");
    a.proc.send({ t: "try", ip: "198.51.100.8", n: 1 });
    expect(admittedIn(await other)).toBe(1);

    // Release one (by the worker that holds one), and the next attempt from either worker is admitted.
    const holder = admittedIn(ra) > 0 ? a : b;
    const released = holder.next("released");
    holder.proc.send({ t: "release", ip: "198.51.100.7", n: 1 });
    await released;
    const notHolder = holder === a ? b : a;
    const again = notHolder.next("tried");
    notHolder.proc.send({ t: "try", ip: "198.51.100.7", n: 2 });
    expect((await again).results).toEqual([null, "per_ip_limit"]);
  });

  test("a worker killed: everything it held is released for the others", async () => {
    const broker = new AdmissionBroker({ maxPerIp: 3, ratePerSec: 1_000_000, maxTrackedIps: 1000 });
    const [a, b] = await Promise.all([spawnWorker(broker, 0), spawnWorker(broker, 1)]);
    const tried = a.next("tried");
    a.proc.send({ t: "try", ip: "198.51.100.7", n: 3 });
    expect(admittedIn(await tried)).toBe(3);
    const refused = b.next("tried");
    b.proc.send({ t: "try", ip: "198.51.100.7", n: 1 });
    expect((await refused).results).toEqual(["per_ip_limit"]);

    a.proc.kill("SIGKILL");
    await a.proc.exited;
    await eventually(() => broker.heldBy(0) === 0, "the dead worker's counts to be dropped");
    const afterKill = b.next("tried");
    b.proc.send({ t: "try", ip: "198.51.100.7", n: 4 });
    expect((await afterKill).results).toEqual([null, null, null, "per_ip_limit"]);
  });
});

describe("RemoteAdmission over IPC, the broker's process stalled past the timeout", () => {
  const BROKER = new URL("./fixtures/admission-broker.ts", import.meta.url).pathname;
  const TIMEOUT_MS = 150;

  test("a question refused by timeout and answered 'admitted' long after: the slot comes back, exactly max_connections_per_ip admitted again", async () => {
    const fromBroker: Record<string, unknown>[] = [];
    let gate: RemoteAdmission | null = null;
    const proc = Bun.spawn({
      cmd: [process.execPath, BROKER],
      env: { ...process.env, MAX_PER_IP: "3" },
      stdout: "inherit",
      stderr: "inherit",
      ipc(message) {
        if (gate?.receive(message)) return;
        fromBroker.push(message as Record<string, unknown>);
      },
    });
    children.push(proc);
    const nextFromBroker = async (t: string): Promise<Record<string, unknown>> => {
      await eventually(() => fromBroker.some((m) => m.t === t), `the broker's ${t}`);
      return fromBroker.splice(fromBroker.findIndex((m) => m.t === t), 1)[0]!;
    };
    await nextFromBroker("ready");
    // This process is the worker: its real RemoteAdmission, asking the child's broker.
    gate = new RemoteAdmission((m) => void proc.send(m), { worker: 0, timeoutMs: TIMEOUT_MS });
    const ip = "198.51.100.9";
    const attempt = (n: number): Promise<(GateRefusal | null)[]> =>
      new Promise((resolve) => {
        const results: (GateRefusal | null)[] = [];
        const waiter = {
          admissionDecided(r: GateRefusal | null) {
            results.push(r);
            if (results.length === n) resolve(results);
          },
        };
        for (let i = 0; i < n; i++) expect(gate!.request(ip, waiter)).toBe(ADMISSION_PENDING);
      });

    // The supervisor stalls; one connection waits, is refused by the timeout, and the worker moves on
    // for longer than it keeps an abandoned question (twice the timeout).
    proc.kill("SIGSTOP");
    try {
      expect(await attempt(1)).toEqual(["admission_timeout"]);
      await Bun.sleep(TIMEOUT_MS * 4);
      expect(gate.pending).toBe(0);
    } finally {
      proc.kill("SIGCONT");
    }
    // The broker now answers the old question ("admitted": it counts it as worker 0's); the pong
    // comes after that answer and after anything the worker sent back in between.
    proc.send({ t: "ping" });
    await nextFromBroker("pong");
    proc.send({ t: "ping" });
    expect((await nextFromBroker("pong")).held).toBe(0);

    const results = await attempt(10);
    expect(results.filter((r) => r === null)).toHaveLength(3);
    expect(results.filter((r) => r === "per_ip_limit")).toHaveLength(7);
    gate.close();
  });
});
