// GameClient against tiny loopback servers written here: an echo of raw bytes, and variations.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { encodeClientFrame, parseServerId } from "../../src/protocol/client-frame.ts";
import { eventually } from "../support/eventually.ts";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Conn {
  queue: Uint8Array[];
  /** Writes the socket took only part of (or none): the kernel's buffers were full. */
  shortWrites: number;
}

/** Writes with a per-connection queue flushed on drain: echoed bursts can exceed the socket buffer. */
function write(s: Socket<Conn>, bytes: Uint8Array): void {
  s.data.queue.push(bytes);
  if (s.data.queue.length === 1) flush(s);
}

function flush(s: Socket<Conn>): void {
  const q = s.data.queue;
  while (q.length > 0) {
    const n = s.write(q[0]!);
    if (n < 0) return;
    if (n < q[0]!.length) {
      s.data.shortWrites++;
      q[0] = q[0]!.subarray(n);
      return;
    }
    q.shift();
  }
}

/** A server that hands every chunk to onData; returns it and its connected sockets. */
function server(onData: (s: Socket<Conn>, chunk: Uint8Array) => void, onOpen?: (s: Socket<Conn>) => void) {
  const sockets: Socket<Conn>[] = [];
  const listener: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(s) {
        s.data = { queue: [], shortWrites: 0 };
        sockets.push(s);
        onOpen?.(s);
      },
      data: (s, chunk) => onData(s, chunk),
      drain: (s) => flush(s),
    },
  });
  cleanup.push(() => listener.stop(true));
  return { port: listener.port, sockets };
}

const echoServer = () => server((s, chunk) => write(s, chunk.slice()));

