// The benchmark's nginx target (bench/e2e/nginx.ts) stays runnable: its generated config is
// accepted by the installed nginx (`nginx -t`), and nginx started on it, exactly as
// scripts/bench-e2e.ts starts it, carries a client's bytes to the benchmark's echo server and back.
// CI installs nginx-light and libnginx-mod-stream for this (.ci/run).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findNginx, nginxCommand, nginxConfig, type NginxInstall } from "../../bench/e2e/nginx.ts";
import { eventually } from "../support/eventually.ts";

const ECHO = resolve(import.meta.dir, "../../bench/e2e/echo-server.ts");

function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** The first line of a child's stdout. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk);
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0]!;
}

/** Sends `payload` on a fresh connection and resolves with the first `payload.length` bytes back. */
function roundTrip(port: number, payload: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolveBytes, reject) => {
    const got: number[] = [];
    const timer = setTimeout(() => reject(new Error(`no echo within 10 s (got ${got.length} of ${payload.length} bytes)`)), 10_000);
    void Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(payload);
        },
        data(s, chunk) {
          got.push(...chunk);
          if (got.length >= payload.length) {
            clearTimeout(timer);
            s.end();
            resolveBytes(Uint8Array.from(got.slice(0, payload.length)));
          }
        },
        connectError(_s, e) {
          clearTimeout(timer);
          reject(e);
        },
      },
    });
  });
}

describe("bench:e2e's nginx stream target", () => {
  let dir: string;
  let install: NginxInstall;
  let echo: Bun.Subprocess<"ignore", "pipe", "inherit">;
  let echoPort: number;
  const procs: Bun.Subprocess[] = [];

  beforeAll(async () => {
    const found = findNginx();
    if (!found.ok) throw new Error(`the nginx target cannot run here: ${found.why}`);
    install = found.install;
    dir = mkdtempSync(join(tmpdir(), "bench-nginx-"));
    echo = Bun.spawn([process.execPath, ECHO, "--host", "127.0.0.1", "--port", "0"], { stdout: "pipe", stderr: "inherit" });
    echoPort = Number(/^listening [\d.]+:(\d+)$/.exec(await firstLine(echo.stdout))![1]);
  });

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    echo?.kill("SIGKILL");
    await Promise.all([...procs.map((p) => p.exited), echo?.exited]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(port: number): string {
    const file = join(dir, `nginx-${port}.conf`);
    writeFileSync(file, nginxConfig({ install, dir, host: "127.0.0.1", port, echoPort, maxConnections: 1000 }));
    return file;
  }

  test("nginx -t accepts the generated config: one process, epoll, tcp_nodelay, no access log", () => {
    const file = writeConfig(freePort());
    const text = readFileSync(file, "utf8");
    for (const line of ["daemon off;", "master_process off;", "worker_processes 1;", "use epoll;", "tcp_nodelay on;", "access_log off;"]) expect(text).toContain(line);
    const r = Bun.spawnSync(nginxCommand(install, file, dir, true), { stdout: "pipe", stderr: "pipe" });
    expect({ exitCode: r.exitCode, stderr: r.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });
  });

  test("a config with an error is refused by nginx -t (the check above can fail)", () => {
    const file = join(dir, "broken.conf");
    writeFileSync(file, nginxConfig({ install, dir, host: "127.0.0.1", port: freePort(), echoPort, maxConnections: 1000 }).replace("proxy_pass echo;", "proxy_pass nowhere_upstream_that_is_missing;"));
    const r = Bun.spawnSync(nginxCommand(install, file, dir, true), { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).not.toBe(0);
  });

  test("started as the benchmark starts it, nginx proxies a framed round trip to the echo server and back", async () => {
    const port = freePort();
    const proc = Bun.spawn(nginxCommand(install, writeConfig(port), dir), { stdout: "ignore", stderr: "pipe" });
    procs.push(proc);
    // A client frame as the load tester sends it: 8-byte header, then the body.
    const frame = new Uint8Array(8 + 64);
    new DataView(frame.buffer).setUint16(0, 64, true);
    for (let i = 8; i < frame.length; i++) frame[i] = (i * 31 + 7) & 0xff;
    // Until nginx listens, the dial is refused: try again.
    const back = await eventually(() => roundTrip(port, frame).catch(() => null), "a round trip through nginx", 20_000);
    expect(back).toEqual(frame);
    // One process: the pid spawned is the one that proxies, the one the benchmark measures.
    expect(Number(readFileSync(join(dir, "nginx.pid"), "utf8").trim())).toBe(proc.pid);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });
});
