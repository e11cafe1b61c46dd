// Microbenchmarks of the gateway's per-message and per-session hot paths, named after the figures
// of the performance guide (see bench/README.md for what each name measures here).
//
//   bun bench/micro.bench.ts                    mitata's table
//   bun bench/micro.bench.ts --json out.json    also writes {name: ns_per_op} (the median sample)
//   bun bench/micro.bench.ts --filter Session   only benchmarks whose name matches the regex

import { bench, do_not_optimize, group, run } from "mitata";

// Measure what ships: the release build sets NODE_ENV=production, which drops the development
// invariant checks; they read it at call time, so setting it here (after the imports) is enough.
process.env.NODE_ENV = "production";
import { BufferPool } from "../src/net/buffer-pool.ts";
import { FrameReader, type FrameHandler } from "../src/net/frame-reader.ts";
import { RingBuffer } from "../src/net/ring-buffer.ts";
import {
  CLIENT_HEADER_SIZE,
  MAX_CLIENT_BODY,
  encodeClientFrame,
  makeServerId,
  readClientBodyLength,
  readClientMessageId,
  readClientServerId,
  serverIdInst,
  serverIdType,
  serverIdWorld,
} from "../src/protocol/client-frame.ts";
import { ClientFrameLayout } from "../src/protocol/layouts.ts";
import { GATE_HEADER_TRACE_SIZE, SERVER_HEADER_SIZE, writeTrans, writeTransWithTrace } from "../src/protocol/server-frame.ts";
import type { ClientViolation } from "../src/protocol/violations.ts";
import type { RouteStrategy } from "../src/config/types.ts";
import { Router } from "../src/routing/router.ts";
import type { ClientPort } from "../src/session/client-port.ts";
import { SessionIdGenerator } from "../src/session/session-id.ts";
import { SessionManager } from "../src/session/session-manager.ts";
import { Session, type SessionRoute } from "../src/session/session.ts";
import * as traceContext from "../src/protocol/trace-context.ts";
import { TraceId } from "../src/protocol/trace-context.ts";
import { SKIPPED } from "./guide-figures.ts";
import { AdmissionControl } from "../src/net/admission.ts";
import { type TokenBucket, takeToken } from "../src/net/token-bucket.ts";
import { withTwoDashFlags } from "../src/cli/args.ts";
import { CidrList } from "../src/net/cidr.ts";
import type { ClientEvents } from "../src/net/client-port.ts";
import { type ClientSocket, type ListenerContext, TcpClientPort, type TcpListenerOptions } from "../src/net/tcp-listener.ts";
import { type WebSocketSink, WsClientPort } from "../src/net/ws-listener.ts";
import { ALLOW_EVERY_UPGRADE } from "../src/net/upgrade-request.ts";
import { GatewayCounters } from "../src/telemetry/counters.ts";

/** Every benchmark body, for warmUp(). */
const warmers: (() => void)[] = [];

function measure(name: string, body: () => unknown): void {
  warmers.push(body);
  bench(name, body);
}

/**
 * A benchmark whose setup runs outside the timed region, exactly once per timed call of body, its
 * result being body's argument (mitata's "computed parameter"). mitata computes a whole batch of
 * parameters (4,096) before timing that batch, so setup must stay correct when run that many
 * times ahead of the bodies. mitata's typings omit this form, hence the cast.
 */
function measureWithSetup<T>(name: string, setup: () => T, body: (value: T) => unknown): void {
  warmers.push(() => body(setup()));
  bench(name, function* () {
    yield { 0: setup, bench: body } as unknown as () => unknown;
  });
}

/**
 * Runs every body untimed, interleaved, before anything is measured (all of them, even with
 * --filter). Several benchmarks share code: Router_Pick's three strategies go through one
 * CompiledRule.pick, ReadFullPacket and FrameReader_SplitFrame through one FrameReader.feed.
 * Without this, the first of them would train the JIT on its path alone and the later ones would
 * measure code being recompiled, so a number would depend on which benchmarks ran before it.
 * Warmed up together, shared code is measured compiled for all its paths, as in a gateway.
 */
async function warmUp(): Promise<void> {
  for (let round = 0; round < 5; round++) {
    for (const w of warmers) for (let i = 0; i < 20_000; i++) w();
  }
  await Bun.sleep(200); // lets the JIT's background compilations land
}

// ---- shared fixtures -------------------------------------------------------------------------

