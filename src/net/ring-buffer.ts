import type { BufferPool } from "./buffer-pool.ts";
import { copyBytes } from "../bytes/copy-bytes.ts";

// A byte FIFO over one pooled buffer used as a ring: bytes are appended at the tail and consumed
// from the head without moving the rest. It holds a pooled buffer only while non-empty, grows by
// moving to a larger size class, and refuses to grow past its limit (the caller decides what a
// full queue means: close the slow reader, reject the frame).

export class RingBuffer {
  private buf: Uint8Array | null = null;
  private head = 0;
  private size = 0;

  constructor(
    private readonly pool: BufferPool,
    /** Most bytes this ring may hold at once. */
    readonly limit: number,
  ) {}

  get length(): number {
    return this.size;
  }

  /** Bytes of the pooled buffer held right now (0 when empty). */
  get capacity(): number {
    return this.buf === null ? 0 : this.buf.length;
  }

  /** Appends len bytes of src from off. Returns false, appending nothing, past the limit. */
  push(src: Uint8Array, off: number, len: number): boolean {
    if (len === 0) return true;
    const needed = this.size + len;
    if (needed > this.limit) return false;
    if (this.buf === null || needed > this.buf.length) this.grow(needed);
    const buf = this.buf!;
    const cap = buf.length;
    let tail = this.head + this.size;
    if (tail >= cap) tail -= cap;
    const first = Math.min(len, cap - tail);
    copyBytes(src, off, buf, tail, first);
    if (first < len) copyBytes(src, off + first, buf, 0, len - first);
    this.size = needed;
    return true;
  }

  /** The byte at logical index i (0 = head). */
  byteAt(i: number): number {
    const buf = this.buf!;
    let p = this.head + i;
    if (p >= buf.length) p -= buf.length;
    return buf[p]!;
  }

  /** Length of the contiguous run that starts at the head (what one socket write can take). */
  headRunLength(): number {
    if (this.buf === null) return 0;
    return Math.min(this.size, this.buf.length - this.head);
  }

  /** The backing buffer and head offset, valid until the next push, consume or linearize. */
  get bytes(): Uint8Array {
    return this.buf!;
  }

  get headOffset(): number {
    return this.head;
  }

  /** Moves the content so it starts at offset 0 of the buffer (a no-op unless it wraps). */
  linearize(): void {
    const buf = this.buf;
    if (buf === null || this.head + this.size <= buf.length) return;
    const copy = new Uint8Array(this.size);
    const first = buf.length - this.head;
    copy.set(buf.subarray(this.head), 0);
    copy.set(buf.subarray(0, this.size - first), first);
    buf.set(copy, 0);
    this.head = 0;
  }

  /** Drops n bytes from the head; gives the buffer back to the pool once empty. */
  consume(n: number): void {
    if (n >= this.size) {
      this.clear();
      return;
    }
    this.size -= n;
    this.head += n;
    if (this.head >= this.buf!.length) this.head -= this.buf!.length;
  }

  clear(): void {
    if (this.buf !== null) this.pool.release(this.buf);
    this.buf = null;
    this.head = 0;
    this.size = 0;
  }

  private grow(needed: number): void {
    const next = this.pool.acquire(needed);
    const old = this.buf;
    if (old !== null) {
      const first = Math.min(this.size, old.length - this.head);
      next.set(old.subarray(this.head, this.head + first), 0);
      if (first < this.size) next.set(old.subarray(0, this.size - first), first);
      this.pool.release(old);
    }
    this.buf = next;
    this.head = 0;
  }
}
