// `npm run dev`: the gateway with its embedded demo backend under `bun --hot`, on a copy of the
// project, while a test edits the source as a developer would.
import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoMessage } from "../../src/demo/demo-backend.ts";
import { ChildOutput, eventually, str } from "../support/harness.ts";

const root = join(import.meta.dir, "../..");
const children: Subprocess[] = [];
const copies: string[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the project a test may edit: src, the browser example demo mode serves, and package.json copied, node_modules linked. */
function projectCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-hot-"));
  copies.push(dir);
  cpSync(join(root, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(root, "examples"), join(dir, "examples"), { recursive: true });
  for (const f of ["package.json", "tsconfig.json", "bunfig.toml"]) cpSync(join(root, f), join(dir, f));
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** Listening TCP sockets the process holds: LISTEN rows of /proc/net/tcp{,6} whose inode is one of its fds. */
function listeningSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed between readdir and readlink
    }
  }
  let n = 0;
  for (const table of ["tcp", "tcp6"]) {
    for (const row of readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols[3] === "0A" && inodes.has(cols[9]!)) n++; // 0A: TCP_LISTEN
    }
  }
  return n;
}

async function join1(c: GameClient): Promise<string> {
  c.send(DemoMessage.Join, serverIdFor(10), "lobby");
  return str((await c.next()).body);
}

/** A client that connects after the edit; its reply says which code serves new sessions. */
async function newClientReply(port: number): Promise<string> {
  const c = await GameClient.connect("127.0.0.1", port);
  try {
    return await join1(c);
  } finally {
    c.close();
  }
}

test.skipIf(process.platform !== "linux")(
  "saving a file reloads the code in place: new clients get the new code, old ones stay connected, no listener is added",
  async () => {
    const dir = projectCopy();
    const cfg = join(dir, "dev.yaml");
    writeFileSync(cfg, ["server:", '  listen_addr: "127.0.0.1:0"', 'admin: { listen_addr: "127.0.0.1:0" }', "log: { level: info }"].join("\n") + "\n");
    const proc = Bun.spawn([process.execPath, "--hot", "src/cli/main.ts", "--config", cfg, "--demo"], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    children.push(proc);
    const child = new ChildOutput(proc);
    const [, port, adminPort] = await child.line(/Clients can connect to tcp:\/\/127\.0\.0\.1:(\d+)  \(admin: http:\/\/127\.0\.0\.1:(\d+)\//);
    const listening = listeningSockets(proc.pid);
    expect(listening).toBe(3); // clients, admin, embedded demo backend

    const old = await GameClient.connect("127.0.0.1", Number(port));
    expect(await join1(old)).toBe("joined lobby");

    const source = join(dir, "src/demo/demo-connection.ts");
    const original = readFileSync(source, "utf8");
    expect(original).toContain("`joined ${room}`");
    for (const [n, word] of ["entered", "welcome to"].entries()) {
      writeFileSync(source, original.replace("`joined ${room}`", `\`${word} \${room}\``));
      await eventually(async () => (await newClientReply(Number(port))) === `${word} lobby`, `reload ${n + 1}: a new client to get "${word} lobby"`, 30_000);
      expect(listeningSockets(proc.pid)).toBe(listening);
    }

    // The old client's session runs on the code it started with, over its old backend connection.
    expect(old.isClosed).toBe(false);
    expect(await join1(old)).toBe("joined lobby");
    // The admin port was kept too, and serves the new code's status.
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as { ready: boolean };
    expect(status.ready).toBe(true);
    expect(child.stderr).not.toContain("EADDRINUSE");

    // The gateway of the first edit had only short-lived clients: it has closed down by now.
    const count = (body: string) => child.logRecords(body).length;
    const stops = () => count("gateway stopped");
    await eventually(() => count("previous code's gateway retired: its sessions have ended") === 1, "the emptied retired gateway to close its backends");
    expect(stops()).toBe(0); // a code reload does not read as the process stopping

    // A graceful stop drains the old code's sessions and the new code's alike. Signal handlers
    // were installed once: one SIGTERM is a graceful stop (a second handler would force exit 1).
    const fresh = await GameClient.connect("127.0.0.1", Number(port));
    expect(await join1(fresh)).toBe("welcome to lobby");
    proc.kill("SIGTERM");
    old.close();
    await eventually(() => stops() === 1, "the retired gateway still serving `old` to stop");
    // Its demo backend stopped too, without closing the listener's other connections.
    expect(await join1(fresh)).toBe("welcome to lobby");
    fresh.close();
    expect(await proc.exited).toBe(0);
  },
  60_000,
);
