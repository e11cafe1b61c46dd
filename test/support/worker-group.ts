// A group of worker processes (server.workers: 2) for the supervisor tests: its config file, its
// start, and the probes they share. The group is run for real (src/cli/main.ts or the binary).
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { ChildOutput, str, text } from "./harness.ts";
import { parseExposition } from "./prom-text.ts";

export interface GroupConfigOptions {
  /** server.workers (default 2; 0: the default count, one per CPU within the CPU quota). */
  readonly workers?: number;
  /** server.listen_addr (default an ephemeral loopback port). */
  readonly listen?: string;
  /** server.drain_delay; unset leaves the default. */
  readonly drainDelay?: string;
  readonly gracefulShutdown?: string;
  /** More lines after the one rule (more rules, indented as list items). */
  readonly extra?: readonly string[];
}

/** Two workers (or `workers`) on loopback, admin on an ephemeral port, one per_session rule for server type 10 to the backend. */
export function groupConfig(backendPort: number, o: GroupConfigOptions = {}): string {
  return [
    "server:",
    `  listen_addr: "${o.listen ?? "127.0.0.1:0"}"`,
    `  workers: ${o.workers ?? 2}`,
    ...(o.drainDelay === undefined ? [] : [`  drain_delay: ${o.drainDelay}`]),
    'admin: { listen_addr: "127.0.0.1:0" }',
    `graceful_shutdown_timeout: ${o.gracefulShutdown ?? "2s"}`,
    "backend: { mode: per_session }",
    "security: { connection_rate_limit: 100000, max_connections_per_ip: 100000 }",
    "routing:",
    "  rules:",
    `    - { server_type: 10, endpoints: ["127.0.0.1:${backendPort}"] }`,
    ...(o.extra ?? []),
  ].join("\n");
}

export interface StartedGroup {
  readonly proc: Subprocess;
  readonly out: ChildOutput;
  /** The client port every worker shares. */
  readonly port: number;
  readonly adminPort: number;
  readonly pids: number[];
}

/** Runs `command` (a supervisor), recorded in `procs` for the file's afterAll, until its "gateway group listening" line. */
export async function startGroupProcess(command: readonly string[], cwd: string, procs: Subprocess[]): Promise<StartedGroup> {
  const proc = Bun.spawn([...command], { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  procs.push(proc);
  const out = new ChildOutput(proc);
  const started = await out.logLine("gateway group listening", 30_000);
  return {
    proc,
    out,
    port: Number(String(started.listen).split(":").at(-1)),
    adminPort: started.admin_port as number,
    pids: started.pids as number[],
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The group's /metrics, parsed; throws unless it answered 200. */
export async function scrapeGroup(adminPort: number): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

/** Whether a fresh client on `port` round-trips one frame to `serverType` (false when it cannot connect). */
export async function serves(port: number, serverType: number): Promise<boolean> {
  const c = await GameClient.connect("127.0.0.1", port).catch(() => null);
  if (c === null) return false;
  c.send(1, serverIdFor(serverType), text("probe"));
  const ok = await c.next(2000).then((f) => str(f.body) === "probe", () => false);
  c.close();
  return ok;
}