const serverId = makeServerId({ isZip: false, worldId: 7, serverType: 1, instId: 3 });

/** A client frame of frameSize bytes (8-byte header + body) with a non-trivial body. */
function clientFrame(frameSize: number): Uint8Array {
  const body = new Uint8Array(frameSize - CLIENT_HEADER_SIZE);
  for (let i = 0; i < body.length; i++) body[i] = i * 31;
  return encodeClientFrame(0x1234, serverId, body);
}

/** ClientPort stand-in: the session manager only stores it. */
const client = {
  protocol: "tcp",
  remoteAddress: "127.0.0.1",
  traceParent: null,
  session: null,
  closing: false,
  send: () => true,
  lend: () => true,
  flush() {},
  close() {},
  pauseReading() {},
  resumeReading() {},
} as ClientPort;

const route: SessionRoute = { serverType: 1, worldId: 7, instId: 3 };

/** Live sessions while a SessionManager benchmark runs (a busy gateway holds thousands). */
const POPULATION = 8192;

/**
 * A generator whose clock moves one millisecond per ID: the IDs of a gateway taking up to 1,000
 * connections a second, each in a millisecond of its own (sequence 0). A real clock would not do
 * here: the benchmark's tight loop takes thousands of IDs per millisecond, sequences 0-4,095, a
 * spread no gateway sees, which hid that sharding by the sequence's low bits filled one shard.
 */
function oneIdPerMillisecond(): SessionIdGenerator {
  let now = Date.UTC(2026, 0, 1);
  return new SessionIdGenerator("bench-gateway", () => now++);
}

function populatedManager(): { manager: SessionManager; live: Session[] } {
  const manager = new SessionManager(oneIdPerMillisecond(), 1 << 20);
  const live: Session[] = [];
  for (let i = 0; i < POPULATION; i++) live.push(manager.create(client, route)!);
  return { manager, live };
}

// ---- calibration -----------------------------------------------------------------------------

// Not a project figure: fixed integer work that never changes, measured in the same run so
// bench-compare can tell "this machine is slower right now" from "the code got slower".
const calibrationInput = Int32Array.from({ length: 64 }, (_, i) => i * 0x9e3779b1);
measure("Calibration", () => {
  let h = 0;
  for (let i = 0; i < calibrationInput.length; i++) {
    h = Math.imul(h ^ calibrationInput[i]!, 0x85ebca6b);
    h ^= h >>> 13;
  }
  do_not_optimize(h);
});

// ---- buffer pool -----------------------------------------------------------------------------

group("buffer pool (4 KiB class)", () => {
  // Each benchmark times one side only; the other side runs untimed as the computed parameter,
  // so the pool neither drains nor grows. The pool is pre-filled so no timed acquire allocates.
  const BATCH = 4096; // mitata's batch: the most buffers out at once
  function filledPool(): BufferPool {
    const pool = new BufferPool();
    const bufs = Array.from({ length: BATCH + 16 }, () => pool.acquire(4096));
    for (const b of bufs) pool.release(b);
    return pool;
  }

  // Pool_Get: acquire (timed, with the push that keeps the buffer); a later untimed setup call
  // releases it.
  const getPool = filledPool();
  const held: Uint8Array[] = [];
  measureWithSetup(
    "Pool_Get",
    () => {
      const b = held.pop();
      if (b !== undefined) getPool.release(b);
      return 4096;
    },
    (size) => {
      held.push(getPool.acquire(size));
    },
  );

  // Pool_Put: release (timed) of a buffer acquired by the untimed setup.
  const putPool = filledPool();
  measureWithSetup(
    "Pool_Put",
    () => putPool.acquire(4096),
    (b) => putPool.release(b),
  );
});

// ---- session manager -------------------------------------------------------------------------

