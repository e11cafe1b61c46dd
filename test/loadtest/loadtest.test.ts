// The load tester end to end: against a real gateway and demo backend on loopback, against a
// port where nothing listens, and against small misbehaving echo servers. No timing assertions:
// counts and invariants only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { runLoadtest } from "../../src/loadtest/main.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { parseLoadtestArgs } from "../../src/loadtest/options.ts";
import { rule, startGateway, type TestGateway } from "../support/harness.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await runLoadtest(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

// The fields the assertions read from --json.
interface Json {
  connections: { attempted: number; ok: number; failed: number; closedByPeer: number };
  messages: { sent: number; received: number; timedOut: number; lost: number; late: number; skipped: number };
  bytes: { sent: number; received: number };
  latencyMs: { count: number; p50: number; p99: number; max: number };
  pacing: { lateMs: { p50: number; p99: number; max: number }; fromReplies: number; fromTimer: number } | null;
  errors: Record<"connect_failed" | "connect_timeout" | "closed_by_peer" | "reply_mismatch" | "reply_timeout" | "send_failed" | "worker_failed" | "total", number>;
  errorRate: number;
  connectionErrorRate: number;
  passed: boolean;
  options: { messageSize: number; sourceAddresses: number; processes: number };
}

async function runJson(args: string[]): Promise<{ r: Run; j: Json }> {
  const r = await run([...args, "--json"]);
  let j: Json;
  try {
    j = JSON.parse(r.stdout) as Json;
  } catch {
    throw new Error(`--json output did not parse (exit ${r.code}):\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  }
  return { r, j };
}

/**
 * The accounting every run must keep: each frame sent is answered (received, mismatched ones
 * included), timed out, or lost with its connection; nothing is counted twice.
 */
function expectBalanced(j: Json): void {
  expect(j.messages.sent).toBe(j.messages.received + j.messages.timedOut + j.messages.lost);
  expect(j.connections.attempted).toBe(j.connections.ok + j.connections.failed);
}

/** A healthy run: everything sent came back intact, and nothing failed. */
function expectClean(r: Run, j: Json, connections: number): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}\n${r.stdout}\n--- stderr:\n${r.stderr}`);
  expect(j.passed).toBe(true);
  expect(j.errors.total).toBe(0);
  expect(j.errorRate).toBe(0);
  expect(j.connectionErrorRate).toBe(0);
  expect(j.connections.attempted).toBe(connections);
  expect(j.connections.ok).toBe(connections);
  expect(j.connections.closedByPeer).toBe(0);
  expect(j.messages.sent).toBeGreaterThan(0);
  // The drain waits for every reply before closing, so nothing is left in flight at the end.
  expect(j.messages.received).toBe(j.messages.sent);
  expect(j.messages.timedOut).toBe(0);
  expect(j.messages.lost).toBe(0);
  // Every reply matched byte for byte, so each one has a latency.
  expect(j.latencyMs.count).toBe(j.messages.received);
  expect(j.latencyMs.p50).toBeGreaterThan(0);
  expect(j.latencyMs.max).toBeGreaterThanOrEqual(j.latencyMs.p99);
  expect(j.bytes.received).toBe(j.bytes.sent);
  expect(j.bytes.sent).toBe(j.messages.sent * (8 + j.options.messageSize));
  expectBalanced(j);
}

/** Open loop: every frame was sent by a pacing call (from a reply or from the timer), each call's lateness recorded. */
function expectPacing(j: Json): void {
  const p = j.pacing!;
  expect(p).not.toBeNull();
  expect(p.fromReplies + p.fromTimer).toBe(j.messages.sent);
  expect(p.lateMs.p50).toBeGreaterThanOrEqual(0);
  expect(p.lateMs.p99).toBeGreaterThanOrEqual(p.lateMs.p50);
  expect(p.lateMs.max).toBeGreaterThanOrEqual(p.lateMs.p99);
}

/** A port with nothing listening on it (bound, then released). */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

describe("loadtest --ws: WebSocket clients round-tripping through the gateway", () => {
  let backend: DemoBackend;
  let gw: TestGateway;

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0 });
    gw = startGateway({ server: { ws_listen_addr: "127.0.0.1:0" }, routing: { rules: [rule(10, [`127.0.0.1:${backend.port}`])] } });
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
  });

  /** Connect messages the backend saw from now on, as the gateway announced them. */
  function connectsSince(before: number): { protocol?: string }[] {
    return backend.events
      .slice(before)
      .filter((e) => e.opcode === OpCode.Connect)
      .map((e) => e.json as { protocol?: string });
  }

  for (const [name, port, path] of [
    ["the dedicated listener", () => gw.gateway.wsPort, "/ws"],
    ["the TCP client port (sniffed)", () => gw.gateway.port, "/game"],
  ] as const) {
    test(`${name}: closed loop, 20 connections, 8 in flight, 100-byte bodies: every frame echoed intact`, async () => {
      const before = backend.events.length;
      const { r, j } = await runJson([
        "-host", "127.0.0.1", "-port", String(port()), "--ws", "--ws-path", path,
        "-connections", "20", "-duration", "1s", "-rate", "0", "--in-flight", "8", "-message-size", "100",
      ]);
      expectClean(r, j, 20);
      // They really were WebSocket clients: the gateway announced each with protocol "ws".
      const connects = connectsSince(before);
      expect(connects.length).toBe(20);
      expect(connects.every((c) => c.protocol === "ws")).toBe(true);
    });
  }

  test("the human report names the WebSocket URL", async () => {
    const r = await run(["-host", "127.0.0.1", "-port", String(gw.gateway.wsPort), "--ws", "-connections", "2", "-duration", "200ms", "-rate", "0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`2 WebSocket connections to ws://127.0.0.1:${gw.gateway.wsPort}/ws`);
  });

  test("a path the listener does not serve: every connection fails, exit 1", async () => {
    const { r, j } = await runJson(["-host", "127.0.0.1", "-port", String(gw.gateway.wsPort), "--ws", "--ws-path", "/nope", "-connections", "3", "-duration", "200ms"]);
    expect(r.code).toBe(1);
    expect(j.connections.failed).toBe(3);
    expect(j.connections.ok).toBe(0);
  });
});

