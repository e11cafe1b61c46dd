// One worker process of the group: spawning it, what it last said about itself, and its requests
// in flight. The supervisor decides when to start, restart or stop it.

import type { Subprocess } from "bun";
import type { PinnedPorts } from "./launch.ts";
import { isWorkerMessage, type SupervisorMessage, type WorkerMessage, type WorkerReady, type WorkerReloaded } from "./messages.ts";
import { portsToEnv, WORKER_ENV, WORKER_PORTS_ENV } from "./launch.ts";

/** starting: spawned, not ready yet; running: said ready; waiting: dead, restart scheduled; stopped: dead for good. */
export type WorkerState = "starting" | "running" | "waiting" | "stopped";

export interface WorkerSpawnSpec {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly count: number;
  readonly ports: PinnedPorts | null;
}

export interface WorkerEvents {
  /** The worker's channel is open and it waits for the config to start on. */
  onHello(w: WorkerHandle): void;
  onReady(w: WorkerHandle, m: WorkerReady): void;
  onExit(w: WorkerHandle, code: number | null, signal: string | null): void;
  /** A message that is not the supervisor's own (the admission protocol's), for whoever routes them. */
  onOtherMessage(w: WorkerHandle, m: unknown): void;
}

export class WorkerHandle {
  state: WorkerState = "stopped";
  private proc: Subprocess | null = null;
  /** When the current process was spawned (ms since the epoch); 0 before the first. */
  startedAt = 0;
  /** Unexpected deaths that were followed by a restart. */
  restarts = 0;
  ready: WorkerReady | null = null;
  /** The group's config_version this process was started on (its Start message). */
  startVersion = 0;
  /** Liveness pings sent since its last answer (src/supervisor/supervisor.ts checkLiveness). */
  pingsUnanswered = 0;
  /** Reloads sent and not answered yet: at most one per reload in progress (the supervisor runs one at a time). */
  private readonly replies = new Map<number, (r: WorkerReloaded | null) => void>();

  constructor(
    readonly index: number,
    private readonly events: WorkerEvents,
  ) {}

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  get adminPort(): number | null {
    return this.state === "running" ? (this.ready?.adminPort ?? null) : null;
  }

  spawn(spec: WorkerSpawnSpec): void {
    this.state = "starting";
    this.ready = null;
    this.startedAt = Date.now();
    this.pingsUnanswered = 0;
    const env: Record<string, string | undefined> = { ...spec.env, [WORKER_ENV]: `${this.index}/${spec.count}` };
    if (spec.ports !== null) env[WORKER_PORTS_ENV] = portsToEnv(spec.ports);
    const proc = Bun.spawn([...spec.command], {
      env,
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      ipc: (m) => this.onMessage(m),
      onExit: (_p, code, signal) => {
        if (this.proc !== proc) return;
        this.proc = null;
        this.ready = null;
        for (const reply of this.replies.values()) reply(null);
        this.replies.clear();
        this.events.onExit(this, code, signal === null || signal === undefined ? null : String(signal));
      },
    });
    this.proc = proc;
  }

  private onMessage(m: unknown): void {
    if (!isWorkerMessage(m)) return this.events.onOtherMessage(this, m);
    this.handle(m);
  }

  private handle(m: WorkerMessage): void {
    switch (m.t) {
      case "worker.hello":
        this.events.onHello(this);
        return;
      case "worker.pong":
        this.pingsUnanswered = 0;
        return;
      case "worker.ready":
        this.ready = m;
        this.state = "running";
        this.events.onReady(this, m);
        return;
      case "worker.reloaded": {
        const reply = this.replies.get(m.id);
        this.replies.delete(m.id);
        reply?.(m);
        return;
      }
    }
  }

  /** Sends `m` if the worker is alive; false when there is no channel to send on. */
  send(m: SupervisorMessage | object): boolean {
    const proc = this.proc;
    if (proc === null) return false;
    try {
      proc.send(m);
      return true;
    } catch {
      return false; // the channel closed under us: onExit follows
    }
  }

  /** Sends a reload and resolves with the worker's answer, or null when it died or took longer than `timeoutMs`. */
  reload(id: number, m: SupervisorMessage, timeoutMs: number): Promise<WorkerReloaded | null> {
    if (this.state !== "running" || !this.send(m)) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        resolve(null);
      }, timeoutMs);
      this.replies.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  kill(signal: NodeJS.Signals | number = "SIGKILL"): void {
    this.proc?.kill(signal);
  }
}