group(`session manager (${POPULATION} live sessions)`, () => {
  // SessionManager_Add: create + register (ID generation, Session object, shard table insert).
  // The untimed setup removes a session added earlier, so the population stays between
  // POPULATION and POPULATION + 4,096. The timed part also pushes the session on a list (~1 ns).
  const add = populatedManager();
  const added: Session[] = [];
  measureWithSetup(
    "SessionManager_Add",
    () => {
      const s = added.pop();
      if (s !== undefined) add.manager.remove(s);
      return route;
    },
    (r) => {
      added.push(add.manager.create(client, r)!);
    },
  );

  // Session_New: the Session object alone, as the manager makes it (the part of SessionManager_Add
  // that grows with every per-session field), so a slower Add can be told apart from a slower
  // table. The creation time is an argument since the manager passes the ID's own; a src/ from
  // before that ignores it and reads the clock itself, which is then part of what it measures.
  let newLo = 0;
  const createdAt = Date.UTC(2026, 0, 1);
  measure("Session_New", () => {
    do_not_optimize(new Session(0x1234, newLo++ >>> 0, client, route, createdAt));
  });

  // SessionManager_Get: lookup by (hi, lo) of a live session, cycling through all of them.
  const get = populatedManager();
  const his = Uint32Array.from(get.live, (s) => s.hi);
  const los = Uint32Array.from(get.live, (s) => s.lo);
  let next = 0;
  measure("SessionManager_Get", () => {
    const i = next++ & (POPULATION - 1);
    do_not_optimize(get.manager.get(his[i]!, los[i]!));
  });

  // SessionManager_Remove: unregister a live session created by the untimed setup.
  const rem = populatedManager();
  measureWithSetup(
    "SessionManager_Remove",
    () => rem.manager.create(client, route)!,
    (s) => rem.manager.remove(s),
  );
});

// ---- client framing --------------------------------------------------------------------------

group("client framing", () => {
  // ParseClientMessageHeader: every header field the gateway reads from a client frame (Length,
  // MessageID, ServerID and its serverType/worldID/instID), over 64 different headers.
  const headers = new Uint8Array(64 * CLIENT_HEADER_SIZE);
  for (let i = 0; i < 64; i++) {
    const at = i * CLIENT_HEADER_SIZE;
    headers.set(clientFrame(CLIENT_HEADER_SIZE + i).subarray(0, CLIENT_HEADER_SIZE), at);
    headers[at + 6] = i; // vary the worldID too
  }
  let h = 0;
  measure("ParseClientMessageHeader", () => {
    const off = (h++ & 63) * CLIENT_HEADER_SIZE;
    const sid = readClientServerId(headers, off);
    do_not_optimize(
      readClientBodyLength(headers, off) + readClientMessageId(headers, off) + serverIdType(sid) + serverIdWorld(sid) + serverIdInst(sid),
    );
  });

  // The FrameReader as a client connection uses it, with a handler that only counts.
  const pool = new BufferPool();
  let delivered = 0;
  const handler: FrameHandler<ClientViolation> = {
    onFrame(_b, _off, len) {
      delivered += len;
      return true;
    },
    onFramingError(reason) {
      throw new Error(`unexpected framing error ${reason}`);
    },
  };
  const reader = new FrameReader(new ClientFrameLayout(MAX_CLIENT_BODY), handler, pool);
  const frame = clientFrame(1024);

  // ReadFullPacket: one chunk holding one whole 1 KiB frame, delivered in place (no copy).
  measure("ReadFullPacket", () => reader.feed(frame));

  // FrameReader_SplitFrame: the same frame arriving in two chunks of 512 bytes: the first half is
  // copied into a pooled ring, the frame is completed from the second and the buffer returned.
  const firstHalf = frame.subarray(0, 512);
  const secondHalf = frame.subarray(512);

  // Both fixtures must deliver the whole frame, or the benchmarks would time an error path.
  reader.feed(frame);
  reader.feed(firstHalf);
  reader.feed(secondHalf);
  if (delivered !== 2 * frame.length || reader.pendingBytes !== 0) throw new Error("FrameReader fixture did not deliver its frames");
  measure("FrameReader_SplitFrame", () => {
    reader.feed(firstHalf);
    reader.feed(secondHalf);
  });
});

// ---- client port output ----------------------------------------------------------------------