describe("loadtest against a gateway and the demo backend", () => {
  let backend: DemoBackend;
  let gw: TestGateway;
  let target: string[];

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0 });
    gw = startGateway({ routing: { rules: [rule(10, [`127.0.0.1:${backend.port}`])] } });
    target = ["-host", "127.0.0.1", "-port", String(gw.gateway.port)];
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
  });

  test("closed loop, 20 connections for 1s: exit 0, every frame echoed intact, --json parses", async () => {
    const { r, j } = await runJson([...target, "-connections", "20", "-duration", "1s", "-rate", "0"]);
    expectClean(r, j, 20);
    // Nothing is paced in a closed loop.
    expect(j.pacing).toBeNull();
    // The default body size carries the payload as it is: no warning on a plain run.
    expect(j.options.messageSize).toBe(16);
    expect(r.stderr).not.toContain("-message-size");
  });

  test("closed loop with 8 in flight per connection and 100-byte bodies", async () => {
    const { r, j } = await runJson([
      ...target,
      "--connections=20",
      "-duration=1s",
      "-rate=0",
      "--in-flight",
      "8",
      "-message-size",
      "100",
    ]);
    expectClean(r, j, 20);
    expect(j.options.messageSize).toBe(100);
    expect(r.stderr).toBe("");
  });

  test("open loop, 20 connections at 50 msgs/s for 1s: the pacing is reported", async () => {
    const { r, j } = await runJson([...target, "-connections", "20", "-duration", "1s", "-rate", "50", "-message-size", "32"]);
    expectClean(r, j, 20);
    expectPacing(j);
  });

  test("open loop over two worker processes: the workers' pacing is merged", async () => {
    const { r, j } = await runJson([...target, "-connections", "20", "-duration", "1s", "-rate", "50", "--processes", "2", "-message-size", "32"]);
    expectClean(r, j, 20);
    expect(j.options.processes).toBe(2);
    // Each worker counts only its own sends: the sum covers both only if the counts were added.
    expectPacing(j);
  });

  test("the table prints the pacing line in an open loop, not in a closed one", async () => {
    const open = await run([...target, "-connections", "5", "-duration", "300ms", "-rate", "50", "-message-size", "16"]);
    expect(open.code).toBe(0);
    expect(open.stdout).toMatch(/^pacing: oldest due send [\d.]+ ms late at p50, [\d.]+ ms at p99, [\d.]+ ms at most; sends paced from replies [\d,]+, from the timer [\d,]+$/m);
    const closed = await run([...target, "-connections", "5", "-duration", "300ms", "-rate", "0", "-message-size", "16"]);
    expect(closed.code).toBe(0);
    expect(closed.stdout).not.toContain("pacing:");
  });

  test("ramped connections", async () => {
    const { r, j } = await runJson([...target, "-connections", "20", "-duration", "1s", "-rate", "0", "--ramp", "100", "-message-size", "16"]);
    expectClean(r, j, 20);
  });

  test("two worker processes: results merged", async () => {
    const { r, j } = await runJson([...target, "-connections", "20", "-duration", "1s", "-rate", "0", "--processes", "2", "-message-size", "16"]);
    expectClean(r, j, 20);
    expect(j.options.processes).toBe(2);
  });

  test("the table: sections, percentiles, errors by kind, PASS", async () => {
    const r = await run([...target, "-connections", "5", "-duration", "300ms", "-rate", "0", "-message-size", "16"]);
    expect(r.code).toBe(0);
    for (const s of ["connections", "messages", "throughput", "latency (ms)", "p99.9", "errors", "connect_failed", "reply_mismatch", "result: PASS"]) {
      expect(r.stdout).toContain(s);
    }
    expect(r.stdout).not.toContain("worker_failed");
  });

  test("a route the gateway does not have: every connection closed by the peer, exit 1", async () => {
    const { r, j } = await runJson([...target, "-connections", "5", "-duration", "2s", "-rate", "0", "-server-type", "99"]);
    expect(r.code).toBe(1);
    expect(j.passed).toBe(false);
    expect(j.connections.ok).toBe(5);
    expect(j.errors.closed_by_peer).toBe(5);
    expect(j.messages.received).toBe(0);
    expect(j.messages.lost).toBe(j.messages.sent);
    expectBalanced(j);
  });
});

