// Fuzzing the running gateway over real sockets, as deployed behind a balancer: PROXY protocol
// on, per-IP limits at their defaults, the admin port up. Hostile clients send mutated and random
// PROXY headers and bytes, a hostile backend answers with mutated frames, slow-hostile clients
// stall mid-header or mid-frame and never close, while well-formed clients keep round-tripping.
// Invariants: the process never throws, every hostile client ends (the slow ones by the
// gateway's timeouts), the well-formed clients get every reply in order, and afterwards open
// fds and pooled bytes are back to their baseline.
import { readdirSync } from "node:fs";
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { proxyV1, proxyV2 } from "../support/proxy-header.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode, SERVER_HEADER_SIZE, decodeBackendFrame, encodeBackendFrame, encodeMulticastBody } from "../../src/protocol/server-frame.ts";
import { eventually, rule, startGateway, str, text, type TestGateway } from "../support/harness.ts";
import { Prng } from "./prng.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 7);
const HOSTILE_CLIENTS = Number(process.env.FUZZ_CLIENTS ?? 1000);
const SLOW_CLIENTS = Number(process.env.FUZZ_SLOW_CLIENTS ?? 200);
const GOOD = 10;
const BAD_BACKEND_TYPE = 66;

let backend: DemoBackend;
let hostileBackend: TCPSocketListener<undefined>;
let gw: TestGateway;
let baselineFds = 0;
const rng = new Prng(SEED);
const openFds = (): number => readdirSync("/proc/self/fd").length;

/** A player's address, as the balancer's PROXY header gives it (distinct players, distinct limits). */
const player = (n: number): string => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
let players = 0;

/** A well-formed client behind the balancer: its header first, then frames. */
async function proxiedClient(): Promise<GameClient> {
  const c = await gw.connect();
  c.sendRaw(proxyV1(player(++players), "10.0.0.1", 40000, 8080));
  return c;
}

/** A header as a balancer would send it, mutated, missing, or garbage. */
function hostileHeader(): Uint8Array {
  const src = player(++players);
  const r = rng.next();
  if (r < 0.4) return proxyV1(src, "10.0.0.1", rng.int(65536), 8080);
  if (r < 0.6) return proxyV2(src, "10.0.0.1", rng.int(65536), 8080);
  if (r < 0.8) return rng.mutate(rng.next() < 0.5 ? proxyV1(src, "10.0.0.1", 1, 2) : proxyV2(src, "10.0.0.1", 1, 2));
  if (r < 0.9) return new Uint8Array(0);
  return rng.bytes(rng.size(200));
}

beforeAll(async () => {
  backend = await DemoBackend.start({ port: 0 });
  // Answers each Trans with a burst of mutated frames addressed to that session (and others).
  hostileBackend = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      data(socket, chunk) {
        let off = 0;
        while (off + SERVER_HEADER_SIZE <= chunk.length) {
          const len = new DataView(chunk.buffer, chunk.byteOffset + off).getInt32(0, true);
          if (len < 9 || off + SERVER_HEADER_SIZE + len > chunk.length) break;
          const f = decodeBackendFrame(chunk, off);
          off += SERVER_HEADER_SIZE + len;
          if (f.opcode !== OpCode.Trans) continue;
          const valid = [
            encodeBackendFrame({ opcode: OpCode.Trans, sessionId: f.sessionId, type: f.type, body: f.body }),
            encodeBackendFrame({ opcode: OpCode.Multicast, sessionId: 0n, body: encodeMulticastBody([f.sessionId, 12345n], f.body) }),
            encodeBackendFrame({ opcode: OpCode.Broadcast, sessionId: 0n, body: f.body }),
            encodeBackendFrame({ opcode: OpCode.Ping, sessionId: 0n, body: new Uint8Array(8) }),
          ];
          for (const v of valid) socket.write(rng.next() < 0.5 ? v : rng.mutate(v));
        }
      },
    },
  });
  gw = startGateway({
    server: { first_message_timeout: "300ms", partial_frame_timeout: "300ms" },
    admin: { listen_addr: "127.0.0.1:0" },
    // Per-IP limits at their defaults; every connection comes through the "balancer" on loopback.
    security: {
      max_message_size: 8192,
      max_connections_per_ip: 10,
      connection_rate_limit: 5,
      proxy_protocol: "optional",
      trusted_proxies: ["127.0.0.0/8"],
      proxy_header_timeout: "200ms", // before first_message_timeout, so a stalled header ends as proxy_timeout
    },
    connection_pool: { retry_delay: "10ms", max_connections: 1000 },
    routing: {
      rules: [rule(10, [`127.0.0.1:${backend.port}`]), rule(BAD_BACKEND_TYPE, [`127.0.0.1:${hostileBackend.port}`])],
    },
  });
  await eventually(() => gw.gateway.adminPort > 0, "the admin port");
  baselineFds = openFds();
});

afterAll(async () => {
  await gw.stop();
  await backend.stop();
  hostileBackend.stop(true);
});

