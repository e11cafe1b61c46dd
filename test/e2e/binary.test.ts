// The shipped artifact: builds dist/game-gateway and drives real clients through it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { STATUS_PAGE_HTML } from "../../src/admin/status-page.ts";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { ChildOutput, eventually, rule, startGateway, str, text } from "../support/harness.ts";

const root = join(import.meta.dir, "../..");
const binary = join(root, "dist/game-gateway");
const dir = mkdtempSync(join(tmpdir(), "gw-bin-"));

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
}, 120_000);

function run(args: string[]) {
  const p = Bun.spawnSync([binary, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("dist/game-gateway", () => {
  test("--version and --help", () => {
    expect(run(["--version"])).toMatchObject({ code: 0, out: expect.stringMatching(/^game-gateway \d+\.\d+\.\d+/) });
    const help = run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("--check-config");
    const bad = run(["--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown argument "--bogus"');
  });

  test("--check-config accepts the example and names the key, value and expectation of a bad one", () => {
    expect(run(["--check-config", join(root, "config/gateway.example.yaml")]).code).toBe(0);
    const badPath = join(dir, "bad.yaml");
    writeFileSync(badPath, "connection_pool:\n  dial_timeout: 5 seconds\n");
    const bad = run(["-check-config", badPath]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("connection_pool.dial_timeout");
    expect(bad.err).toContain("5 seconds");
  });

  describe("serving", () => {
    let backend: DemoBackend;
    const procs: Subprocess[] = [];
    beforeAll(async () => {
      backend = await DemoBackend.start({ port: 0 });
    });
    afterAll(async () => {
      for (const p of procs) p.kill("SIGKILL");
      await backend.stop();
    });

    test("--config FILE: clients round-trip through the binary; SIGTERM exits 0", async () => {
      const cfg = join(dir, "gw.yaml");
      writeFileSync(
        cfg,
        [
          "server:",
          '  listen_addr: "127.0.0.1:0"',
          "  health_check_port: -1",
          "graceful_shutdown_timeout: 1s",
          "security: { connection_rate_limit: 1000, max_connections_per_ip: 1000 }",
          "routing:",
          "  rules:",
          `    - { server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }`,
        ].join("\n"),
      );
      const proc = Bun.spawn([binary, "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      procs.push(proc);
      const [, port] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)"/);
      const clients = await Promise.all([1, 2, 3].map(() => GameClient.connect("127.0.0.1", Number(port))));
      for (const [i, c] of clients.entries()) c.send(5, serverIdFor(10), text(`via binary ${i}`));
      for (const [i, c] of clients.entries()) expect(str((await c.next()).body)).toBe(`via binary ${i}`);

      // Hot reload on SIGHUP: a route for server type 15 appears without a restart.
      const tryType15 = async (): Promise<boolean> => {
        const c = await GameClient.connect("127.0.0.1", Number(port));
        c.send(1, serverIdFor(15), text("new route"));
        const ok = await c.next(2000).then((f) => str(f.body) === "new route", () => false);
        c.close();
        return ok;
      };
      expect(await tryType15()).toBe(false);
      writeFileSync(cfg, readFileSync(cfg, "utf8") + `\n    - { server_type: 15, endpoints: ["127.0.0.1:${backend.port}"] }\n`);
      proc.kill("SIGHUP");
      await eventually(tryType15, "the reloaded route to serve server type 15");
      for (const [i, c] of clients.entries()) {
        c.send(6, serverIdFor(10), text(`after reload ${i}`));
        expect(str((await c.next()).body)).toBe(`after reload ${i}`);
      }
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      for (const c of clients) await c.closed;
    });

    test("serves the status page the bundler embedded, byte for byte, at / of the admin port", async () => {
      const cfg = join(dir, "gw-admin.yaml");
      writeFileSync(
        cfg,
        [
          'server: { listen_addr: "127.0.0.1:0" }',
          'admin: { listen_addr: "127.0.0.1:0" }',
          "graceful_shutdown_timeout: 1s",
          `routing: { rules: [{ server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }] }`,
        ].join("\n"),
      );
      const proc = Bun.spawn([binary, "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      procs.push(proc);
      const [, adminPort] = await new ChildOutput(proc).line(/"admin_port":(\d+)/);
      const page = await fetch(`http://127.0.0.1:${adminPort}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(await page.text()).toBe(STATUS_PAGE_HTML);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    });

    test("loadtest subcommand: round trips through a gateway, JSON result, exit 0", async () => {
      const gw = startGateway({ routing: { rules: [rule(10, [`127.0.0.1:${backend.port}`])] } });
      try {
        const proc = Bun.spawn(
          [binary, "loadtest", "-host", "127.0.0.1", "-port", String(gw.gateway.port), "-connections", "8", "-duration", "1s", "-rate", "0", "--json"],
          { cwd: dir, stdout: "pipe", stderr: "pipe" },
        );
        const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        expect(code).toBe(0);
        const result = JSON.parse(out) as { messages: { sent: number; received: number } };
        expect(result.messages.sent).toBeGreaterThan(0);
        expect(result.messages.received).toBe(result.messages.sent);
      } finally {
        await gw.stop();
      }
    });

    test("no config: the embedded demo backend answers and the banner says where to connect", async () => {
      const proc = Bun.spawn([binary], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      procs.push(proc);
      const out = new ChildOutput(proc);
      const [, port] = await out.line(/Clients can connect to tcp:\/\/127\.0\.0\.1:(\d+)/);
      // Why the demo: the reference would have loaded config/config.yaml from here.
      expect(out.stdout).toContain(`no --config and no config/config.yaml in ${realpathSync(dir)}: starting the demo backend`);
      const c = await GameClient.connect("127.0.0.1", Number(port));
      c.send(1, serverIdFor(200, 1), text("demo?"));
      expect(str((await c.next()).body)).toBe("demo?");
      c.close();
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
    });
  });
});
