// Open-loop pacing when the timer runs late. Bun can leave the engine's interval timer unrun
// for 100s of ms under load while it keeps dispatching socket reads; replies then pace the sends.
// The engine runs in process with its pacing timer made slow on purpose (every 300 ms: each tick
// alone would send its 100 ms catch-up window and skip the rest) against a real echo server on
// loopback. Counts only, no durations.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { Engine, LOADTEST_MESSAGE_ID } from "../../src/loadtest/engine.ts";
import { Histogram } from "../../src/loadtest/histogram.ts";
import { makeServerId } from "../../src/protocol/client-frame.ts";

/**
 * How long the echo server holds each chunk. Replies can only pace the sends while frames are in
 * flight: with an instant echo on loopback, 1 frame/ms is answered before the next is due and the
 * chain of replies stops. Held 20 ms, about 20 frames are in flight, as under real load.
 */
const ECHO_DELAY_MS = 20;

let server: TCPSocketListener<undefined>;

beforeAll(() => {
  server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      data(s: Socket<undefined>, chunk: Uint8Array) {
        // The chunk is only valid during this call. Equal delays fire in order, so each
        // connection's stream stays in order.
        const copy = chunk.slice();
        setTimeout(() => s.write(copy), ECHO_DELAY_MS);
      },
    },
  });
});

afterAll(() => server.stop(true));

test("a pacing timer 300 ms late: replies pace the open loop, and >= 90% of the offered frames are sent", async () => {
  const connections = 20;
  const rate = 50;
  const durationMs = 4000;
  const engine = new Engine({
    host: "127.0.0.1",
    port: server.port,
    wsPath: null,
    tls: null,
    connections,
    connBase: 0,
    durationMs,
    rate,
    inFlight: 1,
    messageSize: 32,
    serverId: makeServerId({ isZip: false, worldId: 0, serverType: 10, instId: 0 }),
    messageId: LOADTEST_MESSAGE_ID,
    dialTimeoutMs: 5000,
    replyTimeoutMs: 5000,
    ramp: 0,
    sourceAddresses: 1,
    verbose: false,
    log: () => {},
    pacingTickMs: 300,
  });
  const r = await engine.run();
  const offered = (connections * rate * durationMs) / 1000;
  expect(r.errors.reply_mismatch + r.errors.reply_timeout + r.errors.connect_failed).toBe(0);
  expect(r.messages.received).toBe(r.messages.sent);
  // The timer alone sends 100 of every 300 slots; with replies pacing, only the slots before the
  // first tick (nothing is in flight yet, so no reply can pace them) are skipped.
  expect(r.messages.sent).toBeGreaterThanOrEqual(0.9 * offered);
  const pacing = r.pacing!;
  expect(pacing.fromReplies).toBeGreaterThan(0);
  // Every open-loop send comes from one pacing call or the other.
  expect(pacing.fromReplies + pacing.fromTimer).toBe(r.messages.sent);
  // One lateness per pacing call that sent: at least one per tick, at most one per frame.
  const late = Histogram.fromJSON(pacing.late);
  expect(late.count).toBeGreaterThan(0);
  expect(late.count).toBeLessThanOrEqual(r.messages.sent);
}, 30_000);
