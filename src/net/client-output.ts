import { invariant } from "../invariant.ts";
import type { BufferPool } from "./buffer-pool.ts";
import { type ByteSink, QueuedSocketWriter } from "./socket-writer.ts";

// A client port's output, whatever carries it (a TCP socket, a WebSocket message per write): the
// ClientPort contract's send / lend / flush, in one place for every transport.
//
// The common case, one frame per flush, is lent: written at the flush straight from the lender's
// buffer (a backend chunk), never copied. Anything more is queued in a bounded, pooled
// QueuedSocketWriter, created the first time output has to wait. A lent frame always goes out
// first, so before anything is queued behind it, it is copied (spilled) into the queue itself.

/** What the port that owns the output does when the output needs it. */
export interface ClientOutputOwner {
  /**
   * Bytes were queued while nothing was: output is waiting from now (the write deadline's start).
   * Called only for an owner that asked for it (timesQueue).
   */
  onOutputWaiting(): void;
  /** The queue would pass its bound: the client is not reading. The owner drops it (slow_reader). */
  onOutputOverflow(): void;
}

export class ClientOutput {
  /** A frame lent by lend(), written from the lender's buffer at the next flush. */
  private lent: Uint8Array | null = null;
  private lentOff = 0;
  private lentLen = 0;
  /** Created when output first has to wait, and kept: an idle client that never queued holds none. */
  private writer: QueuedSocketWriter | null = null;

  constructor(
    /** Where bytes go; redirect() may change it before anything was queued. */
    private sink: ByteSink,
    private readonly buffers: BufferPool,
    /** Bytes the queue may hold (server.client_write_queue_limit). */
    private readonly limit: number,
    private readonly owner: ClientOutputOwner,
    /**
     * Tell the owner when queued output starts waiting. An owner that times its output otherwise
     * (Bun's backpressure) passes false, and the spill path makes no call into it.
     */
    private readonly timesQueue: boolean,
  ) {}

  get queuedBytes(): number {
    return this.writer === null ? 0 : this.writer.queuedBytes;
  }

  /** A frame is lent and not yet written (checked against the lender's contract in development). */
  get holdsLent(): boolean {
    return this.lent !== null;
  }

  /** From now on output goes to `sink` (a sniffed WebSocket's stream, before any output). */
  redirect(sink: ByteSink): void {
    if (process.env.NODE_ENV !== "production") invariant(this.writer === null && this.lent === null, "output is redirected before any was written");
    this.sink = sink;
  }

  /** ClientPort.send: queues a copy. False when the bound was passed (the owner was told). */
  send(b: Uint8Array, off: number, len: number): boolean {
    if (this.lent !== null && !this.spillLent()) return false;
    return this.enqueue(b, off, len);
  }

  /** ClientPort.lend: kept by reference when nothing waits, else queued as send() queues it. */
  lend(b: Uint8Array, off: number, len: number): boolean {
    if (this.lent === null && this.queuedBytes === 0) {
      this.lent = b;
      this.lentOff = off;
      this.lentLen = len;
      return true;
    }
    return this.send(b, off, len);
  }

  /**
   * Writes the lent frame, then the queue; true once nothing waits. What the sink does not take
   * of a lent frame is queued (copied) before the lender's buffer can be reused; a sink that
   * reports the connection gone (a negative count) takes nothing more.
   */
  writeOut(): boolean {
    const lent = this.takeLent();
    if (lent !== null && !this.lentWritten(lent, this.sink.write(lent, this.lentOff, this.lentLen))) return false;
    return this.flushQueue();
  }

  /**
   * For a port that writes the lent frame itself, so that the write (the one per-message call into
   * the transport) is a call site of its own class rather than one shared by every transport:
   * the lent frame, now no longer lent (its range: lentOff, lentLen), or null. Then lentWritten().
   */
  takeLent(): Uint8Array | null {
    const lent = this.lent;
    this.lent = null;
    return lent;
  }

  /** Start and length of the frame takeLent() returned. */
  get lentOffset(): number {
    return this.lentOff;
  }

  get lentLength(): number {
    return this.lentLen;
  }

  /**
   * `n` bytes of the frame takeLent() returned were written: the rest is queued (copied), unless
   * n is negative (the connection is gone). False when that passed the queue's bound.
   */
  lentWritten(lent: Uint8Array, n: number): boolean {
    // Nothing is queued behind it: lend() keeps a frame only when nothing is, and enqueue()
    // checks (in development) that a lent frame was spilled before anything is queued.
    const len = this.lentLen;
    return n < 0 || n >= len || this.enqueue(lent, this.lentOff + n, len - n);
  }

  /** Writes what is queued; true once nothing waits. */
  flushQueue(): boolean {
    return this.writer === null || this.writer.flush();
  }

  /** Drops what is queued (the client is cut off, or gone): its pooled buffers go back. */
  discard(): void {
    this.lent = null;
    this.writer?.release();
  }

  /** Copies the lent frame into the queue (another frame is coming after it). */
  private spillLent(): boolean {
    const lent = this.lent!;
    this.lent = null;
    return this.enqueue(lent, this.lentOff, this.lentLen);
  }

  private enqueue(b: Uint8Array, off: number, len: number): boolean {
    // Queued bytes go out after the lent frame, which is written from the lender's buffer: anything
    // queued first would overtake it.
    if (process.env.NODE_ENV !== "production") invariant(this.lent === null, "a lent frame is copied out before more is queued");
    const writer = (this.writer ??= new QueuedSocketWriter(this.sink, this.buffers, this.limit));
    if (this.timesQueue && writer.queuedBytes === 0) this.owner.onOutputWaiting();
    if (writer.enqueue(b, off, len)) return true;
    this.owner.onOutputOverflow();
    return false;
  }
}
