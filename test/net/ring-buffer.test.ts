import { describe, expect, test } from "bun:test";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { RingBuffer } from "../../src/net/ring-buffer.ts";

function drain(r: RingBuffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.length; i++) out.push(r.byteAt(i));
  return out;
}

describe("BufferPool", () => {
  test("serves the smallest class that fits and reuses returned buffers", () => {
    const pool = new BufferPool({ classes: [16, 64], maxIdleBytes: 1024 });
    const a = pool.acquire(10);
    expect(a.length).toBe(16);
    pool.release(a);
    expect(pool.acquire(16)).toBe(a);
    expect(pool.acquire(17).length).toBe(64);
    expect(pool.stats()).toMatchObject({ outstanding: 2, allocations: 2 });
  });

  test("keeps at most maxIdleBytes idle; oversize requests are one-off", () => {
    const pool = new BufferPool({ classes: [100], maxIdleBytes: 250 });
    const bufs = [pool.acquire(1), pool.acquire(1), pool.acquire(1)];
    for (const b of bufs) pool.release(b);
    expect(pool.stats().idleBytes).toBe(200);
    const big = pool.acquire(1000);
    expect(big.length).toBe(1000);
    pool.release(big);
    expect(pool.stats()).toMatchObject({ idleBytes: 200, oversize: 1, outstanding: 0 });
  });
});

describe("RingBuffer", () => {
  test("wraps around and keeps FIFO order", () => {
    const pool = new BufferPool({ classes: [8, 32], maxIdleBytes: 1024 });
    const r = new RingBuffer(pool, 32);
    r.push(Uint8Array.of(1, 2, 3, 4, 5, 6), 0, 6);
    r.consume(4);
    r.push(Uint8Array.of(7, 8, 9, 10), 0, 4); // wraps inside the 8-byte buffer
    expect(r.capacity).toBe(8);
    expect(drain(r)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(r.headRunLength()).toBe(4);
    r.linearize();
    expect(r.headOffset).toBe(0);
    expect([...r.bytes.subarray(0, 6)]).toEqual([5, 6, 7, 8, 9, 10]);
  });

  test("grows into a larger class preserving wrapped content", () => {
    const pool = new BufferPool({ classes: [8, 32], maxIdleBytes: 1024 });
    const r = new RingBuffer(pool, 32);
    r.push(Uint8Array.of(1, 2, 3, 4, 5, 6, 7), 0, 7);
    r.consume(5);
    r.push(Uint8Array.of(8, 9, 10, 11), 0, 4);
    r.push(Uint8Array.of(12, 13, 14, 15, 16), 0, 5);
    expect(r.capacity).toBe(32);
    expect(drain(r)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(pool.stats().outstanding).toBe(1);
  });

  test("refuses to pass its limit and returns its buffer when emptied", () => {
    const pool = new BufferPool({ classes: [8], maxIdleBytes: 1024 });
    const r = new RingBuffer(pool, 8);
    expect(r.push(new Uint8Array(6), 0, 6)).toBe(true);
    expect(r.push(new Uint8Array(3), 0, 3)).toBe(false);
    expect(r.length).toBe(6);
    r.consume(6);
    expect(r.capacity).toBe(0);
    expect(pool.stats().outstanding).toBe(0);
  });

  test("push honours offset and length", () => {
    const pool = new BufferPool({ classes: [16], maxIdleBytes: 1024 });
    const r = new RingBuffer(pool, 16);
    r.push(Uint8Array.of(0, 1, 2, 3, 4), 1, 3);
    expect(drain(r)).toEqual([1, 2, 3]);
  });
});
