// --processes N: one process can hold only as many sockets as its fd limit allows and only one
// core's worth of event loop, so the connections are split over N worker processes, each running
// this same load test on its share and reporting JSON lines on stdout; the parent merges them.
import type { LoadtestOptions } from "./options.ts";
import { type ProgressSnapshot, type RunResult, emptyResult, mergeResults } from "./result.ts";
import { Histogram } from "./histogram.ts";

/** One JSON object per line on a worker's stdout. */
export type WorkerMessage = { readonly progress: ProgressSnapshot } | { readonly result: RunResult };

export interface WorkerOutput {
  readonly stderr: (s: string) => void;
  /** Merged progress of all workers, each second (only when asked for). */
  readonly onProgress?: (p: ProgressSnapshot) => void;
}

/**
 * How to start this load test again as a child. A compiled executable (`bun build --compile`)
 * embeds its sources under a virtual /$bunfs/ root (B:/~BUN/ on Windows) that cannot be run
 * directly, so there the child is the executable itself with the `loadtest` subcommand; from
 * source it is Bun running this folder's main.ts.
 */
export function childCommand(): string[] {
  const self = import.meta.path;
  const compiled = self.startsWith("/$bunfs/") || self.includes("~BUN");
  if (compiled) return [process.execPath, "loadtest"];
  return [process.execPath, `${import.meta.dir}/main.ts`];
}

/** Splits n into `parts` shares differing by at most one. */
export function shares(n: number, parts: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < parts; i++) out.push(Math.floor(n / parts) + (i < n % parts ? 1 : 0));
  return out;
}

export function workerArgs(o: LoadtestOptions, share: number, base: number, sourceAddresses: number, progress: boolean): string[] {
  return [
    "--worker",
    `--worker-progress=${progress}`,
    `--host=${o.host}`,
    `--port=${o.port}`,
    `--connections=${share}`,
    `--conn-base=${base}`,
    `--duration=${o.durationMs}ms`,
    `--rate=${o.rate}`,
    `--in-flight=${o.inFlight}`,
    `--message-size=${o.messageSize}`,
    `--server-type=${o.serverType}`,
    `--world-id=${o.worldId}`,
    `--inst-id=${o.instId}`,
    `--timeout=${o.dialTimeoutMs}ms`,
    `--reply-timeout=${o.replyTimeoutMs}ms`,
    `--ramp=${(o.ramp * share) / o.connections}`,
    `--source-addresses=${sourceAddresses}`,
    `--verbose=${o.verbose}`,
    `--ws=${o.ws}`,
    `--ws-path=${o.wsPath}`,
    `--tls=${o.tls}`,
    `--tls-insecure=${o.tlsInsecure}`,
    ...(o.tlsCa === "" ? [] : [`--tls-ca=${o.tlsCa}`]),
  ];
}

async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") onLine(pending);
}

function mergeProgress(parts: readonly ProgressSnapshot[]): ProgressSnapshot {
  const h = new Histogram();
  const p: ProgressSnapshot = { elapsedMs: 0, open: 0, attempted: 0, failed: 0, sent: 0, received: 0, errors: 0, latency: h.toJSON() };
  for (const s of parts) {
    p.elapsedMs = Math.max(p.elapsedMs, s.elapsedMs);
    p.open += s.open;
    p.attempted += s.attempted;
    p.failed += s.failed;
    p.sent += s.sent;
    p.received += s.received;
    p.errors += s.errors;
    h.merge(s.latency);
  }
  p.latency = h.toJSON();
  return p;
}

export interface WorkerPool {
  readonly done: Promise<RunResult>;
  /** Forwards Ctrl-C: each worker stops sending and reports what it has. */
  interrupt(): void;
  /** Ends every worker now (a second Ctrl-C). */
  kill(): void;
}

export function startWorkers(o: LoadtestOptions, sourceAddresses: number, out: WorkerOutput): WorkerPool {
  const cmd = childCommand();
  const split = shares(o.connections, o.processes);
  const latest: (ProgressSnapshot | null)[] = split.map(() => null);
  const procs: Bun.Subprocess<"ignore", "pipe", "pipe">[] = [];
  let base = 0;
  const runs = split.map((share, i) => {
    const args = workerArgs(o, share, base, sourceAddresses, out.onProgress !== undefined);
    base += share;
    const proc = Bun.spawn({ cmd: [...cmd, ...args], stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    procs.push(proc);
    let result: RunResult | null = null;
    const badLines: string[] = [];
    const readOut = forEachLine(proc.stdout, (line) => {
      if (line.trim() === "") return;
      let msg: WorkerMessage;
      try {
        msg = JSON.parse(line) as WorkerMessage;
      } catch {
        badLines.push(line);
        return;
      }
      if ("progress" in msg) latest[i] = msg.progress;
      else if ("result" in msg) result = msg.result;
    });
    const readErr = forEachLine(proc.stderr, (line) => out.stderr(`[worker ${i}] ${line}\n`));
    return (async (): Promise<RunResult> => {
      const [code] = await Promise.all([proc.exited, readOut, readErr]);
      for (const line of badLines.slice(0, 5)) out.stderr(`[worker ${i}] ${line}\n`);
      if (result !== null) return result;
      // Its share is counted as failed, so the run cannot pass with a worker missing.
      const r = emptyResult();
      r.connections.attempted = share;
      r.connections.failed = share;
      r.errors.worker_failed = share;
      r.warnings.push(`worker ${i} (${share} connections) exited with status ${code} and no result: ${cmd.join(" ")}`);
      return r;
    })();
  });

  let timer: ReturnType<typeof setInterval> | null = null;
  if (out.onProgress !== undefined) {
    const onProgress = out.onProgress;
    timer = setInterval(() => {
      const have = latest.filter((p): p is ProgressSnapshot => p !== null);
      if (have.length > 0) onProgress(mergeProgress(have));
    }, 1000);
  }

  const done = Promise.all(runs).then((parts) => {
    if (timer !== null) clearInterval(timer);
    return mergeResults(parts);
  });
  return {
    done,
    interrupt: () => {
      for (const p of procs) if (p.exitCode === null) p.kill("SIGINT");
    },
    kill: () => {
      for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    },
  };
}
