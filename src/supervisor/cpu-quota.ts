// The CPU time this process's cgroup may use: its CFS bandwidth quota (`docker run --cpus 2`, a
// Kubernetes CPU limit, systemd's CPUQuota=), in CPUs. Read as Go's runtime, the JVM and libuv read
// it: the cpu controller is found from /proc/self/cgroup (a cgroup v1 hierarchy with `cpu` in its
// controller list wins over the v2 line `0::/path`, as on a hybrid host where cpu stays on v1) and
// /proc/self/mountinfo (where that hierarchy is mounted; never assumed to be /sys/fs/cgroup/cpu).
// Every cgroup from the process's own up to the top of the mount is read, and the smallest limit
// wins: a parent's quota binds its children whatever theirs says.
//
// The files are read through `read`, rooted at `root`, so tests run it over fixture trees. Anything
// missing, unreadable or malformed means "no quota known" (null): never an exception, never 0.

/** A file's text, or null when it cannot be read. */
export type ReadText = (path: string) => string | null;

export interface CpuQuota {
  /** CPUs' worth of time per period (quota / period): 1.5 is one and a half CPUs. */
  readonly cpus: number;
  readonly cgroupVersion: 1 | 2;
  /** The cgroup directory (under `root`) whose limit is the smallest. */
  readonly dir: string;
}

interface CpuCgroup {
  readonly version: 1 | 2;
  /** The process's cgroup path in that hierarchy, as /proc/self/cgroup gives it. */
  readonly path: string;
}

interface CgroupMount {
  /** The directory of the hierarchy mounted there (mountinfo's 4th field). */
  readonly root: string;
  readonly mountPoint: string;
}

/** The quota binding this process, or null when there is none or it cannot be read. */
export function cpuQuotaFrom(read: ReadText, root = ""): CpuQuota | null {
  const cgroupText = read(`${root}/proc/self/cgroup`);
  const cgroup = cgroupText === null ? null : cpuCgroupOf(cgroupText);
  if (cgroup === null) return null;
  const mountText = read(`${root}/proc/self/mountinfo`);
  const mount = mountText === null ? null : cpuMountOf(mountText, cgroup);
  if (mount === null) return null;
  // The mount shows the hierarchy from its root down (a container sees its own cgroup as the top).
  const relative = mount.root === "/" ? cgroup.path : cgroup.path.slice(mount.root.length);
  const top = `${root}${mount.mountPoint === "/" ? "" : mount.mountPoint}`;
  const segments = relative.split("/").filter((s) => s !== "");
  let smallest: CpuQuota | null = null;
  for (let depth = segments.length; depth >= 0; depth--) {
    const dir = [top, ...segments.slice(0, depth)].join("/");
    const cpus = cgroup.version === 2 ? v2Limit(read, dir) : v1Limit(read, dir);
    if (cpus === "malformed") return null;
    if (cpus !== null && (smallest === null || cpus < smallest.cpus)) smallest = { cpus, cgroupVersion: cgroup.version, dir };
  }
  return smallest;
}

/** The process's cgroup in the hierarchy holding the cpu controller: a v1 `cpu` line, else the v2 `0::` line. */
function cpuCgroupOf(text: string): CpuCgroup | null {
  let v2: CpuCgroup | null = null;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const first = line.indexOf(":");
    const second = first < 0 ? -1 : line.indexOf(":", first + 1);
    if (second < 0) return null;
    const hierarchy = line.slice(0, first);
    const controllers = line.slice(first + 1, second).split(",");
    const path = line.slice(second + 1);
    // "/.." appears when the cgroup is outside this namespace's view: no directory here to read.
    if (!path.startsWith("/") || path.split("/").includes("..")) continue;
    if (hierarchy === "0" && controllers.join("") === "") v2 = { version: 2, path };
    else if (controllers.includes("cpu")) return { version: 1, path };
  }
  return v2;
}

/** The mount of that hierarchy whose root holds the process's cgroup (cgroup2, or cgroup with the cpu option). */
function cpuMountOf(text: string, cgroup: CpuCgroup): CgroupMount | null {
  for (const line of text.split("\n")) {
    // "36 35 98:0 /root /mount/point rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct"
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    const fsType = fields[separator + 1];
    const matches = cgroup.version === 2 ? fsType === "cgroup2" : fsType === "cgroup" && fields[separator + 3]!.split(",").includes("cpu");
    if (!matches) continue;
    const root = unescapeMountPath(fields[3]!);
    const mountPoint = unescapeMountPath(fields[4]!);
    if (root === "/" || cgroup.path === root || cgroup.path.startsWith(`${root}/`)) return { root, mountPoint };
  }
  return null;
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

const V2_MAX = /^(max|\d+) (\d+)\n?$/;
const V1_NUMBER = /^(-?\d+)\n?$/;

/** cpu.max: "max 100000" (no limit) or "150000 100000" (1.5 CPUs); null: no file at this level (the root has none). */
function v2Limit(read: ReadText, dir: string): number | "malformed" | null {
  const text = read(`${dir}/cpu.max`);
  if (text === null) return null;
  const m = V2_MAX.exec(text);
  if (m === null) return "malformed";
  if (m[1] === "max") return null;
  return ratio(Number(m[1]), Number(m[2]));
}

/** cpu.cfs_quota_us (-1: no limit) over cpu.cfs_period_us. */
function v1Limit(read: ReadText, dir: string): number | "malformed" | null {
  const quotaText = read(`${dir}/cpu.cfs_quota_us`);
  if (quotaText === null) return null;
  const quota = V1_NUMBER.exec(quotaText);
  if (quota === null) return "malformed";
  if (Number(quota[1]) < 0) return null;
  const periodText = read(`${dir}/cpu.cfs_period_us`);
  const period = periodText === null ? null : V1_NUMBER.exec(periodText);
  if (period === null) return "malformed";
  return ratio(Number(quota[1]), Number(period[1]));
}

function ratio(quota: number, period: number): number | "malformed" {
  return quota > 0 && period > 0 && Number.isSafeInteger(quota) && Number.isSafeInteger(period) ? quota / period : "malformed";
}