group("client port output (1 KiB frames, a socket that takes everything)", () => {
  // What a backend chunk's reply costs on the client side: lend() (no copy when nothing waits)
  // then flush(); and two frames for one client in one chunk, where the second lend spills the
  // first into the pooled queue. Over TcpClientPort (raw TCP) and WsClientPort (Bun's WebSocket).
  const frame = clientFrame(1024);
  const events: ClientEvents = {
    onClientOpen() {},
    onClientFrame: () => true,
    onClientViolation() {},
    onConnectionRefused() {},
    onForwardedForMalformed() {},
    onListenerError() {},
    onClientClosed() {},
  };
  const buffers = new BufferPool();
  let written = 0;
  const socket: ClientSocket = {
    remoteAddress: "127.0.0.1",
    write(_b: Uint8Array, _off?: number, len?: number) {
      written += len ?? 0;
      return len ?? 0;
    },
    end() {},
    terminate() {},
    timeout() {},
    pause() {},
    resume() {},
  };
  const options: TcpListenerOptions = {
    host: "127.0.0.1",
    port: 0,
    maxMessageSize: MAX_CLIENT_BODY,
    writeQueueLimit: 1 << 20,
    closeTimeoutMs: 5_000,
    maxConnections: 1_000,
    partialFrameTimeoutMs: 10_000,
    pendingInputLimit: 1 << 26,
    sniffWebSocket: false,
  };
  const ctx: ListenerContext = {
    layout: new ClientFrameLayout(MAX_CLIENT_BODY),
    service: events,
    buffers,
    options,
    admission: new AdmissionControl({ maxPerIp: 1_000, ratePerSec: 1e9, maxTrackedIps: 1_000 }),
    metrics: new GatewayCounters(),
    proxy: { mode: "off", trusted: new CidrList([]), headerTimeoutMs: 1_000, maxPendingHeaders: 10 },
    upgrade: ALLOW_EVERY_UPGRADE,
    state: { awaitingHeader: 0, heldInput: 0 },
    now: Date.now,
    portClosed: () => {},
  };
  const tcp = new TcpClientPort(socket, ctx);
  tcp.start();
  const sink: WebSocketSink = {
    send(data: Uint8Array) {
      written += data.length;
      return data.length;
    },
    close() {},
    terminate() {},
    pause() {},
    resume() {},
  };
  const wsContext = {
    layout: ctx.layout,
    events,
    buffers,
    options: { ...options, path: "/ws", maxPayloadLength: 1 << 20, idleTimeoutSec: 0, sendPings: false },
    admission: ctx.admission,
    upgrade: ALLOW_EVERY_UPGRADE,
    held: { heldInput: 0 },
    now: Date.now,
    portClosed: () => {},
  };
  const ws = new WsClientPort("127.0.0.1", wsContext as ConstructorParameters<typeof WsClientPort>[1]);
  ws.attach(sink);

  for (const [name, port] of [
    ["TcpClientPort", tcp],
    ["WsClientPort", ws],
  ] as const) {
    const before = written;
    port.lend(frame, 0, frame.length);
    port.flush();
    port.lend(frame, 0, frame.length);
    port.lend(frame, 0, frame.length);
    port.flush();
    if (written - before !== 3 * frame.length || port.queuedBytes !== 0) throw new Error(`${name} fixture did not write its frames`);
    measure(`${name}_LendFlush`, () => {
      port.lend(frame, 0, frame.length);
      port.flush();
    });
    measure(`${name}_LendTwoFlush`, () => {
      port.lend(frame, 0, frame.length);
      port.lend(frame, 0, frame.length);
      port.flush();
    });
  }
});

// ---- ring buffer -----------------------------------------------------------------------------

group("ring buffer", () => {
  // RingBuffer_PushConsume: append 1,000 bytes and consume 1,000 from the head, with 2,000 bytes
  // standing in a 4 KiB ring (a socket writer's queue under a slow reader); pushes wrap around.
  const ring = new RingBuffer(new BufferPool(), 1 << 20);
  const chunk = clientFrame(1000);
  ring.push(chunk, 0, 1000);
  ring.push(chunk, 0, 1000);
  measure("RingBuffer_PushConsume", () => {
    ring.push(chunk, 0, 1000);
    ring.consume(1000);
  });
});

// ---- forwarding toward a backend -------------------------------------------------------------

group("client frame -> backend Trans (encode into a preallocated buffer)", () => {
  // What BackendConnection.sendTrans writes per client frame (the same functions), minus the
  // writer bookkeeping: the 20-byte server header + gate header, then the body copied after it.
  const out = new Uint8Array(SERVER_HEADER_SIZE + GATE_HEADER_TRACE_SIZE + MAX_CLIENT_BODY);
  const outView = new DataView(out.buffer);
  const hi = 0x1234567;
  const lo = 0x89abcde;
  const traceId = TraceId.random();
  // Read off the module, not imported by name, so that this file still loads over an older src/
  // (scripts/bench-ab.ts): before SpanId, the traced writer drew a fresh span ID per message, a
  // different measurement, so there _WithTrace is not run and bench-ab shows no base figure.
  const SpanId = (traceContext as Partial<typeof traceContext>).SpanId;
  const spanId = SpanId?.random();

  for (const [label, frameSize] of [
    ["64B", CLIENT_HEADER_SIZE + 64],
    ["1KiB", CLIENT_HEADER_SIZE + 1024],
  ] as const) {
    const b = clientFrame(frameSize);

    // _Original: the 9-byte gate header [OpCode][SessionID].
    measure(`WriteServerMessage_Original/${label}`, () => writeTrans(out, outView, 0, b, 0, frameSize, hi, lo));

    // _WithTrace: the 33-byte gate header, also carrying the session's trace ID and span ID.
    if (spanId === undefined) continue;
    measure(`WriteServerMessage_WithTrace/${label}`, () =>
      writeTransWithTrace(out, outView, 0, b, 0, frameSize, hi, lo, traceId, spanId),
    );
  }
});