describe("loadtest against a gateway with its default per-IP admission limits", () => {
  let backend: DemoBackend;
  let gw: TestGateway;
  let target: string[];

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0 });
    gw = startGateway({
      // The shipped defaults, which the harness raises for other tests.
      security: { max_connections_per_ip: 10, connection_rate_limit: 5 },
      routing: { rules: [rule(10, [`127.0.0.1:${backend.port}`])] },
    });
    target = ["-host", "127.0.0.1", "-port", String(gw.gateway.port), "-duration", "500ms", "-rate", "0", "-message-size", "16"];
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
  });

  test("auto spreads 30 connections over 6 source addresses: every one admitted", async () => {
    const { r, j } = await runJson([...target, "-connections", "30"]);
    expectClean(r, j, 30);
    expect(j.options.sourceAddresses).toBe(6);
  });

  test("the same from one source address: the gateway refuses most of them, exit 1", async () => {
    // At most 10 at once per address: while the admitted ones stay open, every further dial is
    // refused, however slowly a loaded machine makes them (the token bucket refills meanwhile, the
    // concurrency bound does not). 3 s keeps them open well past the last of the 30 dials.
    const { r, j } = await runJson([...target, "-connections", "30", "--source-addresses", "1", "-duration", "3s"]);
    expect(r.code).toBe(1);
    expect(j.options.sourceAddresses).toBe(1);
    // Refused after accept: seen as closed by the peer. Against the thousands of frames the
    // admitted ones sent this is a tiny per-message rate; the connection error rate fails it.
    expect(j.errors.closed_by_peer).toBeGreaterThanOrEqual(20);
    expect(j.connectionErrorRate).toBe(j.errors.closed_by_peer / 30);
    expect(j.passed).toBe(false);
    expectBalanced(j);
  });
});

