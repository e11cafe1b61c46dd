// What the supervisor and its workers say to each other over Bun's IPC channel (Bun.spawn `ipc`,
// process.send). Each message is a plain object tagged by `t`; both sides switch on it, and a
// message whose `t` neither knows is ignored, so a newer binary never trips over an older one.
// Traffic is per worker event (start, reload, drain), never per client message.

import type { GatewayConfig } from "../config/types.ts";

/** A worker is up: its listeners are bound and its internal admin answers on loopback. */
export interface WorkerReady {
  readonly t: "worker.ready";
  readonly index: number;
  readonly pid: number;
  /** The worker's own admin port on 127.0.0.1; the supervisor's admin reads /metrics, /ready and /api/status there. */
  readonly adminPort: number;
  /** The client ports it bound: the first worker's decide the group's when the config says port 0. */
  readonly port: number;
  readonly wsPort: number;
}

/** A worker's answer to a Reload: its gateway's reload record. */
export interface WorkerReloaded {
  readonly t: "worker.reloaded";
  readonly id: number;
  readonly index: number;
  readonly ok: boolean;
  readonly version: number;
  readonly error?: string;
  readonly needsRestart?: readonly string[];
}

/** The worker's channel is open: it waits for its Start before it reads anything or binds. */
export interface WorkerHello {
  readonly t: "worker.hello";
  readonly index: number;
}

/** The answer to a Ping: the worker's event loop runs. */
export interface WorkerPong {
  readonly t: "worker.pong";
  readonly id: number;
}

export type WorkerMessage = WorkerReady | WorkerReloaded | WorkerHello | WorkerPong;

/**
 * What a (re)started worker runs: the config the group has in force (validated by the supervisor,
 * with the old value of every key a reload could not change), never the file as it is on disk now,
 * and the group's config_version.
 */
export interface Start {
  readonly t: "supervisor.start";
  readonly config: GatewayConfig;
  readonly version: number;
}

/** The supervisor's liveness check: a worker that stops answering these is killed and restarted. */
export interface Ping {
  readonly t: "supervisor.ping";
  readonly id: number;
}

/** Apply this config, which the supervisor has read and validated once for the whole group. */
export interface Reload {
  readonly t: "supervisor.reload";
  readonly id: number;
  readonly config: GatewayConfig;
  /** The group's config_version once applied. */
  readonly version: number;
  /** What asked the supervisor for the reload (the worker's reload record says the same). */
  readonly source: "file" | "signal";
}

/** Drain (server.drain_delay, then graceful_shutdown_timeout) and exit 0: as a first SIGTERM. */
export interface Drain {
  readonly t: "supervisor.drain";
}

/** The supervisor got a second stop signal: exit now, as a worker does on its own second signal. */
export interface ExitNow {
  readonly t: "supervisor.exit-now";
}

export type SupervisorMessage = Start | Reload | Drain | ExitNow | Ping;

function tagOf(m: unknown): unknown {
  return typeof m === "object" && m !== null ? (m as { t?: unknown }).t : undefined;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  const t = tagOf(m);
  return t === "worker.ready" || t === "worker.reloaded" || t === "worker.hello" || t === "worker.pong";
}

export function isSupervisorMessage(m: unknown): m is SupervisorMessage {
  const t = tagOf(m);
  return t === "supervisor.start" || t === "supervisor.reload" || t === "supervisor.drain" || t === "supervisor.exit-now" || t === "supervisor.ping";
}