// ---- rate limiting -------------------------------------------------------------------------------

group("limiter", () => {
  // Limiter_Allow: the guide's figure is one rate-limit decision; ours is the token bucket every
  // client frame passes through when security.message_rate_limit is on.
  const bucket: TokenBucket = { tokens: 1e9, at: 0 };
  let now = 1;
  measure("Limiter_Allow", () => takeToken(bucket, now++, 1e9, 1e9));

  // Admission_Admit: a new connection from a known address (bucket, concurrency count,
  // generation bookkeeping), then its release.
  const limiter = new AdmissionControl({ maxPerIp: 1_000_000, ratePerSec: 1e12, maxTrackedIps: 100_000 });
  const ips = Array.from({ length: 1024 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  let i = 0;
  measure("Admission_Admit", () => {
    const ip = ips[(i = (i + 1) & 1023)]!;
    const refused = limiter.admit(ip, now++);
    limiter.release(ip);
    return refused;
  });
});

// ---- routing ---------------------------------------------------------------------------------

group("routing: ruleFor + pick (4 endpoints)", () => {
  // consistent_hash / realm_based: the reference's crc32 mod n. rendezvous_instance /
  // rendezvous_world: the rendezvous hashes consistent_hash / realm_based ran before issue 12, so
  // their numbers compare with the baseline's old consistent_hash / realm_based rows.
  const strategies: readonly RouteStrategy[] = ["round_robin", "consistent_hash", "realm_based", "rendezvous_instance", "rendezvous_world"];
  const endpoints = ["10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000", "10.0.0.4:9000"];
  // Server type 1 + index: a wildcard rule (world 0) and an exact rule for world 7 each, so the
  // lookup takes both paths (worlds 1..15 other than 7 fall back to the wildcard).
  const router = new Router(
    strategies.flatMap((strategy, i) => [
      { server_type: i + 1, world_id: 0, service_name: strategy, strategy, endpoints },
      { server_type: i + 1, world_id: 7, service_name: `${strategy}-w7`, strategy, endpoints },
    ]),
  );
  strategies.forEach((strategy, i) => {
    const serverType = i + 1;
    let n = 0;
    measure(`Router_Pick/${strategy}`, () => {
      const k = n++;
      const worldId = (k & 15) + 1;
      const rule = router.ruleFor(serverType, worldId)!;
      do_not_optimize(rule.pick(worldId, (k >>> 4) & 0xff, Math.imul(k, 0x9e3779b1)));
    });
  });
});

// ---- run -------------------------------------------------------------------------------------

const argv = withTwoDashFlags(process.argv.slice(2));

function flag(name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}

const jsonPath = flag("--json");
const filter = flag("--filter");

for (const [name, why] of Object.entries(SKIPPED)) console.log(`${name}: ${why}`);

await warmUp();
const { benchmarks } = await run(filter === undefined ? {} : { filter: new RegExp(filter) });

if (jsonPath !== undefined) {
  // The median of mitata's samples (each sample is the mean of a batch of calls): steadier than
  // the mean on a shared machine, where a few samples catch another process's time slice.
  const nsPerOp: Record<string, number> = {};
  for (const trial of benchmarks) {
    for (const r of trial.runs) {
      if (r.stats === undefined) throw new Error(`benchmark ${r.name} failed: ${String(r.error)}`);
      nsPerOp[r.name] = r.stats.p50;
    }
  }
  await Bun.write(jsonPath, JSON.stringify(nsPerOp, null, 2) + "\n");
  console.log(`wrote ${Object.keys(nsPerOp).length} results to ${jsonPath}`);
}