describe("loadtest failures", () => {
  test("nothing listening: connect_failed for every connection, exit 1", async () => {
    const port = freePort();
    const { r, j } = await runJson(["-host", "127.0.0.1", "-port", String(port), "-connections", "7", "-duration", "2s"]);
    expect(r.code).toBe(1);
    expect(j.passed).toBe(false);
    expect(j.errors.connect_failed).toBe(7);
    expect(j.errors.total).toBe(7);
    expect(j.connections.failed).toBe(7);
    expect(j.connections.ok).toBe(0);
    expect(j.messages.sent).toBe(0);
    // Nothing could be sent at all: the rate is 100%, not a division by zero.
    expect(j.errorRate).toBe(1);
  });

  test("nothing listening, two worker processes: failures merged", async () => {
    const port = freePort();
    const { r, j } = await runJson(["-host", "127.0.0.1", "-port", String(port), "-connections", "6", "-duration", "2s", "--processes", "2"]);
    expect(r.code).toBe(1);
    expect(j.errors.connect_failed).toBe(6);
    expect(j.errors.worker_failed).toBe(0);
  });

  describe("an echo server that flips one body byte", () => {
    const MESSAGE_SIZE = 32;
    const FRAME = 8 + MESSAGE_SIZE;
    let server: TCPSocketListener<{ at: number }>;

    beforeAll(() => {
      // Echoes the stream with the last byte of every frame flipped; frames are all FRAME bytes,
      // so a byte's position in the stream says where it sits in its frame, however chunks split.
      server = Bun.listen<{ at: number }>({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          binaryType: "uint8array",
          open(s: Socket<{ at: number }>) {
            s.data = { at: 0 };
          },
          data(s: Socket<{ at: number }>, chunk: Uint8Array) {
            const out = Uint8Array.from(chunk);
            for (let i = 0; i < out.length; i++) {
              if ((s.data.at + i) % FRAME === FRAME - 1) out[i]! ^= 0x5a;
            }
            s.data.at += chunk.length;
            s.write(out);
          },
        },
      });
    });

    afterAll(() => server.stop(true));

    test("every reply is reply_mismatch, none is timed, exit 1", async () => {
      const { r, j } = await runJson([
        "-host",
        "127.0.0.1",
        "-port",
        String(server.port),
        "-connections",
        "3",
        "-duration",
        "300ms",
        "-rate",
        "0",
        "-message-size",
        String(MESSAGE_SIZE),
      ]);
      expect(r.code).toBe(1);
      expect(j.passed).toBe(false);
      expect(j.messages.received).toBeGreaterThan(0);
      expect(j.errors.reply_mismatch).toBe(j.messages.received);
      expect(j.latencyMs.count).toBe(0);
      expect(j.errors.reply_timeout).toBe(0);
      expectBalanced(j);
    });

    test("-verbose names what differed", async () => {
      const r = await run([
        "-host",
        "127.0.0.1",
        "-port",
        String(server.port),
        "-connections",
        "1",
        "-duration",
        "100ms",
        "-rate",
        "0",
        "-message-size",
        String(MESSAGE_SIZE),
        "-verbose",
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("reply differs in body fill");
    });
  });

  test("a server that never answers: reply_timeout after --reply-timeout, exit 1", async () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const { r, j } = await runJson([
        "-host",
        "127.0.0.1",
        "-port",
        String(server.port),
        "-connections",
        "4",
        "-duration",
        "1s",
        "-rate",
        "0",
        "--in-flight",
        "2",
        "--reply-timeout",
        "1500ms",
      ]);
      expect(r.code).toBe(1);
      expect(j.messages.received).toBe(0);
      // Two in flight on each connection, each timed out once; sending stopped before a refill,
      // since no reply can time out before the run ends (timeout > duration). The connections
      // must open within the run: 1 s leaves a loaded machine room (200 ms did not).
      expect(j.errors.reply_timeout).toBe(j.messages.sent);
      expect(j.messages.sent).toBe(8);
      expectBalanced(j);
    } finally {
      server.stop(true);
    }
  });
});

