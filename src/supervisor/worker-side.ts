// The worker's end of the IPC channel: tells the supervisor it is ready, carries out what the
// supervisor asks, and ends the process when the supervisor is gone (a worker never outlives it:
// a new supervisor would start a new group beside orphans still holding the port).

import type { GatewayConfig } from "../config/types.ts";
import { isSupervisorMessage, type Reload, type Start, type WorkerReady, type WorkerReloaded } from "./messages.ts";

export interface WorkerSideHandlers {
  /** Apply a config the supervisor validated; resolves with the outcome it reports back. */
  reload(config: GatewayConfig, version: number, source: Reload["source"]): Promise<Omit<WorkerReloaded, "t" | "id" | "index">>;
  /** Drain and exit 0, as on a first SIGTERM (a second ask changes nothing). */
  drain(): void;
  /** Exit now, as on a second SIGTERM. */
  exitNow(): void;
  /** The channel closed: the supervisor died or was killed. */
  orphaned(): void;
  /** A message that is not the supervisor's own (the machine-wide admission's replies). */
  other?(m: unknown): void;
}

type Send = (m: object) => void;

/** The channel to the parent; null when this process was not started with one. */
function parentChannel(): Send | null {
  const send = process.send?.bind(process);
  return send === undefined ? null : (m) => void send(m);
}

export class WorkerSide {
  /** The config and version to start on, once the supervisor has answered this worker's hello. */
  readonly start: Promise<Start>;
  private started: ((m: Start) => void) | null = null;

  private constructor(
    private readonly index: number,
    private readonly sendRaw: Send,
  ) {
    this.start = new Promise((resolve) => (this.started = resolve));
  }

  /** Listens to the supervisor; null when there is no IPC channel (started by hand with the worker variable set). */
  static attach(index: number, handlers: WorkerSideHandlers): WorkerSide | null {
    const send = parentChannel();
    if (send === null) return null;
    const side = new WorkerSide(index, send);
    process.on("message", (m: unknown) => {
      if (!isSupervisorMessage(m)) return handlers.other?.(m);
      switch (m.t) {
        case "supervisor.start":
          side.started?.(m);
          side.started = null;
          return;
        case "supervisor.ping":
          return side.send({ t: "worker.pong", id: m.id });
        case "supervisor.reload":
          void handlers.reload(m.config, m.version, m.source).then((r) => side.send({ t: "worker.reloaded", id: m.id, index, ...r }));
          return;
        case "supervisor.drain":
          return handlers.drain();
        case "supervisor.exit-now":
          return handlers.exitNow();
      }
    });
    process.on("disconnect", () => handlers.orphaned());
    side.send({ t: "worker.hello", index });
    return side;
  }

  ready(m: Omit<WorkerReady, "t" | "index" | "pid">): void {
    this.send({ t: "worker.ready", index: this.index, pid: process.pid, ...m });
  }

  /** Sends anything the supervisor routes (the admission protocol's messages too). */
  send(m: object): void {
    try {
      this.sendRaw(m);
    } catch {
      // The channel is closing: "disconnect" follows and ends the process.
    }
  }
}
