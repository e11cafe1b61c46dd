// `game-gateway loadtest`: the entry point. Runs the load in this process, or spreads it over
// worker processes (--processes), then prints a table or JSON and turns the error rate into the
// exit status. Also runnable directly (`bun src/loadtest/main.ts ...`), which is how a parent
// started from source starts its workers.
import { makeServerId } from "../protocol/client-frame.ts";
import { readFileSync } from "node:fs";
import { readCaFile } from "./ca-file.ts";
import { type ClientTls, Engine, LOADTEST_MESSAGE_ID } from "./engine.ts";
import {
  LOADTEST_USAGE,
  LoadtestUsageError,
  type LoadtestOptions,
  isLoopbackHost,
  parseLoadtestArgs,
  resolveSourceAddresses,
} from "./options.ts";
import { type RunDescription, describeRun, progressLine, resultJson, resultTable } from "./report.ts";
import { type ProgressSnapshot, type RunResult, passes } from "./result.ts";
import { startWorkers } from "./workers.ts";

export interface LoadtestOutput {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export { LOADTEST_USAGE } from "./options.ts";

const processOutput: LoadtestOutput = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

/** Exit status of a usage error. */
export const EXIT_USAGE = 2;

/**
 * Runs `game-gateway loadtest` with argv (the arguments after "loadtest"). Returns the exit
 * status: 0 pass, 1 error rate (errors / messages sent) or connection error rate (connections
 * refused, timed out or dropped / dialled) above --max-error-rate, 2 usage error. Progress lines are printed
 * only when writing to the process's own terminal (out not given and stdout a TTY).
 */
export async function runLoadtest(argv: string[], out?: LoadtestOutput): Promise<number> {
  const io = out ?? processOutput;
  let parsed;
  try {
    parsed = parseLoadtestArgs(argv);
  } catch (e) {
    if (e instanceof LoadtestUsageError) {
      io.stderr(`game-gateway loadtest: ${e.message}\n\n${LOADTEST_USAGE}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (parsed.kind === "help") {
    io.stdout(`${LOADTEST_USAGE}\n`);
    return 0;
  }
  const o = parsed.options;
  if (o.worker) return runWorker(o, io);

  if (o.tlsCa !== "") {
    const ca = readCaFile(o.tlsCa);
    if ("problem" in ca) {
      io.stderr(`game-gateway loadtest: --tls-ca ${o.tlsCa}: ${ca.problem}; expected a PEM file of a CA certificate\n\n${LOADTEST_USAGE}\n`);
      return EXIT_USAGE;
    }
  }
  for (const note of parsed.notes) io.stderr(`game-gateway loadtest: note: ${note}\n`);
  if (o.ws && o.sourceAddresses !== "auto" && o.sourceAddresses > 1) {
    io.stderr("game-gateway loadtest: note: --source-addresses does not apply to --ws (WebSocket clients cannot bind a source address); ignored\n");
  } else if (o.sourceAddresses !== "auto" && o.sourceAddresses > 1 && !isLoopbackHost(o.host)) {
    io.stderr(`game-gateway loadtest: note: --source-addresses applies to loopback targets only; ignored for ${o.host}\n`);
  }
  const d: RunDescription = { options: o, sourceAddresses: o.ws ? 1 : resolveSourceAddresses(o) };
  // Progress goes where it cannot spoil the JSON, and only to a terminal.
  const progressTo = out !== undefined ? null : o.json ? (process.stderr.isTTY ? io.stderr : null) : process.stdout.isTTY ? io.stdout : null;
  if (!o.json) io.stdout(`${describeRun(d)}\n`);

  let lastReceived = 0;
  let lastAt = 0;
  const onProgress =
    progressTo === null
      ? undefined
      : (p: ProgressSnapshot): void => {
          progressTo(`${progressLine(p, lastReceived, p.elapsedMs - lastAt)}\n`);
          lastReceived = p.received;
          lastAt = p.elapsedMs;
        };

  let result: RunResult;
  if (o.processes > 1) {
    const pool = startWorkers(o, d.sourceAddresses, { stderr: io.stderr, onProgress });
    result = await withInterrupt(io, () => pool.interrupt(), () => pool.kill(), pool.done);
  } else {
    const engine = new Engine(engineConfig(o, o.connections, 0, d.sourceAddresses, io, onProgress));
    result = await withInterrupt(io, () => engine.stopEarly(), null, engine.run());
  }

  io.stdout(`${o.json ? resultJson(d, result) : resultTable(d, result)}\n`);
  return passes(result, o.maxErrorRate) ? 0 : 1;
}

function engineConfig(
  o: LoadtestOptions,
  connections: number,
  connBase: number,
  sourceAddresses: number,
  io: LoadtestOutput,
  onProgress: ((p: ProgressSnapshot) => void) | undefined,
) {
  return {
    host: o.host,
    port: o.port,
    wsPath: o.ws ? o.wsPath : null,
    tls: clientTls(o),
    connections,
    connBase,
    durationMs: o.durationMs,
    rate: o.rate,
    inFlight: o.inFlight,
    messageSize: o.messageSize,
    serverId: makeServerId({ isZip: false, worldId: o.worldId, serverType: o.serverType, instId: o.instId }),
    messageId: LOADTEST_MESSAGE_ID,
    dialTimeoutMs: o.dialTimeoutMs,
    replyTimeoutMs: o.replyTimeoutMs,
    ramp: o.ramp,
    sourceAddresses,
    verbose: o.verbose,
    log: (line: string) => io.stderr(`${line}\n`),
    onProgress,
  };
}

/** --tls: how the server's certificate is checked (the CA file was read when the options were checked). */
function clientTls(o: LoadtestOptions): ClientTls | null {
  if (!o.tls) return null;
  if (o.tlsInsecure) return { rejectUnauthorized: false };
  return o.tlsCa === "" ? { rejectUnauthorized: true } : { rejectUnauthorized: true, ca: readFileSync(o.tlsCa, "utf8") };
}

/** A worker: its share of the load, reported as JSON lines for the parent (see workers.ts). */
async function runWorker(o: LoadtestOptions, io: LoadtestOutput): Promise<number> {
  const sourceAddresses = o.sourceAddresses === "auto" ? 1 : o.sourceAddresses;
  const onProgress = o.workerProgress ? (p: ProgressSnapshot): void => io.stdout(`${JSON.stringify({ progress: p })}\n`) : undefined;
  const engine = new Engine(engineConfig(o, o.connections, o.connBase, sourceAddresses, io, onProgress));
  // Every SIGINT only stops sending: the parent decides when to give up on a worker.
  const stop = (): void => engine.stopEarly();
  process.on("SIGINT", stop);
  try {
    const result = await engine.run();
    io.stdout(`${JSON.stringify({ result })}\n`);
  } finally {
    process.off("SIGINT", stop);
  }
  return 0;
}

/**
 * First Ctrl-C: stop sending, wait for replies and report as usual. Second: quit at once. The
 * handler is only installed for the run, so an embedding process keeps its own.
 */
async function withInterrupt<T>(io: LoadtestOutput, first: () => void, kill: (() => void) | null, run: Promise<T>): Promise<T> {
  let interrupted = false;
  const handler = (): void => {
    if (interrupted) {
      kill?.();
      io.stderr("game-gateway loadtest: second interrupt, quitting\n");
      process.exit(130);
    }
    interrupted = true;
    io.stderr("game-gateway loadtest: interrupted: stopping, waiting for replies (Ctrl-C again to quit now)\n");
    first();
  };
  process.on("SIGINT", handler);
  try {
    return await run;
  } finally {
    process.off("SIGINT", handler);
  }
}

/**
 * For a process entry point (the CLI's `loadtest` subcommand): runs, then exits with the status
 * once stdout has been written out. Exiting, rather than returning, also ends a run whose
 * abandoned dials would otherwise keep the process alive until the kernel gives up on them.
 */
export async function loadtestMain(argv: string[]): Promise<never> {
  const code = await runLoadtest(argv);
  // A worker's result line may still be on its way into a pipe.
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  process.exit(code);
}

if (import.meta.main) await loadtestMain(process.argv.slice(2));
