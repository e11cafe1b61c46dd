// How the supervisor starts a worker: this same program again (the compiled binary, or bun with
// the same entry script), with the same arguments, and the environment variables below telling it
// which worker it is and what the group has already decided.

import type { GatewayConfig } from "../config/types.ts";
import type { WorkerSlot } from "../session/session-id.ts";

/** "index/count": set, the process is worker `index` of `count` and runs no supervisor of its own. */
export const WORKER_ENV = "GAME_GATEWAY_WORKER";
/** "tcp,ws": the client ports the first worker bound, when the config said port 0, so all share them. */
export const WORKER_PORTS_ENV = "GAME_GATEWAY_WORKER_PORTS";

/** Where a worker's own admin listens: loopback, a port of the kernel's choosing, told to the supervisor. */
export const WORKER_ADMIN_ADDR = "127.0.0.1:0";

/**
 * The command that runs this program again with `args`. A compiled binary is its own entry point
 * (Bun.main is inside its embedded file system); from source it is bun with the same script and
 * runtime flags.
 */
export function selfCommand(args: readonly string[]): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:\\~BUN\\");
  return compiled ? [process.execPath, ...args] : [process.execPath, ...process.execArgv, Bun.main, ...args];
}

/** This process's place in a group, from WORKER_ENV; null when it is not a worker. Throws on a malformed value. */
export function workerSlotFromEnv(env: Readonly<Record<string, string | undefined>>): WorkerSlot | null {
  const v = env[WORKER_ENV];
  if (v === undefined || v === "") return null;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || index >= count) throw new Error(`${WORKER_ENV}="${v}": expected "index/count" with index < count`);
  return { index, count };
}

export interface PinnedPorts {
  readonly tcp: number;
  readonly ws: number;
}

export function portsToEnv(p: PinnedPorts): string {
  return `${p.tcp},${p.ws}`;
}

export function pinnedPortsFromEnv(env: Readonly<Record<string, string | undefined>>): PinnedPorts | null {
  const m = /^(\d+),(\d+)$/.exec(env[WORKER_PORTS_ENV] ?? "");
  return m === null ? null : { tcp: Number(m[1]), ws: Number(m[2]) };
}

/** `addr` ("host:port") with its port replaced when it asked for an ephemeral one (port 0). */
function withPortIfEphemeral(addr: string, port: number): string {
  if (addr === "" || port === 0) return addr;
  const colon = addr.lastIndexOf(":");
  return addr.slice(colon + 1) === "0" ? `${addr.slice(0, colon)}:${port}` : addr;
}

/**
 * What a worker changes in every config it is given (at start and on each reload, so a reload
 * never sees them as changed): its admin listens on loopback for the supervisor alone, and
 * ephemeral client ports become the ones the first worker bound.
 */
export function pinWorkerConfig(config: GatewayConfig, ports: PinnedPorts | null): GatewayConfig {
  const server =
    ports === null
      ? config.server
      : { ...config.server, listen_addr: withPortIfEphemeral(config.server.listen_addr, ports.tcp), ws_listen_addr: withPortIfEphemeral(config.server.ws_listen_addr, ports.ws) };
  return { ...config, server, admin: { ...config.admin, listen_addr: WORKER_ADMIN_ADDR } };
}
