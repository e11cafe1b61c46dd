// The log pipeline of the shipped binary, as a log shipper reads it: every stdout line of a run is
// one JSON object in the reference gateway's OpenTelemetry keys, and every client connection,
// refused ones included, leaves exactly one access record.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { ACCESS_LOG_BODY, ChildOutput, eventually, str, text } from "../support/harness.ts";

const root = join(import.meta.dir, "../..");
const binary = join(root, "dist/game-gateway");
const dir = mkdtempSync(join(tmpdir(), "gw-logs-"));

/** The keys the reference puts on every application line, and those on every access record. */
const LINE_KEYS = ["timestamp", "severity_text", "body", "caller", "service.name", "service.namespace", "service.version"];
const ACCESS_KEYS = [
  "timestamp",
  "client.address",
  "status",
  "duration_ns",
  "duration_ms",
  "trace_id",
  "span_id",
  "session.id",
  "server.type",
  "world.id",
  "server.address",
  "network.io.receive",
  "network.io.send",
  "error.message",
  "severity_number",
];

let backend: DemoBackend;

beforeAll(async () => {
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr.toString()}`);
  backend = await DemoBackend.start({ port: 0, traceHeader: true });
}, 120_000);

afterAll(() => backend.stop());

async function roundTrip(c: GameClient, body: string): Promise<void> {
  c.send(1, serverIdFor(10), text(body));
  expect(str((await c.next()).body)).toBe(body);
}

describe("dist/game-gateway logs", () => {
  test("every stdout line is an OpenTelemetry JSON record; each connection has one access record with the reference's keys", async () => {
    const cfg = join(dir, "gw.yaml");
    writeFileSync(
      cfg,
      [
        "server:",
        '  listen_addr: "127.0.0.1:0"',
        // Accepted but not acted on: the startup warning that names it must reach a stdout pipeline.
        "  metrics_port: 9091",
        'admin: { listen_addr: "127.0.0.1:0" }',
        "graceful_shutdown_timeout: 2s",
        // Two at once from one address: the third connection is refused.
        "security: { connection_rate_limit: 1000, max_connections_per_ip: 2, max_message_size: 1024 }",
        "tracing: { enable_trace_propagation: true }",
        "routing:",
        "  rules:",
        `    - { server_type: 10, endpoints: ["127.0.0.1:${backend.port}"] }`,
      ].join("\n"),
    );
    // An unknown LOG_LEVEL means info, as in the reference: the gateway starts and says so in a WARN record.
    const env = { PATH: process.env.PATH ?? "", POD_NAMESPACE: "games", LOG_LEVEL: "verbose" };
    const proc = Bun.spawn([binary, "--config", cfg], { cwd: dir, env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const child = new ChildOutput(proc);
    try {
      const listening = await child.logLine("gateway listening");
      const port = Number(String(listening.listen).split(":")[1]);

      const a = await GameClient.connect("127.0.0.1", port);
      const b = await GameClient.connect("127.0.0.1", port);
      await roundTrip(a, "from a");
      await roundTrip(a, "again a");
      await roundTrip(b, "from b");
      // Refused at accept: the reset may come before or after the connect completes.
      const refused = await GameClient.connect("127.0.0.1", port).catch(() => null);
      await refused?.closed;
      b.close();
      await b.closed;
      // b's per-IP slot is free once the gateway has seen it close.
      const status = async (): Promise<{ sessions: number }> => (await fetch(`http://127.0.0.1:${listening.admin_port}/api/status`)).json() as Promise<{ sessions: number }>;
      await eventually(async () => (await status()).sessions === 1, "b's session to end");
      const malformed = await GameClient.connect("127.0.0.1", port);
      malformed.sendRaw(encodeClientFrame(1, serverIdFor(10), new Uint8Array(1025)));
      await malformed.closed;
      a.close();
      await a.closed;
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await child.ended;
    } finally {
      proc.kill("SIGKILL");
    }

    const raw = child.stdout.split("\n");
    expect(raw.pop()).toBe(""); // ends with a newline: no partial last line
    const lines = raw.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`stdout line is not JSON: ${l}`);
      }
    });
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    for (const [i, line] of lines.entries()) {
      for (const key of LINE_KEYS) expect({ line: i, key, has: key in line }).toEqual({ line: i, key, has: true });
      expect(["DEBUG", "INFO", "WARN", "ERROR"]).toContain(line.severity_text as string);
      expect(line).toMatchObject({ "service.name": "game-gateway", "service.namespace": "games", "service.version": pkg.version });
      // Unix nanoseconds as a JSON integer: read from the text, since it is past 2^53.
      const ns = BigInt(/"timestamp":(\d+)[,}]/.exec(raw[i]!)![1]!);
      expect(ns).toBeGreaterThan(nowNs - 600_000_000_000n);
      expect(ns).toBeLessThanOrEqual(nowNs);
    }
    expect(lines.some((l) => l.severity_text === "INFO" && l.body === "gateway listening")).toBe(true);
    // Startup config warnings are the records a reload writes, not text on stderr.
    const warnings = lines.filter((l) => l.body === "config warning");
    expect(warnings.every((l) => l.severity_text === "WARN")).toBe(true);
    expect(warnings.map((l) => l.warning)).toEqual([
      'env LOG_LEVEL: expected one of debug, info, warn, error, silent, got "verbose"; logging at info',
      expect.stringMatching(/^config keys accepted but not used by this version: server\.metrics_port /),
    ]);
    expect(child.stderr).toBe("");

    const access = lines.filter((l) => l.body === ACCESS_LOG_BODY);
    for (const r of access) for (const key of ACCESS_KEYS) expect({ key, has: key in r }).toEqual({ key, has: true });
    expect(access.map((r) => r.status).sort()).toEqual(["error", "rejected", "success", "success"]);
    expect(access.every((r) => r.severity_number === 9 && r["client.address"] === "127.0.0.1")).toBe(true);

    const served = access.filter((r) => r.status === "success");
    const frameBytes = (body: string): number => 8 + body.length;
    expect(served.map((r) => r["network.io.receive"]).sort()).toEqual(
      [frameBytes("from a") + frameBytes("again a"), frameBytes("from b")].sort(),
    );
    for (const r of served) {
      expect(r).toMatchObject({ "server.type": 10, "world.id": 0, "server.address": `127.0.0.1:${backend.port}`, "error.message": "", reason: "client_closed" });
      expect(r["network.io.send"]).toBe(r["network.io.receive"]); // the demo backend echoes
      expect(r.trace_id).toMatch(/^[0-9a-f]{32}$/);
      expect(BigInt(r["session.id"] as string)).toBeGreaterThan(0n);
      expect(r.duration_ns).toBe(Math.round((r.duration_ms as number) * 1e6));
    }
    expect(new Set(served.map((r) => r.trace_id)).size).toBe(2);

    const [rejected] = access.filter((r) => r.status === "rejected");
    expect(rejected).toMatchObject({ refusal: "per_ip_limit", "session.id": "", "server.address": "", "network.io.receive": 0 });
    expect(rejected!["error.message"]).toContain("per_ip_limit");

    const [failed] = access.filter((r) => r.status === "error");
    expect(failed).toMatchObject({ reason: "malformed_frame", "session.id": "", "error.message": "client frame broke the wire contract" });
  });
});
