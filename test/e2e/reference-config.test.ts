// Issue 12 through the built binary: the reference gateway's config file, dropped in where the
// reference reads it (config/config.yaml in the working directory, no flag), starts this gateway,
// which serves its routes and says once which of its keys it does not act on.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { ChildOutput, str, text } from "../support/harness.ts";

setDefaultTimeout(30_000);

const root = join(import.meta.dir, "../..");
const binary = join(root, "dist/game-gateway");
const FIXTURE = join(root, "test/config/fixtures/reference-config.yaml");
const UNUSED = "config keys accepted but not used by this version: ";
const procs: Subprocess[] = [];
let backend: DemoBackend;

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
  backend = await DemoBackend.start({ port: 0 });
}, 120_000);

afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await backend.stop();
});

/** Replaces every occurrence of `from` (at least one) in `s`. */
function moved(s: string, from: string, to: string): string {
  expect(s).toContain(from);
  return s.split(from).join(to);
}

/** A working directory holding config/config.yaml: the fixture, its backend and ports moved to this test's. */
function workingDirWithReferenceConfig(): string {
  let yaml = moved(readFileSync(FIXTURE, "utf8"), "{{BACKEND}}", `127.0.0.1:${backend.port}`);
  yaml = moved(yaml, 'listen_addr: ":8080"', 'listen_addr: "127.0.0.1:0"');
  // Its health_check_port 9090 stays in the file; this version's admin.listen_addr wins over it.
  yaml += '\nadmin: { listen_addr: "127.0.0.1:0" }\n';
  const dir = mkdtempSync(join(tmpdir(), "gw-reference-"));
  mkdirSync(join(dir, "config"));
  writeFileSync(join(dir, "config/config.yaml"), yaml);
  return dir;
}

describe("the reference's config/config.yaml, through dist/game-gateway", () => {
  test("with no flag it is loaded from the working directory; its routes serve; one warning names what is not acted on", async () => {
    const cwd = workingDirWithReferenceConfig();
    const proc = Bun.spawn([binary], { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { PATH: process.env.PATH ?? "" } });
    procs.push(proc);
    const out = new ChildOutput(proc);
    const [, port] = await out.line(/"listen":"127\.0\.0\.1:(\d+)"/);
    expect(out.stdout).not.toContain("demo backend");

    // Server types 10 (round_robin) and 15 (consistent_hash, with a hash_key) go to the backend.
    for (const type of [10, 15]) {
      const c = await GameClient.connect("127.0.0.1", Number(port));
      c.send(1, serverIdFor(type, 3), text(`type ${type}`));
      expect(str((await c.next()).body)).toBe(`type ${type}`);
      c.close();
    }
    // Server type 200's rule leaves its endpoints to Consul, which is not queried: refused.
    const game = await GameClient.connect("127.0.0.1", Number(port));
    game.send(1, serverIdFor(200, 3), text("anyone?"));
    await game.closed;

    // A JSON WARN record on stdout, as after a reload, so a log pipeline sees it.
    const warning = await out.logLine("config warning");
    expect(warning.severity_text).toBe("WARN");
    const unused = out.stdout.split("\n").filter((l) => l.includes(UNUSED)).map((l) => String((JSON.parse(l) as { warning: unknown }).warning));
    expect(unused).toHaveLength(1);
    expect(unused[0]).toStartWith(UNUSED);
    expect(out.stderr).not.toContain(UNUSED);
    // connection_pool.idle_timeout is acted on: a shared backend connection's idle life.
    expect(unused[0]).not.toContain("connection_pool.idle_timeout");
    for (const key of ["server.metrics_port", "connection_pool.max_goroutines", "backend.account_service", "routing.rules[].hash_key"]) {
      expect(unused[0]).toContain(key);
    }
    // Redis and Consul are acted on now (its Redis at localhost:6379 is absent here: its file rules
    // serve); only Redis' connection tuning is not.
    expect(unused[0]).not.toContain("redis.*");
    expect(unused[0]).not.toContain("redis.addr");
    expect(unused[0]).not.toContain("consul.");
    expect(unused[0]).toContain("redis.pool_size");
    expect(unused[0]).not.toContain("grpc"); // gRPC backends are implemented (server.use_grpc)
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });

  test("--check-config calls it valid and prints the same warning", () => {
    const cwd = workingDirWithReferenceConfig();
    const r = Bun.spawnSync([binary, "--check-config", "config/config.yaml"], { cwd, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toContain("config/config.yaml: valid (3 routing rules)");
    expect(r.stderr.toString().split("\n").filter((l) => l.includes(UNUSED))).toHaveLength(1);
  });
});
