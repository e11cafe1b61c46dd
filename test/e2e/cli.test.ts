// The gateway process as an operator meets it: a busy port, a drain that takes a while, a forced
// exit, SIGHUP. Real processes (src/cli/main.ts under this Bun), real sockets on loopback.
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess, TCPSocketListener } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { ACCESS_LOG_BODY, ChildOutput, eventually, str, text, TestScope } from "../support/harness.ts";

// Each test starts a process or two; a loaded machine may take seconds to.
setDefaultTimeout(30_000);

const main = join(import.meta.dir, "../../src/cli/main.ts");
const dir = mkdtempSync(join(tmpdir(), "gw-cli-"));
const scope = new TestScope();
afterEach(scope.release);
const children: Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

let configs = 0;
function configFile(lines: string[]): string {
  const path = join(dir, `gw-${++configs}.yaml`);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

function spawnMain(args: string[]): ChildOutput {
  const proc = Bun.spawn([process.execPath, main, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  children.push(proc);
  return new ChildOutput(proc);
}

/** A port held by this test for as long as the test runs. */
function busyPort(): number {
  const holder: TCPSocketListener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  scope.defer(() => holder.stop(true));
  return holder.port;
}

/** A valid file must route somewhere; these gateways exit at the busy port before the route matters. */
const UNUSED_ROUTE = ["routing:", "  rules:", '    - { server_type: 10, endpoints: ["127.0.0.1:1"] }'];

describe("a port already in use", () => {
  // One line naming the setting, the address and the cause; no stack trace; a non-zero status.
  async function expectRefusal(args: string[], line: string): Promise<void> {
    const child = spawnMain(args);
    expect(await child.proc.exited).toBe(1);
    expect(child.stderr).toBe(`game-gateway: ${line}\n`);
  }

  test("the client port: names server.listen_addr", async () => {
    const port = busyPort();
    const cfg = configFile(["server:", `  listen_addr: "127.0.0.1:${port}"`, "  health_check_port: -1", ...UNUSED_ROUTE]);
    await expectRefusal(["--config", cfg], `server.listen_addr 127.0.0.1:${port}: address already in use`);
  });

  test("the admin port: names server.health_check_port", async () => {
    const port = busyPort();
    const cfg = configFile(["server:", '  listen_addr: "127.0.0.1:0"', `  health_check_port: ${port}`, ...UNUSED_ROUTE]);
    await expectRefusal(["--config", cfg], `server.health_check_port 127.0.0.1:${port}: address already in use`);
  });

  test("the demo backend's port: names its flag", async () => {
    const port = busyPort();
    await expectRefusal(["demo-backend", "-port", String(port)], `demo-backend --port 127.0.0.1:${port}: address already in use`);
  });

  test("a helper waiting for the banner shows what the process printed", async () => {
    const port = busyPort();
    const cfg = configFile(["server:", `  listen_addr: "127.0.0.1:${port}"`, "  health_check_port: -1", ...UNUSED_ROUTE]);
    const error = await spawnMain(["--config", cfg]).line(/"gateway listening"/).then(() => null, (e: Error) => e);
    expect(error?.message).toContain("exited with status 1");
    expect(error?.message).toContain(`server.listen_addr 127.0.0.1:${port}: address already in use`);
  });
});

describe("operating the process", () => {
  async function started(extra: string[]): Promise<{ child: ChildOutput; port: number; adminPort: number }> {
    const be = await scope.backend();
    const cfg = configFile([
      "server:",
      '  listen_addr: "127.0.0.1:0"',
      'admin: { listen_addr: "127.0.0.1:0" }',
      "security: { connection_rate_limit: 1000, max_connections_per_ip: 1000 }",
      "routing:",
      "  rules:",
      `    - { server_type: 10, endpoints: ["127.0.0.1:${be.port}"] }`,
      ...extra,
    ]);
    const child = spawnMain(["--config", cfg]);
    const [, port, adminPort] = await child.line(/"listen":"127\.0\.0\.1:(\d+)","admin_port":(\d+)/);
    return { child, port: Number(port), adminPort: Number(adminPort) };
  }

  async function roundTrip(port: number, body: string): Promise<GameClient> {
    const c = await GameClient.connect("127.0.0.1", port);
    c.send(1, serverIdFor(10), text(body));
    expect(str((await c.next()).body)).toBe(body);
    return c;
  }

  test("a drain reports its progress: sessions left, seconds to the deadline, how to cut it short", async () => {
    const { child, port } = await started(["graceful_shutdown_timeout: 3s"]);
    const stays = await roundTrip(port, "staying");
    child.proc.kill("SIGTERM");
    expect(await child.logLine("drain progress")).toMatchObject({
      sessions_left: 1,
      clients_left: 1,
      seconds_to_deadline: expect.any(Number),
      hint: "signal again to exit now",
    });
    stays.close(); // the last session leaves: the drain ends before its deadline
    expect(await child.proc.exited).toBe(0);
  });

  test("a second signal exits at once, but first writes the batched access records and one for each live session", async () => {
    const { child, port, adminPort } = await started(["graceful_shutdown_timeout: 60s", "log: { access_log: stdout }"]);
    const left = await roundTrip(port, "leaving");
    const stays = await roundTrip(port, "staying");
    left.close();
    // The leaver's record is batched (flushed at 100 records or every 5 s), not yet written.
    await eventually(async () => ((await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as { sessions: number }).sessions === 1, "the leaver's session to end");
    child.proc.kill("SIGTERM");
    await child.logLine("draining");
    child.proc.kill("SIGTERM");
    expect(await child.proc.exited).toBe(1);
    await child.ended;
    const access = child.logRecords(ACCESS_LOG_BODY);
    // The leaver's batched record, and one for the session the exit cut (before, it had none).
    expect(access.map((r) => r.reason).sort()).toEqual(["client_closed", "shutdown"]);
    stays.close();
  });

  test("SIGHUP reloads the file and the reload is recorded as from a signal", async () => {
    const { child, adminPort } = await started([]);
    child.proc.kill("SIGHUP");
    const reloads = async () =>
      ((await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as { reloads: { source: string; ok: boolean }[] }).reloads;
    const [latest] = await eventually(async () => {
      const r = await reloads();
      return r.length > 0 ? r : null;
    }, "a reload to be recorded");
    expect(latest).toMatchObject({ ok: true, source: "signal" });
    child.proc.kill("SIGTERM");
    expect(await child.proc.exited).toBe(0);
  });
});

describe("flags: -flag, --flag and --flag=value alike", () => {
  /** A port nothing listens on right now (the child binds it next). */
  function freePort(): number {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    return port;
  }

  for (const spelling of [(p: number) => ["-port", String(p)], (p: number) => ["--port", String(p)], (p: number) => [`--port=${p}`]]) {
    test(`the bench echo server takes ${spelling(1).join(" ").replace("1", "N")}`, async () => {
      const port = freePort();
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../../bench/e2e/echo-server.ts"), ...spelling(port)], {
        stdout: "pipe",
        stderr: "pipe",
        stdin: "ignore",
      });
      children.push(proc);
      await new ChildOutput(proc).line(new RegExp(`listening 127\\.0\\.0\\.1:${port}\\n`));
      proc.kill("SIGTERM");
      await proc.exited;
    });
  }

  test("the gateway takes -demo as --demo", async () => {
    const cfg = configFile(["server:", '  listen_addr: "127.0.0.1:0"', "  health_check_port: -1"]);
    const child = spawnMain(["-config", cfg, "-demo"]);
    const [, port] = await child.line(/Clients can connect to tcp:\/\/127\.0\.0\.1:(\d+)/);
    const c = await GameClient.connect("127.0.0.1", Number(port));
    c.send(1, serverIdFor(200), text("demo?"));
    expect(str((await c.next()).body)).toBe("demo?");
    c.close();
    child.proc.kill("SIGTERM");
    expect(await child.proc.exited).toBe(0);
  });

  test("--workers 2 in demo mode: the banner says demo mode runs one process", async () => {
    const cfg = configFile(["server:", '  listen_addr: "127.0.0.1:0"', "  health_check_port: -1"]);
    const child = spawnMain(["-config", cfg, "-demo", "--workers", "2"]);
    await child.line(/Clients can connect to tcp:\/\/127\.0\.0\.1:(\d+)/);
    await child.line(/--workers 2 asked for, but demo mode always runs one process/);
    child.proc.kill("SIGTERM");
    expect(await child.proc.exited).toBe(0);
  });
});
