// scripts/install.sh into a temporary root, then what systemd itself says of the installed unit
// (systemd-analyze verify, which also checks that ExecStart's binary exists and is executable), and
// that the unit's settings agree with the gateway's: the config it points at is valid, it stops
// with more time than the drain takes, it reloads with SIGHUP.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigFile } from "../../src/config/load.ts";

const repo = join(import.meta.dir, "../..");
const binary = join(repo, "dist/game-gateway");
const installSh = join(repo, "scripts/install.sh");
const SYSTEM_UNITS = "/usr/lib/systemd/system";

beforeAll(() => {
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
}, 120_000);

function install(...args: string[]) {
  const p = Bun.spawnSync(["sh", installSh, ...args], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** A unit file's [Service] settings; a key given twice (ExecReload) keeps every value in order. */
function serviceSettings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of unit.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      section = line;
      continue;
    }
    if (section !== "[Service]") continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

/** systemd.time seconds: "45s", "1min 30s", "90". */
function seconds(span: string): number {
  let total = 0;
  for (const [, n, unit] of span.matchAll(/(\d+)\s*(min|s)?/g)) total += Number(n) * (unit === "min" ? 60 : 1);
  return total;
}

describe("scripts/install.sh --prefix ROOT", () => {
  const root = mkdtempSync(join(tmpdir(), "gw-install-"));
  const installed = {
    binary: join(root, "usr/local/bin/game-gateway"),
    config: join(root, "etc/game-gateway/config/config.yaml"),
    unit: join(root, "etc/systemd/system/game-gateway.service"),
  };

  test("puts the binary, the example config and the unit in place", () => {
    const r = install("--prefix", root, "--binary", binary);
    expect(r).toMatchObject({ code: 0, err: "" });
    expect(statSync(installed.binary).mode & 0o777).toBe(0o755);
    expect(readFileSync(installed.binary).equals(readFileSync(binary))).toBe(true);
    expect(readFileSync(installed.config, "utf8")).toBe(readFileSync(join(repo, "config/gateway.example.yaml"), "utf8"));
    expect(statSync(installed.config).mode & 0o777).toBe(0o644);
    expect(readFileSync(installed.unit, "utf8")).toBe(readFileSync(join(repo, "deploy/systemd/game-gateway.service"), "utf8"));
  });

  test("systemd-analyze verify accepts the installed unit", () => {
    // verify resolves the unit's dependencies (network-online.target, sysinit.target) under --root.
    mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
    cpSync(SYSTEM_UNITS, join(root, SYSTEM_UNITS), { recursive: true });
    const p = Bun.spawnSync(["systemd-analyze", "verify", `--root=${root}`, installed.unit], { stdout: "pipe", stderr: "pipe" });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  });

  test("the unit starts the installed binary on the installed config, from the working directory the reference expects", async () => {
    const s = serviceSettings(readFileSync(installed.unit, "utf8"));
    const workDir = join(root, s.get("WorkingDirectory")![0]!);
    const [exe, ...args] = s.get("ExecStart")![0]!.split(/\s+/);
    expect(join(root, exe!)).toBe(installed.binary);
    expect(args).toEqual(["--config", "config/config.yaml"]);
    expect(join(workDir, args[1]!)).toBe(installed.config);
    // ExecReload's first step, run as systemd would: the installed config is valid.
    const [checkExe, ...checkArgs] = s.get("ExecReload")![0]!.split(/\s+/);
    const check = Bun.spawnSync([join(root, checkExe!), ...checkArgs], { cwd: workDir, stdout: "pipe", stderr: "pipe" });
    expect(check.stdout.toString()).toContain("config/config.yaml: valid");
    expect(check.exitCode).toBe(0);
    expect(s.get("ExecReload")![1]).toBe("/bin/kill -HUP $MAINPID");
  });

  test("stop, restart, limits and hardening", async () => {
    const s = serviceSettings(readFileSync(installed.unit, "utf8"));
    const { config } = await loadConfigFile(installed.config);
    const drainSeconds = (config.server.drain_delay + config.graceful_shutdown_timeout) / 1000;
    expect(s.get("KillSignal")).toEqual(["SIGTERM"]);
    // Above the drain, or systemd SIGKILLs sessions the drain was still letting finish.
    expect(seconds(s.get("TimeoutStopSec")![0]!)).toBeGreaterThan(drainSeconds);
    expect(s.get("Restart")).toEqual(["on-failure"]);
    expect(Number(s.get("LimitNOFILE")![0])).toBeGreaterThanOrEqual(65536);
    for (const [key, value] of [["NoNewPrivileges", "yes"], ["ProtectSystem", "strict"], ["DynamicUser", "yes"]]) expect(s.get(key!)).toEqual([value!]);
  });

  test("again: the binary and unit are replaced, an edited config is kept", () => {
    const edited = readFileSync(installed.config, "utf8") + "\n# edited on this VM\n";
    writeFileSync(installed.config, edited);
    const r = install("--prefix", root, "--binary", binary);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`keeping the existing ${installed.config}`);
    expect(readFileSync(installed.config, "utf8")).toBe(edited);
  });

  test("--dry-run prints the steps and changes nothing", () => {
    const fresh = mkdtempSync(join(tmpdir(), "gw-install-dry-"));
    const r = install("--prefix", fresh, "--binary", binary, "--dry-run");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`+ install -m 0755 ${binary} ${fresh}/usr/local/bin/game-gateway`);
    expect(readdirSync(fresh)).toEqual([]);
  });

  test("a binary that does not run here is refused before anything is installed, saying why", () => {
    const fresh = mkdtempSync(join(tmpdir(), "gw-install-bad-"));
    const foreign = join(fresh, "not-for-this-cpu");
    writeFileSync(foreign, "#!/bin/sh\nexit 126\n", { mode: 0o755 });
    const r = install("--prefix", join(fresh, "root"), "--binary", foreign);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${foreign} --version failed`);
    expect(existsSync(join(fresh, "root"))).toBe(false);
    const missing = install("--prefix", join(fresh, "root"), "--binary", join(fresh, "nothing"));
    expect(missing).toMatchObject({ code: 1, err: expect.stringContaining("expected an executable file") });
  });
});
