import { describe, expect, test } from "bun:test";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { FrameReader } from "../../src/net/frame-reader.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { BackendFrameLayout, ClientFrameLayout } from "../../src/protocol/layouts.ts";
import { OpCode, encodeBackendFrame } from "../../src/protocol/server-frame.ts";
import { concat } from "../support/bytes.ts";

/** Collects what a reader delivers (copies: frames are only valid during the callback). */
class Collector<V extends string> {
  frames: Uint8Array[] = [];
  errors: V[] = [];
  stopAfter = Infinity;
  onFrame(b: Uint8Array, off: number, len: number): boolean {
    this.frames.push(b.slice(off, off + len));
    return this.frames.length < this.stopAfter;
  }
  onFramingError(reason: V): void {
    this.errors.push(reason);
  }
}


function clientFrames(n: number, size: (i: number) => number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => encodeClientFrame(i, 0x0a00 + i, new Uint8Array(size(i)).fill(i & 0xff)));
}

function setup(maxBody = 0xffff) {
  const pool = new BufferPool();
  const sink = new Collector<string>();
  const reader = new FrameReader(new ClientFrameLayout(maxBody), sink, pool);
  return { pool, sink, reader };
}

describe("FrameReader", () => {
  test("many frames in one chunk arrive in order without a pooled buffer", () => {
    const { pool, sink, reader } = setup();
    const frames = clientFrames(50, (i) => i * 3);
    reader.feed(concat(frames));
    expect(sink.frames).toEqual(frames);
    expect(pool.stats().outstanding).toBe(0);
    expect(reader.pendingBytes).toBe(0);
  });

  test("a range of a larger buffer is framed as if it were the whole chunk, split frames included", () => {
    const frames = clientFrames(6, (i) => 5 + i * 11);
    const all = concat(frames);
    // Bytes around each range that would break framing if read: a header claiming 0xffff-byte bodies.
    const junk = new Uint8Array(16).fill(0xff);
    for (let cut = 0; cut <= all.length; cut += 5) {
      const { pool, sink, reader } = setup(1024);
      const first = concat([junk, all.subarray(0, cut), junk]);
      const second = concat([junk, junk, all.subarray(cut), junk]);
      reader.feedRange(first, junk.length, junk.length + cut);
      reader.feedRange(second, 2 * junk.length, 2 * junk.length + all.length - cut);
      expect(sink.errors).toEqual([]);
      expect(sink.frames).toEqual(frames);
      expect(pool.stats().outstanding).toBe(0);
    }
  });

  test("a stream fed one byte at a time", () => {
    const { pool, sink, reader } = setup();
    const frames = clientFrames(20, (i) => (i * 37) % 300);
    const all = concat(frames);
    for (let i = 0; i < all.length; i++) reader.feed(all.subarray(i, i + 1));
    expect(sink.frames).toEqual(frames);
    expect(pool.stats().outstanding).toBe(0);
  });

  test("frames split at every possible offset", () => {
    const frames = [...clientFrames(3, () => 10), encodeClientFrame(1, 2, new Uint8Array(0)), ...clientFrames(2, () => 1)];
    const all = concat(frames);
    for (let cut = 0; cut <= all.length; cut++) {
      for (let cut2 = cut; cut2 <= all.length; cut2 += 7) {
        const { pool, sink, reader } = setup();
        reader.feed(all.subarray(0, cut));
        reader.feed(all.subarray(cut, cut2));
        reader.feed(all.subarray(cut2));
        expect(sink.frames).toEqual(frames);
        expect(pool.stats().outstanding).toBe(0);
      }
    }
  });

  test("body 0 and body 65535, split", () => {
    const { sink, reader } = setup();
    const big = encodeClientFrame(9, 9, new Uint8Array(0xffff).map((_, i) => i & 0xff));
    const empty = encodeClientFrame(1, 1, new Uint8Array(0));
    const all = concat([empty, big, empty]);
    for (let at = 0; at < all.length; at += 4096) reader.feed(all.subarray(at, Math.min(all.length, at + 4096)));
    expect(sink.frames).toEqual([empty, big, empty]);
  });

  test("holds a pooled buffer only while a partial frame is pending", () => {
    const { pool, reader } = setup();
    const f = encodeClientFrame(1, 1, new Uint8Array(100));
    reader.feed(f.subarray(0, 50));
    expect(reader.pendingBytes).toBe(50);
    expect(pool.stats().outstanding).toBe(1);
    reader.feed(f.subarray(50));
    expect(pool.stats().outstanding).toBe(0);
  });

  test("an oversize client length stops the reader with a violation and keeps nothing", () => {
    const { pool, sink, reader } = setup(1000);
    const ok = encodeClientFrame(1, 1, new Uint8Array(10));
    const bad = encodeClientFrame(2, 2, new Uint8Array(1001));
    reader.feed(concat([ok, bad.subarray(0, 4)]));
    expect(sink.errors).toEqual([]);
    reader.feed(bad.subarray(4, 12));
    expect(sink.errors).toEqual(["client_body_too_large"]);
    reader.feed(ok);
    expect(sink.frames.length).toBe(1);
    expect(pool.stats().outstanding).toBe(0);
  });

  test("the handler can stop delivery (connection closed mid-chunk)", () => {
    const { pool, sink, reader } = setup();
    sink.stopAfter = 2;
    const frames = clientFrames(5, () => 4);
    const all = concat(frames);
    reader.feed(all.subarray(0, all.length - 3));
    expect(sink.frames.length).toBe(2);
    reader.feed(all.subarray(all.length - 3));
    expect(sink.frames.length).toBe(2);
    expect(pool.stats().outstanding).toBe(0);
  });

  test("backend framing violations from the contract", () => {
    const cases: [number, string][] = [
      [-1, "length_negative"],
      [4, "length_below_gate_header"],
      [600_000, "length_over_limit"],
    ];
    for (const [length, reason] of cases) {
      const pool = new BufferPool();
      const sink = new Collector<string>();
      const reader = new FrameReader(new BackendFrameLayout(589_826), sink, pool);
      const good = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n, body: new Uint8Array(3) });
      const bad = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n });
      new DataView(bad.buffer).setInt32(0, length, true);
      reader.feed(concat([good, bad, good]));
      expect(sink.frames).toEqual([good]);
      expect(sink.errors).toEqual([reason]);
      expect(pool.stats().outstanding).toBe(0);
    }
  });
});
