// server.workers: 0 (and --workers 0): one worker per CPU this process may run on, but no more
// than its cgroup's CPU quota allows, rounded up (1.5 CPUs of time: 2 workers). Each worker is an
// event loop with its own heap; 64 of them in a container given 2 CPUs would share 2 CPUs of time
// and need far more memory than it has.
//
// Bun's os.availableParallelism() already applies a quota, but rounds it down (1.5 CPUs: 1), so the
// CPU count is taken from the affinity mask (Cpus_allowed_list, what sched_getaffinity returns)
// and the quota applied here.

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { cpuQuotaFrom, type CpuQuota, type ReadText } from "./cpu-quota.ts";

export interface WorkerCountChoice {
  readonly count: number;
  /** Why this count, for the start line: "one per CPU", "CPU quota 1.5 of 8 CPUs". */
  readonly reason: string;
}

/** The count from the CPUs and the quota (null: none known), at least 1 and at most `max`. */
export function workersForCpus(cpus: number, quota: CpuQuota | null, max: number): WorkerCountChoice {
  const allowed = Math.max(1, cpus);
  const byQuota = quota === null ? Infinity : Math.max(1, Math.ceil(quota.cpus));
  const wanted = Math.min(allowed, byQuota);
  const count = Math.min(max, wanted);
  const cap = count < wanted ? `, at most ${max}` : "";
  if (quota !== null && quota.cpus < allowed) return { count, reason: `CPU quota ${formatCpus(quota.cpus)} of ${allowed} CPUs${cap}` };
  // A quota of at least the CPUs leaves the count as it is, but the operator who set it wants to see it was read.
  return { count, reason: `one per CPU${quota === null ? "" : `; the CPU quota (${formatCpus(quota.cpus)}) allows all ${allowed}`}${cap}` };
}

/** This machine's answer: the affinity mask's CPUs and the cgroup's quota (Linux; elsewhere the CPUs alone). */
export function defaultWorkerCount(max: number): WorkerCountChoice {
  if (process.platform !== "linux") return workersForCpus(availableParallelism(), null, max);
  return workersForCpus(allowedCpusFrom(readOrNull) ?? availableParallelism(), cpuQuotaFrom(readOrNull), max);
}

/** The CPUs in /proc/self/status's Cpus_allowed_list ("0-3,8,10-11": 7), or null when unreadable. */
export function allowedCpusFrom(read: ReadText, root = ""): number | null {
  const status = read(`${root}/proc/self/status`);
  const list = status === null ? null : /^Cpus_allowed_list:\s*(\S+)$/m.exec(status);
  if (list === null) return null;
  let count = 0;
  for (const range of list[1]!.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (m === null) return null;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return null;
    count += to - from + 1;
  }
  return count > 0 ? count : null;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/**
 * 2 → "2.0", 1.5 → "1.5", 0.25 → "0.25", 7.999 → "7.999": as many decimals as the quota has, at
 * least one, at most three (a Kubernetes limit is whole millicores). Two were not enough: 0.001
 * printed as "0.00" and 7.999 as "8.00", quotas that read as none.
 */
function formatCpus(cpus: number): string {
  for (let decimals = 1; decimals < 3; decimals++) {
    const scaled = cpus * 10 ** decimals;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9) return cpus.toFixed(decimals);
  }
  return cpus.toFixed(3);
}
