// The default worker count's CPU quota reader over fixture trees: /proc/self/cgroup, mountinfo and
// the cgroup files written to a temp dir in the kernel's formats, read through real file reads.
// (cpu-quota-cgroup.test.ts runs the gateway inside a real cgroup.)
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { cpuQuotaFrom } from "../../src/supervisor/cpu-quota.ts";
import { allowedCpusFrom, workersForCpus } from "../../src/supervisor/default-worker-count.ts";

const base = mkdtempSync(join(tmpdir(), "gw-cpu-quota-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const read = (path: string): string | null => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
};

let trees = 0;
/** A fresh root holding `files` (path under the root → content). */
function tree(files: Record<string, string>): string {
  const root = join(base, String(trees++));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

// Lines as the kernel writes them (man 5 proc_pid_mountinfo); the root field is the 4th.
const V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
const PROC_MOUNTS = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";

/** Workers on an 8-CPU machine for the tree at `root` (at most 64). */
function workersOn8(root: string): { count: number; reason: string } {
  return workersForCpus(8, cpuQuotaFrom(read, root), 64);
}

describe("cgroup v2", () => {
  test("a parent's quota smaller than the child's binds: 1.5 CPUs rounds up to 2 workers", () => {
    const root = tree({
      "proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
      "proc/self/mountinfo": PROC_MOUNTS + V2_MOUNT,
      "sys/fs/cgroup/kubepods/cpu.max": "max 100000\n",
      "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",
      "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "400000 100000\n",
    });
    expect(cpuQuotaFrom(read, root)).toEqual({ cpus: 1.5, cgroupVersion: 2, dir: join(root, "sys/fs/cgroup/kubepods/pod1") });
    expect(workersOn8(root)).toEqual({ count: 2, reason: "CPU quota 1.5 of 8 CPUs" });
  });

  test("the process's own limit when it is the smallest (docker --cpus 2 with a cgroup namespace: 0::/)", () => {
    const root = tree({ "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "200000 100000\n" });
    expect(workersOn8(root)).toEqual({ count: 2, reason: "CPU quota 2.0 of 8 CPUs" });
  });

  test('"max" at every level: no quota, one per CPU', () => {
    const root = tree({
      "proc/self/cgroup": "0::/system.slice/game-gateway.service\n",
      "proc/self/mountinfo": V2_MOUNT,
      "sys/fs/cgroup/system.slice/cpu.max": "max 100000\n",
      "sys/fs/cgroup/system.slice/game-gateway.service/cpu.max": "max 100000\n",
    });
    expect(cpuQuotaFrom(read, root)).toBeNull();
    expect(workersOn8(root)).toEqual({ count: 8, reason: "one per CPU" });
  });

  test("a quota below one CPU still gives one worker; a quota above the CPUs gives one per CPU", () => {
    const small = tree({ "proc/self/cgroup": "0::/a\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/a/cpu.max": "25000 100000\n" });
    expect(workersOn8(small)).toEqual({ count: 1, reason: "CPU quota 0.25 of 8 CPUs" });
    const large = tree({ "proc/self/cgroup": "0::/a\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/a/cpu.max": "1200000 100000\n" });
    expect(workersOn8(large)).toEqual({ count: 8, reason: "one per CPU; the CPU quota (12.0) allows all 8" });
  });

  test("a quota of a few thousandths of a CPU, or just under the CPU count, is printed as it is, not rounded to 0 or to the count", () => {
    // A 1 s period (systemd's CPUQuotaPeriodSec=1s with CPUQuota=0.1%): two decimals printed "0.00".
    const tiny = tree({ "proc/self/cgroup": "0::/a\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/a/cpu.max": "1000 1000000\n" });
    expect(workersOn8(tiny)).toEqual({ count: 1, reason: "CPU quota 0.001 of 8 CPUs" });
    // Kubernetes' limit: 7999m: two decimals printed "8.00 of 8 CPUs", a quota that reads as none.
    const under = tree({ "proc/self/cgroup": "0::/a\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/a/cpu.max": "799900 100000\n" });
    expect(workersOn8(under)).toEqual({ count: 8, reason: "CPU quota 7.999 of 8 CPUs" });
  });
});

describe("cgroup v1", () => {
  // cpu and cpuacct co-mounted, at a place of the distribution's choosing, with a space escaped in it.
  const CPU_CPUACCT = "33 25 0:29 / /run/cg/cpu\\040acct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n";
  const CPUSET = "34 25 0:30 / /run/cg/cpuset rw,relatime shared:10 - cgroup cgroup rw,cpuset\n";

  test("the cpu,cpuacct controller's mount from mountinfo, the process's path from /proc/self/cgroup: 2.5 CPUs = 3 workers", () => {
    const root = tree({
      "proc/self/cgroup": "5:cpuset:/\n4:cpu,cpuacct:/system.slice/gw.service\n1:name=systemd:/system.slice/gw.service\n0::/system.slice/gw.service\n",
      "proc/self/mountinfo": PROC_MOUNTS + CPUSET + CPU_CPUACCT,
      "run/cg/cpu acct/cpu.cfs_quota_us": "-1\n",
      "run/cg/cpu acct/cpu.cfs_period_us": "100000\n",
      "run/cg/cpu acct/system.slice/gw.service/cpu.cfs_quota_us": "250000\n",
      "run/cg/cpu acct/system.slice/gw.service/cpu.cfs_period_us": "100000\n",
    });
    expect(cpuQuotaFrom(read, root)).toEqual({ cpus: 2.5, cgroupVersion: 1, dir: join(root, "run/cg/cpu acct/system.slice/gw.service") });
    expect(workersOn8(root)).toEqual({ count: 3, reason: "CPU quota 2.5 of 8 CPUs" });
  });

  test("-1 at every level: no quota", () => {
    const root = tree({
      "proc/self/cgroup": "4:cpu,cpuacct:/user.slice\n",
      "proc/self/mountinfo": CPU_CPUACCT,
      "run/cg/cpu acct/cpu.cfs_quota_us": "-1\n",
      "run/cg/cpu acct/cpu.cfs_period_us": "100000\n",
      "run/cg/cpu acct/user.slice/cpu.cfs_quota_us": "-1\n",
      "run/cg/cpu acct/user.slice/cpu.cfs_period_us": "100000\n",
    });
    expect(cpuQuotaFrom(read, root)).toBeNull();
    expect(workersOn8(root).count).toBe(8);
  });

  test("a container's mount whose root is its own cgroup (docker without a cgroup namespace)", () => {
    const root = tree({
      "proc/self/cgroup": "4:cpu,cpuacct:/docker/0123abcd\n",
      "proc/self/mountinfo": "700 690 0:29 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:9 - cgroup cgroup rw,cpu,cpuacct\n",
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    });
    expect(workersOn8(root)).toEqual({ count: 1, reason: "CPU quota 0.5 of 8 CPUs" });
  });

  test("a hybrid host: the v1 cpu controller wins over the v2 hierarchy's line", () => {
    const root = tree({
      "proc/self/cgroup": "1:cpu:/gw\n0::/gw\n",
      "proc/self/mountinfo": "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n",
      "sys/fs/cgroup/unified/gw/cpu.max": "100000 100000\n",
      "sys/fs/cgroup/cpu/gw/cpu.cfs_quota_us": "300000\n",
      "sys/fs/cgroup/cpu/gw/cpu.cfs_period_us": "100000\n",
    });
    expect(workersOn8(root)).toEqual({ count: 3, reason: "CPU quota 3.0 of 8 CPUs" });
  });
});

describe("anything unreadable or malformed: no quota known, one per CPU", () => {
  const cases: Record<string, Record<string, string>> = {
    "no /proc/self/cgroup": { "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "100000 100000\n" },
    "no mountinfo": { "proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "100000 100000\n" },
    "garbage in /proc/self/cgroup": { "proc/self/cgroup": "\u0000\u0001 not a cgroup file", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "100000 100000\n" },
    "garbage in mountinfo": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": "cgroup2 - - -\n\n", "sys/fs/cgroup/cpu.max": "100000 100000\n" },
    "no cgroup mount for the hierarchy": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": PROC_MOUNTS, "sys/fs/cgroup/cpu.max": "100000 100000\n" },
    "a cgroup outside the namespace's view": { "proc/self/cgroup": "0::/../../other\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "max 100000\n" },
    "cpu.max not numbers": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "lots 100000\n" },
    "cpu.max with one field": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "100000\n" },
    "cpu.max with a zero period": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "100000 0\n" },
    "cpu.max with a zero quota": { "proc/self/cgroup": "0::/\n", "proc/self/mountinfo": V2_MOUNT, "sys/fs/cgroup/cpu.max": "0 100000\n" },
    "a malformed parent beside a readable child": {
      "proc/self/cgroup": "0::/a\n",
      "proc/self/mountinfo": V2_MOUNT,
      "sys/fs/cgroup/cpu.max": "\n",
      "sys/fs/cgroup/a/cpu.max": "100000 100000\n",
    },
    "v1 quota not a number": {
      "proc/self/cgroup": "1:cpu:/\n",
      "proc/self/mountinfo": "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
      "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "1e5\n",
      "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    },
    "v1 quota without a period file": {
      "proc/self/cgroup": "1:cpu:/\n",
      "proc/self/mountinfo": "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
      "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "100000\n",
    },
  };
  for (const [name, files] of Object.entries(cases)) {
    test(name, () => {
      const root = tree(files);
      expect(cpuQuotaFrom(read, root)).toBeNull();
      expect(workersOn8(root)).toEqual({ count: 8, reason: "one per CPU" });
    });
  }

  test("nothing at all (an empty root)", () => {
    expect(workersOn8(tree({}))).toEqual({ count: 8, reason: "one per CPU" });
  });
});

describe("the count's bounds and the CPUs", () => {
  test("at most MAX_WORKERS, saying so", () => {
    expect(workersForCpus(96, null, 64)).toEqual({ count: 64, reason: "one per CPU, at most 64" });
    expect(workersForCpus(128, { cpus: 80, cgroupVersion: 2, dir: "/" }, 64)).toEqual({ count: 64, reason: "CPU quota 80.0 of 128 CPUs, at most 64" });
  });

  test("never 0 workers, whatever the CPU count says", () => {
    expect(workersForCpus(0, null, 64).count).toBe(1);
  });

  test("the CPUs this process may run on, from Cpus_allowed_list", () => {
    const status = (list: string) => tree({ "proc/self/status": `Name:\tbun\nCpus_allowed:\tff\nCpus_allowed_list:\t${list}\nMems_allowed_list:\t0\n` });
    expect(allowedCpusFrom(read, status("0-3,8,10-11"))).toBe(7);
    expect(allowedCpusFrom(read, status("5"))).toBe(1);
    expect(allowedCpusFrom(read, status("3-1"))).toBeNull();
    expect(allowedCpusFrom(read, status("a-b"))).toBeNull();
    expect(allowedCpusFrom(read, tree({}))).toBeNull();
  });
});
