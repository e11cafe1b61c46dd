// The shipped artifact: builds dist/game-gateway and drives real clients through it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { STATUS_PAGE_HTML } from "../../src/admin/status-page.ts";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { startReferenceBackend } from "../support/reference-backend.ts";
import { ChildOutput, eventually, rule, startGateway, str, text } from "../support/harness.ts";
import { decodePprof } from "../support/pprof.ts";
import { GrpcGameServer } from "../support/grpc-game-server.ts";

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

  // Only nothing at config/config.yaml means the demo: these started it, answering players on :8080.
  test.each([
    ["a directory", (path: string) => mkdirSync(path), "is a directory"],
    ["a dangling symlink", (path: string) => symlinkSync("gone.yaml", path), 'is a symlink to "gone.yaml", which does not exist'],
    ["a symlink to a directory", (path: string) => symlinkSync("..", path), "is a symlink to a directory"],
  ])("config/config.yaml that is %s stops the start, naming the path and the problem", (_, make, problem) => {
    const cwd = mkdtempSync(join(tmpdir(), "gw-bin-cwd-"));
    mkdirSync(join(cwd, "config"));
    make(join(cwd, "config/config.yaml"));
    // Bounded: before the fix the demo started and ran until killed.
    const p = Bun.spawnSync([binary], { cwd, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" }, timeout: 20_000 });
    expect(p.stderr.toString()).toBe(
      `game-gateway: no --config, and config/config.yaml in ${realpathSync(cwd)} ${problem}: expected a readable YAML config file there, or nothing (the demo)\n`,
    );
    expect(p.exitCode).toBe(1);
    expect(p.stdout.toString()).not.toContain("demo");
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
    /** Writes `lines` to the file `cfg` and starts the binary on it (killed after the suite). */
    const startWithConfig = (cfg: string, lines: readonly string[]): Subprocess<"ignore", "pipe", "pipe"> => {
      writeFileSync(cfg, lines.join("\n"));
      const proc = Bun.spawn([binary, "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      procs.push(proc);
      return proc;
    };

    test("--config FILE: clients round-trip through the binary; SIGTERM exits 0", async () => {
      const cfg = join(dir, "gw.yaml");
      const proc = startWithConfig(cfg, [
        "server:",
        '  listen_addr: "127.0.0.1:0"',
        "  health_check_port: -1",
        "graceful_shutdown_timeout: 1s",
        "security: { connection_rate_limit: 1000, max_connections_per_ip: 1000 }",
        "routing:",
        "  rules:",
        `    - { server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }`,
      ]);
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

    test("WebSocket clients through the binary: on the dedicated listener and on the TCP port (sniffed)", async () => {
      const cfg = join(dir, "gw-ws.yaml");
      const proc = startWithConfig(cfg, [
        'server: { listen_addr: "127.0.0.1:0", ws_listen_addr: "127.0.0.1:0", health_check_port: -1 }',
        "graceful_shutdown_timeout: 1s",
        `routing: { rules: [{ server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }] }`,
      ]);
      const [, port, wsPort] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)".*"ws_listen":"127\.0\.0\.1:(\d+)\/ws"/);
      const frame = encodeClientFrame(3, serverIdFor(10), text("over websocket"));
      for (const url of [`ws://127.0.0.1:${wsPort}/ws`, `ws://127.0.0.1:${port}/`]) {
        const ws = new WebSocket(url);
        ws.binaryType = "arraybuffer";
        const reply = new Promise<Uint8Array>((resolve) => (ws.onmessage = (e) => resolve(new Uint8Array(e.data as ArrayBuffer))));
        await new Promise((resolve) => (ws.onopen = resolve));
        ws.send(frame);
        expect(await reply).toEqual(frame);
        ws.close();
      }
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    });

    test("backend.mode: per_session serves a game server written for the reference gateway, unchanged", async () => {
      const reference = startReferenceBackend();
      const cfg = join(dir, "gw-per-session.yaml");
      const proc = startWithConfig(cfg, [
        'server: { listen_addr: "127.0.0.1:0", health_check_port: -1 }',
        "graceful_shutdown_timeout: 1s",
        'backend: { mode: per_session, ping_interval: 20ms }',
        "session: { sweep_interval: 10ms }",
        `routing: { rules: [{ server_type: 10, endpoints: ["127.0.0.1:${reference.port}"] }] }`,
      ]);
      try {
        const [, port] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)"/);
        const clients = await Promise.all([0, 1, 2].map(() => GameClient.connect("127.0.0.1", Number(port))));
        for (const [i, c] of clients.entries()) c.send(40 + i, serverIdFor(10), text(`player ${i}`));
        for (const [i, c] of clients.entries()) {
          const f = await c.next();
          expect({ messageId: f.messageId, serverId: f.serverId, body: str(f.body) }).toEqual({ messageId: 40 + i, serverId: 0, body: `player ${i}` });
        }
        await Bun.sleep(200); // ten ping intervals: a Ping would have made the backend hang up
        expect(reference.closeConnectionOf("player 1")).toBe(true);
        await clients[1]!.closed;
        for (const c of [clients[0]!, clients[2]!]) {
          c.send(7, serverIdFor(10), text("still here"));
          expect(str((await c.next()).body)).toBe("still here");
        }
        expect(reference.violations).toEqual([]);
        expect(reference.accepted).toBe(3);
        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
      } finally {
        reference.stop();
      }
    });

    test("server.use_grpc: serves a game server written against the reference's gRPC transport (under Node), the .proto read from the binary", async () => {
      const game = await GrpcGameServer.start("node");
      const cfg = join(dir, "gw-grpc.yaml");
      writeFileSync(
        cfg,
        [
          'server: { listen_addr: "127.0.0.1:0", health_check_port: -1, use_grpc: true, gateway_name: bin-gw }',
          "graceful_shutdown_timeout: 1s",
          `routing: { rules: [{ server_type: 10, endpoints: ["${game.address}"] }] }`,
        ].join("\n"),
      );
      // cwd is a fresh directory: the .proto can only come from the binary itself.
      const proc = Bun.spawn([binary, "--config", cfg], { cwd: dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      procs.push(proc);
      try {
        const [, port] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)"/);
        const clients = await Promise.all([0, 1, 2].map(() => GameClient.connect("127.0.0.1", Number(port))));
        for (const [i, c] of clients.entries()) c.send(1, serverIdFor(10), text(`grpc player ${i}`));
        for (const [i, c] of clients.entries()) {
          const f = await c.next();
          expect({ messageId: f.messageId, body: str(f.body) }).toEqual({ messageId: 1, body: `grpc player ${i}` });
        }
        expect(game.events.filter((e) => e.event === "stream")).toEqual([{ event: "stream", gateway_name: "bin-gw" }]);
        expect(game.packets().filter((p) => p.metadata.packet_type === "connect")).toHaveLength(3);
        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
        // Drain: every session's disconnect packet reached the server before the process exited.
        const reasons = () => game.packets().filter((p) => p.metadata.packet_type === "disconnect").map((p) => p.metadata.reason);
        await eventually(() => reasons().length === 3, "three disconnect packets");
        expect(reasons()).toEqual(["shutdown", "shutdown", "shutdown"]);
      } finally {
        await game.kill();
      }
    });

    test("serves the status page the bundler embedded, byte for byte, at / of the admin port", async () => {
      const cfg = join(dir, "gw-admin.yaml");
      const proc = startWithConfig(cfg, [
        'server: { listen_addr: "127.0.0.1:0" }',
        'admin: { listen_addr: "127.0.0.1:0" }',
        "graceful_shutdown_timeout: 1s",
        `routing: { rules: [{ server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }] }`,
      ]);
      const [, adminPort] = await new ChildOutput(proc).line(/"admin_port":(\d+)/);
      const page = await fetch(`http://127.0.0.1:${adminPort}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(await page.text()).toBe(STATUS_PAGE_HTML);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    });

    test("GET /debug/pprof/profile: a pprof CPU profile of the binary under traffic, its stacks source-mapped to the gateway's files", async () => {
      const cfg = join(dir, "gw-profile.yaml");
      const proc = startWithConfig(cfg, [
        'server: { listen_addr: "127.0.0.1:0" }',
        'admin: { listen_addr: "127.0.0.1:0", debug_token: "bin-t0ken" }',
        "graceful_shutdown_timeout: 1s",
        `routing: { rules: [{ server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }] }`,
      ]);
      const [, port, adminPort] = await new ChildOutput(proc).line(/"listen":"127\.0\.0\.1:(\d+)".*"admin_port":(\d+)/);
      const url = (q: string) => `http://127.0.0.1:${adminPort}/debug/pprof/profile${q}`;
      const auth = { headers: { authorization: "Bearer bin-t0ken" } };
      expect((await fetch(url("?seconds=1"))).status).toBe(401);
      expect((await fetch(url("?seconds=0"), auth)).status).toBe(400);

      const clients = await Promise.all([0, 1, 2, 3].map(() => GameClient.connect("127.0.0.1", Number(port))));
      // Two at once: one profiles, the other is refused (whichever reaches the gateway second).
      const pending = Promise.all([fetch(url("?seconds=2"), auth), fetch(url("?seconds=2"), auth)]);
      let done = false;
      void pending.finally(() => (done = true));
      await Promise.all(
        clients.map(async (c, i) => {
          for (let n = 0; !done; n++) {
            c.send(1, serverIdFor(10), text(`p${i}.${n}`));
            expect(str((await c.next()).body)).toBe(`p${i}.${n}`);
          }
        }),
      );
      const answers = await pending;
      expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
      const res = answers.find((r) => r.status === 200)!;
      const profile = decodePprof(new Uint8Array(await res.arrayBuffer()));
      expect(profile.sampleTypes).toEqual(["samples/count", "cpu/nanoseconds"]);
      expect(profile.durationNanos).toBeGreaterThanOrEqual(2e9);
      // The binary is minified, but method names survive and the inline source map gives the files.
      const inListener = profile.samples.flatMap((s) => s.stack).filter((f) => /^\S+ (\S*\/)?src\/net\/tcp-listener\.ts:\d+$/.test(f));
      expect(inListener.length).toBeGreaterThan(0);
      for (const c of clients) c.close();
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
      // The browser example is embedded: the page and its bundle are served with no file beside the binary.
      const [, pageUrl] = await out.line(/Play the chat room in a browser: (http:\/\/\S+)/);
      const html = await (await fetch(pageUrl!)).text();
      expect(html).toContain('<script src="game.js"></script>');
      expect(await (await fetch(new URL("game.js", pageUrl))).text()).toBe(readFileSync(join(import.meta.dir, "../../examples/browser/dist/game.js"), "utf8"));
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
    });
  });
});
