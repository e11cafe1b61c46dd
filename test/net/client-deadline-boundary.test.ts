// Client deadlines at their boundary (client-deadlines.test.ts has them through a whole gateway): never before the timeout, at most one sweep after it. A real
// TcpListener on loopback and a real client socket; the clock is a ManualClock and each sweep a
// step the test takes, so "not yet" and "now" are exact instants, not races with a timer.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { AdmissionControl } from "../../src/net/admission.ts";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { CidrBlock, CidrList } from "../../src/net/cidr.ts";
import { type ProxyProtocolOptions, type TcpClientPort, TcpListener, type TcpListenerOptions } from "../../src/net/tcp-listener.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { eventually } from "../support/eventually.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { TEST_LISTENER_OPTIONS } from "../support/partial-socket.ts";
import { RecordedEvents } from "../support/recorded-events.ts";

const TIMEOUT_MS = 1000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function listenerWithClient(options: Partial<TcpListenerOptions>, proxy: Partial<ProxyProtocolOptions> = {}) {
  const clock = new ManualClock();
  const events = new RecordedEvents();
  const listener = new TcpListener({
    options: { ...TEST_LISTENER_OPTIONS, ...options },
    proxy: { mode: "off", trusted: new CidrList([]), headerTimeoutMs: 1000, maxPendingHeaders: 10, ...proxy },
    events,
    buffers: new BufferPool(),
    metrics: new GatewayMetrics(),
    admission: new AdmissionControl({ maxPerIp: 1000, ratePerSec: 1e6, maxTrackedIps: 1000 }),
    now: clock.now,
  });
  listener.start("client deadlines");
  listener.sweep();
  // Most of a sweep interval passes with no sweep: what a port stamps now must be this instant,
  // not the last sweep's reading (which made every deadline fire up to a sweep interval early).
  clock.tick(900);
  const client: Socket<undefined> = await Bun.connect({ hostname: "127.0.0.1", port: listener.port, socket: { data() {}, error() {} } });
  cleanups.push(() => {
    client.terminate();
    listener.stop();
  });
  await eventually(() => events.ports.length === 1, "the connection to be accepted");
  const port = events.ports[0]!;
  /** Advances the clock by ms, then sweeps: is the client being closed now? */
  const after = (ms: number): boolean => {
    clock.tick(ms);
    listener.sweep();
    return port.closing;
  };
  return { clock, events, client, after };
}

const frame = encodeClientFrame(1, 0x0a0001, new Uint8Array([1, 2, 3]));

describe("client deadlines fire at the timeout, never before", () => {
  test("server.partial_frame_timeout: counted from the chunk that started the frame", async () => {
    const { events, client, after } = await listenerWithClient({ partialFrameTimeoutMs: TIMEOUT_MS });
    // A whole frame and 4 bytes of the next in one write: the frame's arrival shows the 4 bytes were read.
    client.write(new Uint8Array([...frame, ...frame.subarray(0, 4)]));
    await eventually(() => events.frames.length === 1, "the whole frame");
    expect(after(TIMEOUT_MS - 1)).toBe(false);
    expect(after(1)).toBe(true);
    await eventually(() => events.closed.length === 1, "the close");
    expect(events.closed).toEqual(["partial_frame_timeout"]);
  });

  test("client_read_timeout: counted from the last input", async () => {
    const { events, client, after } = await listenerWithClient({ readTimeoutMs: TIMEOUT_MS });
    client.write(frame);
    await eventually(() => events.frames.length === 1, "the frame");
    expect(after(TIMEOUT_MS - 1)).toBe(false);
    expect(after(1)).toBe(true);
    await eventually(() => events.closed.length === 1, "the close");
    expect(events.closed).toEqual(["read_timeout"]);
  });

  test("client_read_timeout: counted from the connection's open when nothing was sent", async () => {
    const { events, after } = await listenerWithClient({ readTimeoutMs: TIMEOUT_MS });
    expect(after(TIMEOUT_MS - 1)).toBe(false);
    expect(after(1)).toBe(true);
    await eventually(() => events.closed.length === 1, "the close");
    expect(events.closed).toEqual(["read_timeout"]);
  });

  test("security.proxy_header_timeout: a trusted peer's header wait counted from its connection's open", async () => {
    const loopback = new CidrList([CidrBlock.parse("127.0.0.0/8")!]);
    const { events, after } = await listenerWithClient({}, { mode: "required", trusted: loopback, headerTimeoutMs: TIMEOUT_MS });
    expect(after(TIMEOUT_MS - 1)).toBe(false);
    expect(after(1)).toBe(true);
    expect(events.refused).toEqual(["proxy_timeout"]);
  });

  test("client_write_timeout: counted from when output started waiting", async () => {
    const { events, client, after } = await listenerWithClient({ writeTimeoutMs: TIMEOUT_MS, writeQueueLimit: 1 << 28 });
    client.pause();
    const port = events.ports[0] as TcpClientPort;
    const chunk = new Uint8Array(1 << 20);
    // Far past what loopback socket buffers hold: the rest waits in the port's queue.
    for (let i = 0; i < 64 && port.queuedBytes === 0; i++) port.send(chunk, 0, chunk.length);
    expect(port.queuedBytes).toBeGreaterThan(0);
    expect(after(TIMEOUT_MS - 1)).toBe(false);
    expect(after(1)).toBe(true);
    await eventually(() => events.closed.length === 1, "the close");
    expect(events.closed).toEqual(["write_timeout"]);
  });
});
