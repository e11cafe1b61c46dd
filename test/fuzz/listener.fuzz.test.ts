// Fuzzing the running gateway over real sockets: hostile clients send mutated and random bytes,
// a hostile backend answers with mutated frames, while well-formed clients keep round-tripping.
// Invariants: the process never throws, every hostile client ends, and the well-formed clients
// get every reply in order.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode, SERVER_HEADER_SIZE, decodeBackendFrame, encodeBackendFrame, encodeMulticastBody } from "../../src/protocol/server-frame.ts";
import { eventually, rule, startGateway, str, text, type TestGateway } from "../support/harness.ts";
import { Prng } from "./prng.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 7);
const HOSTILE_CLIENTS = Number(process.env.FUZZ_CLIENTS ?? 1000);
const GOOD = 10;
const BAD_BACKEND_TYPE = 66;

let backend: DemoBackend;
let hostileBackend: TCPSocketListener<undefined>;
let gw: TestGateway;
const rng = new Prng(SEED);

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
    server: { first_message_timeout: "300ms" },
    security: { max_message_size: 8192 },
    connection_pool: { retry_delay: "10ms" },
    routing: {
      rules: [rule(10, [`127.0.0.1:${backend.port}`]), rule(BAD_BACKEND_TYPE, [`127.0.0.1:${hostileBackend.port}`])],
    },
  });
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
  const good = await Promise.all(Array.from({ length: GOOD }, () => gw.connect()));
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
  const victims = await Promise.all(Array.from({ length: 5 }, () => gw.connect()));
  for (const v of victims) for (let k = 0; k < 20; k++) v.send(k, serverIdFor(BAD_BACKEND_TYPE), rng.bytes(rng.size(200)));

  for (let batch = 0; batch < HOSTILE_CLIENTS; batch += 50) {
    const hostile = await Promise.all(Array.from({ length: Math.min(50, HOSTILE_CLIENTS - batch) }, () => gw.connect()));
    for (const h of hostile) for (const part of rng.split(hostileBytes())) h.sendRaw(part);
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
}, 180_000);
