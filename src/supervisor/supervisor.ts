// The group of worker processes (server.workers > 1): starts them, restarts the ones that die,
// and hands every one the same reload and the same drain. It owns no client connection: the
// workers bind the client listeners themselves, side by side (SO_REUSEPORT), and the kernel
// spreads new connections across them.

import { keepOldValues, restartOnlyChanges } from "../config/restart-only.ts";
import type { GatewayConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { PinnedPorts } from "./launch.ts";
import type { Reload, Start, WorkerReady, WorkerReloaded } from "./messages.ts";
import { DEFAULT_BACKOFF, RestartBackoff, type BackoffSettings } from "./restart-backoff.ts";
import { WorkerHandle, type WorkerEvents } from "./worker-handle.ts";

/** A worker that has not said it is ready this long after its spawn is killed (a start that hangs). */
const READY_TIMEOUT_MS = 60_000;
/** How long a worker may take to apply a reload before the supervisor reports it as not answering. */
const RELOAD_TIMEOUT_MS = 15_000;
/** How often the supervisor asks each running worker whether its event loop runs (an IPC ping). */
export const LIVENESS_INTERVAL_MS = 2_000;
/**
 * A worker that answered none of this many pings in a row (3 × 2 s: hung, stopped, or stuck in a
 * loop) is killed with SIGKILL and restarted: its listener would otherwise keep taking its share
 * of new connections and never serve them. Counted in pings, not wall time, so a supervisor that
 * was itself stalled does not blame its workers for it.
 */
export const UNANSWERED_PINGS_BEFORE_KILL = 3;
/** After drain_delay + graceful_shutdown_timeout, how long a draining worker still gets before it is killed. */
export const DRAIN_KILL_MARGIN_MS = 5_000;
/** After a second stop signal, how long a worker gets to write out its batched access log before it is killed. */
export const EXIT_NOW_KILL_AFTER_MS = 1_000;

export interface SupervisorOptions {
  readonly count: number;
  /** The config the group starts on, validated by the caller: what every worker is handed. */
  readonly config: GatewayConfig;
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

/** A reload's outcome for the group: its new version, the keys kept at their old values, and each worker's answer. */
export interface GroupReload {
  readonly version: number;
  readonly needsRestart: readonly string[];
  /** Per worker: its answer; null when it was running and gave none; "pending" when it starts (or catches up) on this config. */
  readonly answers: readonly (WorkerReloaded | null | "pending")[];
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
  private pingIds = 0;
  private liveness: ReturnType<typeof setInterval> | null = null;
  private killTimer: ReturnType<typeof setTimeout> | null = null;
  /** The config in force for the group and its config_version: what a (re)started worker is handed. */
  private current: { config: GatewayConfig; version: number; source: Reload["source"] };
  private allExited: (() => void) | null = null;
  /** Workers that exited other than with 0 since the drain began. */
  private drainFailures = 0;

  constructor(private readonly options: SupervisorOptions) {
    this.current = { config: options.config, version: 1, source: "file" };
    const events: WorkerEvents = {
      onHello: (w) => this.onHello(w),
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
    this.liveness = setInterval(() => this.checkLiveness(), LIVENESS_INTERVAL_MS);
  }

  /** Kills a running worker that left UNANSWERED_PINGS_BEFORE_KILL pings unanswered (onExit restarts it), and pings the others. */
  private checkLiveness(): void {
    const id = ++this.pingIds;
    for (const w of this.workers) {
      if (w.state !== "running") continue;
      if (w.pingsUnanswered >= UNANSWERED_PINGS_BEFORE_KILL) {
        this.options.log.error("worker unresponsive; killing it", {
          worker: w.index,
          pid: w.pid,
          unanswered_pings: w.pingsUnanswered,
          interval_ms: LIVENESS_INTERVAL_MS,
        });
        w.kill("SIGKILL");
        continue;
      }
      w.pingsUnanswered++;
      w.send({ t: "supervisor.ping", id });
    }
  }

  private onHello(w: WorkerHandle): void {
    const { config, version } = this.current;
    w.startVersion = version;
    const m: Start = { t: "supervisor.start", config, version };
    w.send(m);
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
    this.options.log.info("worker ready", { worker: w.index, pid: m.pid, config_version: w.startVersion });
    // A reload went out while it was starting on the config before: it catches up now.
    if (w.startVersion < this.current.version) {
      const { config, version, source } = this.current;
      const id = ++this.reloadIds;
      void w.reload(id, { t: "supervisor.reload", id, config, version, source }, RELOAD_TIMEOUT_MS);
    }
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

  /**
   * Makes `next` (read and validated once, by the caller) the group's config, with the old value of
   * every key that needs a restart (and of server.workers), and hands it to every running worker.
   * A worker that is not running (waiting to restart, or starting) starts on it, or catches up when
   * ready: its answer is "pending". Otherwise each answer, or null when a running worker gave none.
   */
  async reload(next: GatewayConfig, source: Reload["source"]): Promise<GroupReload> {
    const old = this.current.config;
    const needsRestart = restartOnlyChanges(next, old);
    if (next.server.workers !== old.server.workers) needsRestart.push("server.workers");
    const config = keepOldValues(next, old, needsRestart);
    const version = this.current.version + 1;
    this.current = { config, version, source };
    const id = ++this.reloadIds;
    const m: Reload = { t: "supervisor.reload", id, config, version, source };
    const answers = await Promise.all(this.workers.map((w) => (w.state === "running" ? w.reload(id, m, RELOAD_TIMEOUT_MS) : Promise.resolve("pending" as const))));
    return { version, needsRestart, answers };
  }

  /**
   * Every worker drains (its drain_delay, then graceful_shutdown_timeout) and exits; none is
   * restarted. Resolves with the exit status for the supervisor: 0 when every worker exited 0.
   */
  async drain(): Promise<number> {
    this.draining = true;
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    this.stopLiveness();
    const done = new Promise<void>((resolve) => (this.allExited = resolve));
    for (const w of this.workers) {
      if (w.state === "waiting") w.state = "stopped";
      else if (!w.send({ t: "supervisor.drain" })) w.kill("SIGTERM");
    }
    if (this.workers.every((w) => w.state === "stopped")) this.allExited?.();
    // A hung or stopped worker never exits on its own (the drain message sits unread): the
    // supervisor must still exit, so what has not exited by the worker's own deadline is killed.
    const { drain_delay } = this.current.config.server;
    this.killAfter(drain_delay + this.current.config.graceful_shutdown_timeout + DRAIN_KILL_MARGIN_MS, "drain");
    await done;
    this.clearKillTimer();
    return this.drainFailures === 0 ? 0 : 1;
  }

  /** A second stop signal: every worker exits at once (writing out what it batched); one that has not within EXIT_NOW_KILL_AFTER_MS is killed. */
  exitNow(): void {
    this.draining = true;
    this.stopLiveness();
    for (const w of this.workers) if (!w.send({ t: "supervisor.exit-now" })) w.kill("SIGKILL");
    this.clearKillTimer();
    this.killAfter(EXIT_NOW_KILL_AFTER_MS, "exit now");
  }

  private killAfter(ms: number, phase: string): void {
    this.killTimer = setTimeout(() => {
      this.killTimer = null;
      for (const w of this.workers) {
        if (w.state === "stopped" || w.pid === null) continue;
        this.options.log.error("worker did not exit in time; killing it", { worker: w.index, pid: w.pid, phase, waited_ms: ms });
        w.kill("SIGKILL");
      }
    }, ms);
  }

  private clearKillTimer(): void {
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    this.killTimer = null;
  }

  private stopLiveness(): void {
    if (this.liveness !== null) clearInterval(this.liveness);
    this.liveness = null;
  }

  /** Stops every worker at once (SIGKILL): the supervisor is failing and must not leave them behind. */
  killAll(): void {
    this.draining = true;
    this.stopLiveness();
    for (const t of this.restartTimers) clearTimeout(t);
    for (const w of this.workers) w.kill("SIGKILL");
  }

  info(): WorkerInfo[] {
    return this.workers.map((w) => ({ index: w.index, pid: w.pid, state: w.state, startedAt: w.startedAt, restarts: w.restarts, adminPort: w.adminPort }));
  }
}
