// npm run build:all: every release target cross-compiles (the runtime for a foreign target comes
// from the npm registry on first use), is the executable `file` says it should be, carries its
// version, commit and target, and has its source maps beside it; the x64 glibc ones serve a round
// trip and exit 0 on SIGTERM. linux-arm64 cannot run on this x64 machine, and linux-x64-musl needs
// Alpine's libstdc++ (apk add libstdc++ libgcc), which a glibc host does not have: `file` checks them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { RELEASE_TARGETS, releaseBinaryPath, type ReleaseTarget } from "../../scripts/build.ts";
import { ChildOutput, str, text } from "../support/harness.ts";

const root = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "gw-release-"));
const binaryOf = (t: ReleaseTarget) => join(root, releaseBinaryPath(t));

/** What `file` must say of each target's binary: architecture and dynamic loader (the libc). */
const FILE_SAYS: Record<ReleaseTarget, RegExp[]> = {
  "linux-x64": [/ELF 64-bit LSB executable, x86-64/, /ld-linux-x86-64\.so\.2/],
  "linux-x64-baseline": [/ELF 64-bit LSB executable, x86-64/, /ld-linux-x86-64\.so\.2/],
  "linux-arm64": [/ELF 64-bit LSB executable, ARM aarch64/, /ld-linux-aarch64\.so\.1/],
  "linux-x64-musl": [/ELF 64-bit LSB executable, x86-64/, /ld-musl-x86_64\.so\.1/],
};
const RUNNABLE_HERE: ReleaseTarget[] = ["linux-x64", "linux-x64-baseline"];
const TARGETS = Object.keys(RELEASE_TARGETS) as ReleaseTarget[];

let commit = "";
beforeAll(async () => {
  const build = Bun.spawnSync(["npm", "run", "-s", "build:all"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`npm run build:all failed:\n${build.stdout.toString()}\n${build.stderr.toString()}`);
  // Sizes in the log: the test run is where a reviewer sees them.
  console.log(build.stdout.toString().trim());
  commit = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root }).stdout.toString().trim();
}, 300_000);

describe("npm run build:all", () => {
  test.each(TARGETS)("%s: `file` names its architecture and libc; source maps beside it, not inside", (t) => {
    const out = Bun.spawnSync(["file", "-b", binaryOf(t)]).stdout.toString();
    for (const says of FILE_SAYS[t]) expect(out).toMatch(says);
    expect(existsSync(`${binaryOf(t)}.map`)).toBe(true);
    // Each lazily loaded entry point (config worker, OTLP tracer, gRPC transport) is in this binary: its map is beside it.
    for (const entry of ["load-worker", "otlp-tracer", "grpc-transport"]) expect(existsSync(join(binaryOf(t), `../${entry}.js.map`))).toBe(true);
    // The full map, sources and their comments included (the minified bundle drops comments).
    // Inside the binary Bun keeps only its compact line table (same size with --sourcemap=inline,
    // measured), so "not inside" is a property of bun --compile, not something this build chooses.
    expect(readFileSync(`${binaryOf(t)}.map`, "utf8")).toContain("the one place that wires a gateway to the process");
  });

  test.each(RUNNABLE_HERE)("%s: --version prints the version, the git commit and the target", (t) => {
    const p = Bun.spawnSync([binaryOf(t), "--version"], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
    expect(p.exitCode).toBe(0);
    const version = require("../../package.json").version as string;
    expect(p.stdout.toString()).toMatch(new RegExp(`^game-gateway ${version.replaceAll(".", "\\.")} \\(commit ${commit}(-dirty)?, target ${t}, bun `));
  });

  describe("smoke: start, one round trip, SIGTERM exits 0", () => {
    let backend: DemoBackend;
    beforeAll(async () => {
      backend = await DemoBackend.start({ port: 0 });
    });
    afterAll(() => backend.stop());

    test.each(RUNNABLE_HERE)("%s", async (t) => {
      const cfg = join(dir, `${t}.yaml`);
      writeFileSync(
        cfg,
        [
          "server:",
          '  listen_addr: "127.0.0.1:0"',
          "  health_check_port: -1",
          "graceful_shutdown_timeout: 1s",
          "routing:",
          "  rules:",
          `    - { server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }`,
        ].join("\n"),
      );
      const proc = Bun.spawn([binaryOf(t), "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      try {
        const [, port] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)"/);
        const client = await GameClient.connect("127.0.0.1", Number(port));
        client.send(1, serverIdFor(10), text(`through ${t}`));
        expect(str((await client.next()).body)).toBe(`through ${t}`);
        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
        await client.closed;
      } finally {
        proc.kill("SIGKILL");
      }
    }, 60_000);
  });
});