function hostileBytes(): Uint8Array {
  const frames = Array.from({ length: 1 + rng.int(4) }, () =>
    encodeClientFrame(rng.int(65536), serverIdFor(rng.next() < 0.8 ? 10 : rng.int(256)), rng.bytes(rng.size(9000))),
  );
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(f, at);
    at += f.length;
  }
  const kind = rng.int(3);
  return kind === 0 ? rng.mutate(stream) : kind === 1 ? rng.bytes(rng.size(3000)) : stream.subarray(0, rng.int(stream.length));
}

test(`${HOSTILE_CLIENTS} hostile clients and a hostile backend; well-formed clients lose nothing (seed ${SEED})`, async () => {
  const good = await Promise.all(Array.from({ length: GOOD }, () => proxiedClient()));
  let stop = false;
  const goodTraffic = good.map(async (c, i) => {
    let n = 0;
    while (!stop) {
      for (let k = 0; k < 10; k++) c.send(k, serverIdFor(10), text(`good-${i}-${n + k}`));
      const replies = await c.frames(10, 15_000);
      for (let k = 0; k < 10; k++) expect(str(replies[k]!.body)).toBe(`good-${i}-${n + k}`);
      n += 10;
    }
    return n;
  });

  // Clients of the hostile backend: they may receive garbage-free frames or be closed; either is fine.
  const victims = await Promise.all(Array.from({ length: 5 }, () => proxiedClient()));
  for (const v of victims) for (let k = 0; k < 20; k++) v.send(k, serverIdFor(BAD_BACKEND_TYPE), rng.bytes(rng.size(200)));

  for (let batch = 0; batch < HOSTILE_CLIENTS; batch += 50) {
    const hostile = await Promise.all(Array.from({ length: Math.min(50, HOSTILE_CLIENTS - batch) }, () => gw.connect()));
    for (const h of hostile) {
      const bytes = hostileBytes();
      const header = hostileHeader();
      const stream = new Uint8Array(header.length + bytes.length);
      stream.set(header);
      stream.set(bytes, header.length);
      for (const part of rng.split(stream)) h.sendRaw(part);
    }
    for (const h of hostile) h.close();
    await Promise.all(hostile.map((h) => h.closed));
  }
  stop = true;
  const delivered = await Promise.all(goodTraffic);
  for (const n of delivered) expect(n).toBeGreaterThan(0);
  for (const c of [...good, ...victims]) c.close();

  await eventually(() => gw.gateway.clientConnections === 0, "every connection to end", 20_000);
  expect(gw.gateway.sessions.size).toBe(0);
  expect(gw.gateway.buffers.stats().outstanding).toBe(0);
  const m = gw.gateway.metrics;
  expect(await m.value("protocol_violations_total", { side: "client" })).toBeGreaterThan(0);
  expect(await m.value("protocol_violations_total", { side: "backend" })).toBeGreaterThan(0);
  expect(await m.value("connection_rejected_total", { reason: "proxy_invalid" })).toBeGreaterThan(0);
  const metrics = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/metrics`);
  expect(metrics.status).toBe(200);
}, 180_000);

test(`${SLOW_CLIENTS} slow-hostile clients stall mid-header or mid-frame and never close; the timeouts end them and nothing stays pinned (seed ${SEED})`, async () => {
  const good = await proxiedClient();
  const slow: GameClient[] = [];
  for (let batch = 0; batch < SLOW_CLIENTS; batch += 50) {
    const clients = await Promise.all(Array.from({ length: Math.min(50, SLOW_CLIENTS - batch) }, () => gw.connect()));
    for (const c of clients) {
      const header = proxyV1(player(++players), "10.0.0.1", 1, 2);
      const frame = encodeClientFrame(1, serverIdFor(10), rng.bytes(1 + rng.int(8000)));
      switch (rng.int(3)) {
        case 0: // stalls inside the PROXY header
          c.sendRaw(header.subarray(0, 1 + rng.int(header.length - 1)));
          break;
        case 1: // stalls inside its first frame
          c.sendRaw(header);
          c.sendRaw(frame.subarray(0, 1 + rng.int(frame.length - 1)));
          break;
        default: // a whole first frame, then stalls inside the next
          c.sendRaw(header);
          c.sendRaw(frame);
          c.sendRaw(frame.subarray(0, 1 + rng.int(frame.length - 1)));
      }
    }
    slow.push(...clients);
  }
  // A well-formed client is served meanwhile.
  good.send(1, serverIdFor(10), text("still here"));
  expect(str((await good.next(15_000)).body)).toBe("still here");
  await eventually(() => slow.every((c) => c.isClosed), "the gateway to close every stalled client", 30_000);
  good.close();
  await eventually(() => gw.gateway.clientConnections === 0, "every connection to end", 20_000);
  const m = gw.gateway.metrics;
  expect(await m.value("connection_rejected_total", { reason: "proxy_timeout" })).toBeGreaterThan(0);
  expect((await m.value("client_closes_total", { reason: "partial_frame_timeout" })) + (await m.value("client_closes_total", { reason: "first_message_timeout" }))).toBeGreaterThan(0);
  expect(gw.gateway.buffers.stats().outstandingBytes).toBe(0);
  // Generous: the backends' connections may have been re-dialled meanwhile.
  await eventually(() => openFds() <= baselineFds + 16, `open fds back near the baseline of ${baselineFds}`);
}, 180_000);
