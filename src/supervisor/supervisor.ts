// The group of worker processes (server.workers > 1): starts them, restarts the ones that die,
// and hands every one the same reload and the same drain. It owns no client connection: the
// workers bind the client listeners themselves, side by side (SO_REUSEPORT), and the kernel
// spreads new connections across them.

import type { GatewayConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { PinnedPorts } from "./launch.ts";
import type { Reload, WorkerReady, WorkerReloaded } from "./messages.ts";
import { DEFAULT_BACKOFF, RestartBackoff, type BackoffSettings } from "./restart-backoff.ts";
import { WorkerHandle, type WorkerEvents } from "./worker-handle.ts";

/** A worker that has not said it is ready this long after its spawn is killed (a start that hangs). */
const READY_TIMEOUT_MS = 60_000;
/** How long a worker may take to apply a reload before the supervisor reports it as not answering. */
const RELOAD_TIMEOUT_MS = 15_000;

export interface SupervisorOptions {
  readonly count: number;
  /** The command that starts one worker (launch.ts selfCommand). */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
  readonly backoff?: BackoffSettings;
  /** A message from a worker that is not the supervisor's own (the machine-wide admission's). */
  readonly onOtherMessage?: (worker: number, m: unknown) => void;
  /** A worker process ended (expectedly or not): what it held for the group is gone with it. */
  readonly onWorkerGone?: (worker: number) => void;
}

/** What the group's admin and status page show of one worker. */
export interface WorkerInfo {
  readonly index: number;
  readonly pid: number | null;
  readonly state: WorkerHandle["state"];
  readonly startedAt: number;
  readonly restarts: number;
  readonly adminPort: number | null;
}

export class Supervisor {
  readonly workers: readonly WorkerHandle[];
  private readonly backoffs: RestartBackoff[];
  private ports: PinnedPorts | null = null;
  private draining = false;
  private starting: { resolve: () => void; reject: (e: Error) => void; waitingFor: Set<number> } | null = null;
  private readonly restartTimers = new Set<ReturnType<typeof setTimeout>>();
  private readonly readyTimers = new Map<number, ReturnType<typeof setTimeout>>();
  private reloadIds = 0;
  private allExited: (() => void) | null = null;
  /** Workers that exited other than with 0 since the drain began. */
  private drainFailures = 0;

  constructor(private readonly options: SupervisorOptions) {
    const events: WorkerEvents = {
      onReady: (w, m) => this.onReady(w, m),
      onExit: (w, code, signal) => this.onExit(w, code, signal),
      onOtherMessage: (w, m) => options.onOtherMessage?.(w.index, m),
    };
    this.workers = Array.from({ length: options.count }, (_, i) => new WorkerHandle(i, events));
    this.backoffs = this.workers.map(() => new RestartBackoff(options.backoff ?? DEFAULT_BACKOFF));
  }

  /** The client ports every worker shares (the first worker's, when the config said port 0). */
  get boundPorts(): PinnedPorts | null {
    return this.ports;
  }

  /**
   * Starts the first worker, and once it has bound the client ports the others beside it.
   * Rejects, with every worker stopped, when one dies or hangs before it is ready.
   */
  async start(): Promise<void> {
    await this.startSome([this.workers[0]!]);
    await this.startSome(this.workers.slice(1));
  }

  private startSome(ws: readonly WorkerHandle[]): Promise<void> {
    if (ws.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.starting = { resolve, reject, waitingFor: new Set(ws.map((w) => w.index)) };
      for (const w of ws) this.spawn(w);
    }).finally(() => {
      this.starting = null;
    });
  }

  private spawn(w: WorkerHandle): void {
    w.spawn({ command: this.options.command, env: this.options.env, count: this.options.count, ports: this.ports });
    this.readyTimers.set(
      w.index,
      setTimeout(() => {
        this.options.log.error("worker did not become ready; killing it", { worker: w.index, pid: w.pid, timeout_ms: READY_TIMEOUT_MS });
        w.kill("SIGKILL");
      }, READY_TIMEOUT_MS),
    );
  }

  private onReady(w: WorkerHandle, m: WorkerReady): void {
    clearTimeout(this.readyTimers.get(w.index));
    this.readyTimers.delete(w.index);
    this.ports ??= { tcp: m.port, ws: m.wsPort };
    this.options.log.info("worker ready", { worker: w.index, pid: m.pid });
    const s = this.starting;
    if (s === null) return;
    s.waitingFor.delete(w.index);
    if (s.waitingFor.size === 0) s.resolve();
  }

  private onExit(w: WorkerHandle, code: number | null, signal: string | null): void {
    clearTimeout(this.readyTimers.get(w.index));
    this.readyTimers.delete(w.index);
    const uptimeMs = Date.now() - w.startedAt;
    const wasStarting = w.state === "starting";
    w.state = "stopped";
    this.options.onWorkerGone?.(w.index);
    if (this.draining) {
      if (code !== 0) this.drainFailures++;
      this.options.log.info("worker exited", { worker: w.index, code, signal });
      if (this.workers.every((x) => x.state === "stopped")) this.allExited?.();
      return;
    }
    if (this.starting !== null && wasStarting && this.starting.waitingFor.has(w.index)) {
      this.starting.reject(new Error(`worker ${w.index} exited during start (code ${code}${signal === null ? "" : `, signal ${signal}`})`));
      return;
    }
    const delay = this.backoffs[w.index]!.delayAfterDeath(uptimeMs);
    w.state = "waiting";
    w.restarts++;
    this.options.log.error("worker died; restarting it", { worker: w.index, code, signal, uptime_ms: uptimeMs, restart_in_ms: delay, restarts: w.restarts });
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.draining) this.spawn(w);
    }, delay);
    this.restartTimers.add(timer);
  }

  /** Hands every running worker `config` (read and validated once, by the caller); resolves with each one's answer (null: none). */
  async reload(config: GatewayConfig): Promise<readonly (WorkerReloaded | null)[]> {
    const id = ++this.reloadIds;
    const m: Reload = { t: "supervisor.reload", id, config };
    return Promise.all(this.workers.map((w) => w.reload(id, m, RELOAD_TIMEOUT_MS)));
  }

  /**
   * Every worker drains (its drain_delay, then graceful_shutdown_timeout) and exits; none is
   * restarted. Resolves with the exit status for the supervisor: 0 when every worker exited 0.
   */
  async drain(): Promise<number> {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    const done = new Promise<void>((resolve) => (this.allExited = resolve));
    for (const w of this.workers) {
      if (w.state === "waiting") w.state = "stopped";
      else if (!w.send({ t: "supervisor.drain" })) w.kill("SIGTERM");
    }
    if (this.workers.every((w) => w.state === "stopped")) this.allExited?.();
    await done;
    return this.drainFailures === 0 ? 0 : 1;
  }

  /** A second stop signal: every worker exits at once (writing out what it batched). */
  exitNow(): void {
    for (const w of this.workers) if (!w.send({ t: "supervisor.exit-now" })) w.kill("SIGKILL");
  }

  /** Stops every worker at once (SIGKILL): the supervisor is failing and must not leave them behind. */
  killAll(): void {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    for (const w of this.workers) w.kill("SIGKILL");
  }

  info(): WorkerInfo[] {
    return this.workers.map((w) => ({ index: w.index, pid: w.pid, state: w.state, startedAt: w.startedAt, restarts: w.restarts, adminPort: w.adminPort }));
  }
}