async function client(port: number, opts?: Parameters<typeof GameClient.connect>[2]): Promise<GameClient> {
  const c = await GameClient.connect("127.0.0.1", port, opts);
  cleanup.push(() => c.close());
  return c;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing split pattern can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("GameClient", () => {
  test("round-trips frames with bodies of 0 and 65,535 bytes, string bodies and the isZip bit", async () => {
    const { port } = echoServer();
    const c = await client(port);
    const zipped = (serverIdFor(200, 32767, 255) | 0x80000000) >>> 0;
    const big = new Uint8Array(65535).map((_, i) => (i * 31) & 0xff);
    c.send(0xffff, zipped, new Uint8Array(0));
    c.send(1, serverIdFor(10), big);
    c.send(2, serverIdFor(15, 3, 4), "héllo");
    const [empty, full, s] = await c.frames(3);
    expect(empty).toEqual({ messageId: 0xffff, serverId: zipped, body: new Uint8Array(0) });
    expect(full!.messageId).toBe(1);
    expect(full!.body).toEqual(big);
    expect(s!.serverId).toBe(serverIdFor(15, 3, 4));
    expect(str(s!.body)).toBe("héllo");
    expect(c.framesReceived).toBe(3);
  });

  test("frames split at arbitrary points arrive whole and in order", async () => {
    const random = rng(12345);
    const sent = Array.from({ length: 60 }, (_, i) => {
      const len = i % 10 === 0 ? Math.floor(random() * 65536) : Math.floor(random() * 40);
      return { messageId: i, serverId: serverIdFor(200, i), body: new Uint8Array(len).map(() => (random() * 256) | 0) };
    });
    const stream = Buffer.concat(sent.map((f) => encodeClientFrame(f.messageId, f.serverId, f.body)));
    const { port, sockets } = server(() => {});
    const c = await client(port);
    while (sockets.length === 0) await Bun.sleep(1);
    const s = sockets[0]!;
    s.setNoDelay(true);
    let pieces = 0;
    for (let off = 0; off < stream.length; pieces++) {
      // Mostly tiny pieces (headers split), sometimes large ones (bodies split).
      const n = random() < 0.7 ? 1 + Math.floor(random() * 12) : 1 + Math.floor(random() * 20_000);
      write(s, stream.subarray(off, off + n));
      off += n;
      await Bun.sleep(1);
    }
    expect(pieces).toBeGreaterThan(50);
    expect(await c.frames(sent.length, 20_000)).toEqual(sent);
  });

  test("a frame delivered one byte per write is parsed once complete", async () => {
    const { port, sockets } = server(() => {});
    const c = await client(port);
    while (sockets.length === 0) await Bun.sleep(1);
    const frame = encodeClientFrame(7, serverIdFor(10), text("drip"));
    for (const byte of frame) {
      write(sockets[0]!, Uint8Array.of(byte));
      await Bun.sleep(2);
    }
    expect(await c.next()).toEqual({ messageId: 7, serverId: serverIdFor(10), body: text("drip") });
  });

  test("next() rejects with a clear error after its timeout", async () => {
    const { port } = echoServer();
    const c = await client(port);
    await expect(c.next(50)).rejects.toThrow(/no frame within 50 ms \(0 received so far\)/);
    await expect(c.frames(2, 50)).rejects.toThrow(/got 0 of 2 frames within 50 ms/);
  });

  test("frames pending at close are still delivered; then next() rejects and closed resolves", async () => {
    const { port } = server((s, chunk) => {
      write(s, chunk.slice());
      s.end();
    });
    const c = await client(port);
    c.send(1, 0, "last words");
    await c.closed;
    expect(c.isClosed).toBe(true);
    expect(str((await c.next()).body)).toBe("last words");
    await expect(c.next()).rejects.toThrow(/connection closed with no frame pending/);
    expect(() => c.send(1, 0, "late")).toThrow(/closed connection/);
  });

  test("a waiting next() is rejected when the peer closes", async () => {
    const { port } = server((s) => s.end());
    const c = await client(port);
    const waiting = c.next(5000);
    c.sendRaw(Uint8Array.of(1)); // any byte makes the server close
    await expect(waiting).rejects.toThrow(/connection closed with no frame pending/);
  });

  test("received-frame queue overflow is surfaced by next()", async () => {
    const { port } = echoServer();
    const c = await client(port, { maxQueuedFrames: 3 });
    for (let i = 0; i < 5; i++) c.send(i, 0, "x");
    while (c.framesReceived < 5) await Bun.sleep(5);
    expect(c.pendingFrames).toBe(3);
    await expect(c.next()).rejects.toThrow(/overflowed its bound of 3 frames/);
  });

  test("send() throws once its queue bound would be passed; bad fields are RangeErrors", async () => {
    const { port } = server(
      () => {},
      (s) => s.pause(),
    );
    const c = await client(port, { maxQueuedBytes: 1024 * 1024 });
    const body = new Uint8Array(60_000);
    // Nothing is written within one synchronous loop, so the bound is hit deterministically.
    expect(() => {
      for (let i = 0; i < 100; i++) c.send(1, 0, body);
    }).toThrow(/send queue full/);
    expect(c.queuedBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(() => c.send(1, 0, new Uint8Array(65536))).toThrow(RangeError);
    expect(() => c.send(65536, 0, "")).toThrow(RangeError);
  });

  test("pause() stops reading (the sender sees backpressure) and resume() delivers everything", async () => {
    const { port, sockets } = server(() => {});
    const c = await client(port);
    while (sockets.length === 0) await Bun.sleep(1);
    c.pause();
    const s = sockets[0]!;
    const FRAMES = 400;
    const frame = encodeClientFrame(3, 0, new Uint8Array(60_000));
    const shortWritesBefore = s.data.shortWrites;
    for (let i = 0; i < FRAMES; i++) write(s, frame);
    // ~24 MB cannot all fit in loopback socket buffers: wait until the server's socket takes only
    // part of a write (the buffers toward the paused client are full), not for a fixed time.
    await eventually(() => s.data.shortWrites > shortWritesBefore, "the server's writes to be held back");
    expect(s.data.queue.length).toBeGreaterThan(0);
    expect(c.framesReceived).toBeLessThan(FRAMES);
    c.resume();
    const got = await c.frames(FRAMES, 20_000);
    expect(got.every((f) => f.messageId === 3 && f.body.length === 60_000)).toBe(true);
    expect(c.framesReceived).toBe(FRAMES);
  });

  test("serverIdFor packs serverType, worldId and instId", () => {
    expect(parseServerId(serverIdFor(200, 7, 3))).toEqual({ isZip: false, worldId: 7, serverType: 200, instId: 3 });
    expect(serverIdFor(10)).toBe(10 << 8);
    expect(() => serverIdFor(256)).toThrow(RangeError);
  });
});
