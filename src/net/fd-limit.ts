// The process's open-file limit, and whether the configured connections fit in it. Bun raises
// the soft limit to the hard limit (at most 2^20) when it starts, as nginx's worker_rlimit_nofile
// does (Bun's adjustUlimit, oven-sh/bun#29617; checked here for `bun` and the compiled binary:
// soft 128 / hard 512 became 512), so what is read here is what the gateway can use.
import { readFileSync } from "node:fs";

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** From /proc/self/limits; undefined where there is none (not Linux). "unlimited" is Infinity. */
export function openFileLimit(limitsText?: string): FdLimit | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (m === null) return undefined;
  const n = (s: string): number => (s === "unlimited" ? Infinity : Number(s));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** Descriptors the process needs beyond its connections: stdio, listeners, the config watcher, workers, logs. */
export const RESERVED_FDS = 64;

export interface FdDemand {
  readonly clients: number;
  readonly backends: number;
  readonly admin: number;
}

/** The shortfall when `demand` cannot fit in `limit`, else undefined. */
export function fdShortfall(limit: FdLimit, demand: FdDemand): { needed: number; limit: number } | undefined {
  const needed = demand.clients + demand.backends + demand.admin + RESERVED_FDS;
  return needed > limit.soft ? { needed, limit: limit.soft } : undefined;
}
