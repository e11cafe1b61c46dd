// The admin port under hostile or careless use: a cap on its connections, an idle close, its own
// listen address, and the open-file limit it shares with game clients.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";

const T = 10;
const MAIN = join(import.meta.dir, "../../src/cli/main.ts");
const scope = new TestScope();
afterEach(scope.release);

/** A raw TCP connection that never sends a request; records what it receives and when it is closed. */
interface IdleConn {
  received: string;
  closed: boolean;
  write(s: string): void;
  end(): void;
}

async function idleConnection(host: string, port: number): Promise<IdleConn> {
  const conn: IdleConn = { received: "", closed: false, write: () => {}, end: () => {} };
  const socket = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(_s, chunk) {
        conn.received += Buffer.from(chunk).toString("latin1");
      },
      close() {
        conn.closed = true;
      },
      error() {},
    },
  });
  conn.write = (s) => void socket.write(s);
  conn.end = () => socket.end();
  scope.defer(() => void socket.end());
  return conn;
}

async function roundTrip(c: GameClient, body: string): Promise<string> {
  c.send(1, serverIdFor(T), text(body));
  return str((await c.next()).body);
}

describe("admin port", () => {
  test("past admin.max_connections, idle admin connections make room: /health answers and game clients are unaffected", async () => {
    const be = await scope.backend();
    const gw = scope.gateway({
      admin: { listen_addr: "127.0.0.1:0", max_connections: 4, idle_timeout: "60s" },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const port = gw.gateway.adminPort;
    const conns: IdleConn[] = [];
    for (let i = 0; i < 40; i++) conns.push(await idleConnection("127.0.0.1", port));
    // Four slots; each new connection takes the slot of the oldest one that sent no request.
    await eventually(() => conns.filter((c) => c.closed).length === 36, "the 36 oldest idle connections to be closed");
    expect(conns.slice(36).every((c) => !c.closed)).toBe(true);
    expect(conns.every((c) => c.received === "")).toBe(true);
    // Before, the four idle ones held every slot and /health answered 503 until they timed out.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);

    const client = await gw.connect();
    expect(await roundTrip(client, "still served")).toBe("still served");
    client.close();
  });

  test("a connection that sends no request is closed after admin.idle_timeout", async () => {
    const gw = scope.gateway({ admin: { listen_addr: "127.0.0.1:0", idle_timeout: "300ms" } });
    const silent = await idleConnection("127.0.0.1", gw.gateway.adminPort);
    // A request that never completes (slowloris) is no better than none.
    const partial = await idleConnection("127.0.0.1", gw.gateway.adminPort);
    partial.write("GET /health HTTP/1.1\r\n");
    // Bun.serve closed idle connections after 10 s; this waits at most 8.
    await eventually(() => silent.closed && partial.closed, "the silent and the partial admin connections to be closed", 8_000);
    expect(silent.received).toBe("");
    expect(partial.received).toBe("");
    // Requests still work, each on its own connection.
    expect(await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/health`)).json()).toEqual({ status: "ok" });
    const head = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/health`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/health`, { method: "POST" })).status).toBe(405);
  });

  test("admin.listen_addr binds only the address given, and wins over server.health_check_port", async () => {
    // 127.0.0.2 is loopback too on Linux, but a different address: a socket bound to it is not on 127.0.0.1.
    const gw = scope.gateway({ server: { health_check_port: -1 }, admin: { listen_addr: "127.0.0.2:0" } });
    const port = gw.gateway.adminPort;
    expect(port).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.2:${port}/health`)).json()).toEqual({ status: "ok" });
    expect(await fetch(`http://127.0.0.1:${port}/health`).then(() => "connected", () => "refused")).toBe("refused");
  });
});

describe("admin port and the open-file limit (real processes)", () => {
  const procs: Subprocess[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill("SIGKILL");
  });

  /** Starts `bun main.ts --config` under `ulimit` settings; resolves with the log lines seen until `until` matches. */
  async function startUnderLimit(ulimit: string, yaml: string, until: RegExp): Promise<{ proc: Subprocess<"ignore", "pipe", "pipe">; lines: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), "gw-fd-"));
    const file = join(dir, "gw.yaml");
    writeFileSync(file, yaml);
    const proc = Bun.spawn(["sh", "-c", `${ulimit} && exec "$0" "$1" --config "$2"`, process.execPath, MAIN, file], {
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    procs.push(proc);
    const lines: string[] = [];
    const reader = proc.stdout.getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`gateway exited; stderr:\n${await new Response(proc.stderr).text()}\nstdout:\n${lines.join("\n")}`);
      buf += new TextDecoder().decode(value);
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
      if (lines.some((l) => until.test(l))) break;
    }
    reader.releaseLock();
    return { proc, lines };
  }

  const base = (backendPort: number, extra: string): string =>
    [
      "server:",
      '  listen_addr: "127.0.0.1:0"',
      "  health_check_port: -1",
      "security: { max_connections_per_ip: 100000, connection_rate_limit: 100000 }",
      "log: { access_log: off }",
      extra,
      "routing:",
      "  rules:",
      `    - { server_type: ${T}, endpoints: ["127.0.0.1:${backendPort}"] }`,
    ].join("\n");

  test("2,000 idle admin connections against a 256-descriptor process: game clients and /health keep working", async () => {
    const be = await scope.backend();
    const yaml = base(be.port, 'admin: { listen_addr: "127.0.0.1:0", max_connections: 16, idle_timeout: 60s }\nconnection_pool: { max_connections: 100 }');
    const { lines } = await startUnderLimit("ulimit -n 256", yaml, /"gateway listening"/);
    const listening = JSON.parse(lines.find((l) => l.includes('"gateway listening"'))!) as { listen: string; admin_port: number };
    const gamePort = Number(listening.listen.split(":")[1]);
    const conns: IdleConn[] = [];
    for (let i = 0; i < 2000; i++) conns.push(await idleConnection("127.0.0.1", listening.admin_port));
    await eventually(() => conns.filter((c) => c.closed).length === 2000 - 16, "the connections over the admin cap to be closed");
    expect((await fetch(`http://127.0.0.1:${listening.admin_port}/health`)).status).toBe(200);
    // Without the cap these took all 256 descriptors: no game client could connect, /health timed out.
    const clients = await Promise.all(Array.from({ length: 20 }, () => GameClient.connect("127.0.0.1", gamePort)));
    for (const [i, c] of clients.entries()) expect(await roundTrip(c, `client ${i}`)).toBe(`client ${i}`);
    for (const c of conns) c.end();
    for (const c of clients) c.close();
  });

  test("the soft limit is raised to the hard limit, and a config that cannot fit in it is warned about", async () => {
    const be = await scope.backend();
    const yaml = base(be.port, 'admin: { listen_addr: "127.0.0.1:0", max_connections: 64 }\nconnection_pool: { max_connections: 1000 }');
    const { lines } = await startUnderLimit("ulimit -Sn 128 && ulimit -Hn 512", yaml, /"gateway listening"/);
    const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.body).startsWith("open-file limit too low"));
    expect(warning).toMatchObject({
      severity_text: "WARN",
      fd_limit: 512, // raised from the soft 128
      fd_hard_limit: 512,
      max_connections: 1000,
      backend_connections: 2, // one endpoint x backend.connections_per_endpoint
      admin_max_connections: 64,
      fds_needed: 1000 + 2 + 64 + 64,
    });
  });
});