test("a server that stops reading: send_failed once the bounded write queue is full, exit 1", async () => {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.pause();
      },
      data() {},
    },
  });
  try {
    // Up to 3,000 frames of 64 KiB: far more than the socket buffers and the 16 MiB queue. Three
    // seconds, not one: beside stress-ng the sender got too few slots in one second to fill them.
    const { r, j } = await runJson([
      "-host",
      "127.0.0.1",
      "-port",
      String(server.port),
      "-connections",
      "1",
      "-duration",
      "3s",
      "-rate",
      "1000",
      "-message-size",
      "65535",
      "--reply-timeout",
      "300ms",
    ]);
    expect(r.code).toBe(1);
    expect(j.errors.send_failed).toBeGreaterThan(0);
    expect(j.messages.received).toBe(0);
    expect(j.errors.reply_timeout).toBe(j.messages.sent);
    expectBalanced(j);
  } finally {
    server.stop(true);
  }
});

describe("loadtest flags", () => {
  test("usage errors exit 2 and name the flag", async () => {
    const bad = await run(["-connections", "0"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("-connections");
    const unknown = await run(["--nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown flag "--nope"');
    const duration = await run(["-duration", "30"]);
    expect(duration.code).toBe(2);
    expect(duration.stderr).toContain("Go duration");
  });

  test("--ws and --ws-path parse; the path defaults to server.ws_path's /ws", () => {
    const plain = parseLoadtestArgs(["--ws"]);
    expect(plain.kind === "run" && plain.options).toMatchObject({ ws: true, wsPath: "/ws" });
    const custom = parseLoadtestArgs(["-ws", "-ws-path", "/game"]);
    expect(custom.kind === "run" && custom.options).toMatchObject({ ws: true, wsPath: "/game" });
  });

  test("--help prints the usage and exits 0", async () => {
    const r = await run(["-h"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("-message-size");
  });

  test("the reference's defaults, in one-dash, two-dash and =value forms", () => {
    const d = parseLoadtestArgs([]);
    if (d.kind !== "run") throw new Error("expected a run");
    expect(d.options).toMatchObject({
      host: "localhost",
      port: 8080,
      connections: 100,
      durationMs: 30_000,
      rate: 10,
      messageSize: 16,
      serverType: 10,
      worldId: 0,
      instId: 0,
      dialTimeoutMs: 5000,
      verbose: false,
      ramp: 0,
      inFlight: 1,
      json: false,
      maxErrorRate: 0.001,
      processes: 1,
    });
    const p = parseLoadtestArgs(["-verbose", "-port=9000", "--duration", "1m30s", "-timeout=250ms", "--rate", "0.5", "--json=false"]);
    if (p.kind !== "run") throw new Error("expected a run");
    expect(p.options).toMatchObject({ verbose: true, port: 9000, durationMs: 90_000, dialTimeoutMs: 250, rate: 0.5, json: false });
    // A boolean flag never takes the next argument as its value (Go's flag package).
    expect(() => parseLoadtestArgs(["-verbose", "true"])).toThrow('unexpected argument "true"');
  });
});
