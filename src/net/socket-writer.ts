import { invariant } from "../invariant.ts";
import type { BufferPool } from "./buffer-pool.ts";
import { RingBuffer } from "./ring-buffer.ts";

// Writers for Bun sockets, whose write() may take only part of a buffer. Each writer keeps its own
// bounded queue of what the socket did not take and resumes on the socket's drain event.

/** The part of a Bun socket a writer needs (also satisfied by test doubles of real sockets). */
export interface ByteSink {
  /** Bytes taken (possibly fewer than asked), or -1 once the socket is closed. */
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
}

/**
 * A pooled ring of bytes the socket has not taken yet. write() sends at once when nothing waits;
 * enqueue() + flush() gather several frames into one send (the gateway's client side). The ring
 * holds a buffer only while bytes wait, so idle connections hold none.
 */
export class QueuedSocketWriter {
  private readonly queue: RingBuffer;

  constructor(
    private readonly sink: ByteSink,
    pool: BufferPool,
    /** Most bytes that may wait in the queue. */
    readonly limit: number,
  ) {
    this.queue = new RingBuffer(pool, limit);
  }

  get queuedBytes(): number {
    return this.queue.length;
  }

  /** Sends now if nothing waits, queuing what the socket does not take; false past the bound. */
  write(b: Uint8Array, off: number, len: number): boolean {
    if (this.queue.length === 0) {
      const n = this.sink.write(b, off, len);
      if (n === len || n < 0) return true; // n < 0: closed; the close handler tears down
      off += n;
      len -= n;
    }
    return this.queue.push(b, off, len);
  }

  /** Queues bytes for the next flush; returns false (queuing nothing) past the queue bound. */
  enqueue(b: Uint8Array, off: number, len: number): boolean {
    return this.queue.push(b, off, len);
  }

  /** Writes what is queued; call after queuing and from the drain handler. True once empty. */
  flush(): boolean {
    const q = this.queue;
    while (q.length > 0) {
      const run = q.headRunLength();
      const n = this.sink.write(q.bytes, q.headOffset, run);
      if (n < 0) {
        q.clear(); // closed: nothing more can be written; the close handler tears down
        return true;
      }
      if (n === 0) return false;
      q.consume(n);
      if (n < run) return false;
    }
    return true;
  }

  /** Drops anything queued and gives the buffer back (the socket is gone). */
  release(): void {
    this.queue.clear();
  }
}

function noop(): void {}

/**
 * The batched writers owed a flush this event-loop turn, flushed together from one setImmediate.
 * Bun allocates an Immediate object per setImmediate call; one per writer per turn was the only
 * allocation the gateway's own code made on the message path (bench/alloc-per-roundtrip.ts), and
 * writers of the same turn (one per backend connection) now share it. Each writer is listed at
 * most once (its `scheduled` flag), so the list is bounded by the live writers.
 */
let due: BatchedSocketWriter[] = [];
/** The list being flushed; writers scheduled meanwhile go to `due`, flushed next turn as before. */
let flushing: BatchedSocketWriter[] = [];
let turnScheduled = false;

function flushDue(): void {
  turnScheduled = false;
  const list = due;
  due = flushing;
  flushing = list;
  let i = 0;
  try {
    for (; i < list.length; i++) list[i]!.flushScheduled();
  } finally {
    // A flush that threw must not strand the writers after it (each stays marked scheduled):
    // they go to the next turn, and the error propagates as it did from its own setImmediate.
    for (i++; i < list.length; i++) scheduleFlush(list[i]!);
    list.length = 0;
  }
}

function scheduleFlush(writer: BatchedSocketWriter): void {
  due.push(writer);
  if (turnScheduled) return;
  turnScheduled = true;
  setImmediate(flushDue);
}

/**
 * Queued bytes past which reserve() writes the batch at once instead of waiting for the end of the
 * turn. An event loop with a backlog of reads dispatches them before it runs immediates (Bun and
 * Node alike; under workload c's bursts a setImmediate from a data callback ran 11,928 reads and
 * 211 ms later), and a batch held that long is latency for every session on the connection and,
 * past high water, pauses their clients. 64 KiB is far above a normal turn's batch, so the common
 * path is unchanged.
 */
export const EARLY_WRITE_BYTES = 64 * 1024;

/** Bytes queued across several writers together, so one bound can cover them all. */
export class SharedQueueTally {
  queued = 0;
}

const UNSHARED = new SharedQueueTally();

/**
 * Stamped over the first bytes of each reservation in development and checked at the next flush:
 * still there means the caller yielded (or forgot) before filling its space. Eight bytes, so a
 * real frame (client header: length, message ID, server ID) matching it is not a practical worry.
 */
const UNFILLED_HI = 0xdeadbeef;
const UNFILLED_LO = 0xfeedface;
const UNFILLED_SIZE = 8;

/**
 * Accumulates many frames into one buffer and writes them with one syscall per event-loop turn
 * (sooner once EARLY_WRITE_BYTES are waiting).
 * Used toward backends, where many sessions share a connection: callers reserve space, encode in
 * place and commit. Past the high-water mark it reports congestion; it never holds more than limit.
 */
export class BatchedSocketWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private readonly initialCapacity: number;
  private start = 0;
  private end = 0;
  private scheduled = false;
  /** Cleared when an early write was not taken whole: the socket is full, so wait for flush or drain. */
  private earlyWrites = true;
  /**
   * Set once the queue passes highWater, cleared when onRelieved fires. A flag, not a comparison
   * made at flush time: the queue can fall below highWater in one flush and below half of it only
   * in a later one, and the callers paused at the first must still be resumed at the second.
   */
  private owesRelief = false;
  private sink: ByteSink | null = null;
  /**
   * Development only: where reservations made since the last flush start (bounded by limit / 8:
   * only reservations of at least 8 bytes are recorded).
   */
  private readonly stamped: number[] = [];

  constructor(
    initialCapacity: number,
    readonly highWater: number,
    readonly limit: number,
    /** Called once the queue falls from above highWater to below half of it. */
    private readonly onRelieved: () => void,
    /** Called after each write that the socket took whole or in part. */
    private readonly onWritten: () => void = noop,
    /** Where this writer's queued bytes are added up with other writers'. */
    private readonly shared: SharedQueueTally = UNSHARED,
  ) {
    this.initialCapacity = initialCapacity;
    this.buf = new Uint8Array(initialCapacity);
    this.dv = new DataView(this.buf.buffer);
  }

  get queuedBytes(): number {
    return this.end - this.start;
  }

  get congested(): boolean {
    return this.end - this.start > this.highWater;
  }

  /** Passed highWater and not yet back to half of it: the reader is not keeping up. */
  get lagging(): boolean {
    return this.owesRelief;
  }

  /** Starts writing to a connected socket (bytes reserved before this wait for it). */
  attach(sink: ByteSink): void {
    this.sink = sink;
    this.schedule();
  }

  /** Stops writing; keeps nothing. */
  detach(): void {
    this.sink = null;
    this.shared.queued -= this.end - this.start;
    this.start = this.end = 0;
    this.owesRelief = false;
    this.stamped.length = 0;
  }

  /**
   * Reserves n bytes and returns their offset in `bytes`, or -1 past the limit. The caller must
   * fill them before yielding to the event loop.
   */
  reserve(n: number): number {
    if (this.end - this.start >= EARLY_WRITE_BYTES && this.earlyWrites) this.writeEarly();
    if (this.end - this.start + n > this.limit) return -1;
    if (this.end + n > this.buf.length) this.makeRoom(n);
    const at = this.end;
    if (process.env.NODE_ENV !== "production" && n >= UNFILLED_SIZE) {
      this.dv.setUint32(at, UNFILLED_HI);
      this.dv.setUint32(at + 4, UNFILLED_LO);
      this.stamped.push(at);
    }
    this.end += n;
    this.shared.queued += n;
    if (this.end - this.start > this.highWater) this.owesRelief = true;
    this.schedule();
    return at;
  }

  get bytes(): Uint8Array {
    return this.buf;
  }

  /** A DataView over `bytes` (same lifetime rules). */
  get view(): DataView {
    return this.dv;
  }

  private setBuffer(buf: Uint8Array): void {
    this.buf = buf;
    this.dv = new DataView(buf.buffer);
  }

  /**
   * Calls onRelieved once a flush finds the queue at or below half of highWater, scheduling one
   * if nothing else would: for owners that resume paused producers a few at a time.
   */
  requestRelief(): void {
    this.owesRelief = true;
    this.schedule();
  }

  /** Writes what is queued; call from the socket's drain handler too. */
  flush(): void {
    if (this.sink === null) return;
    this.earlyWrites = true;
    if (this.end !== this.start) {
      if (!this.writeQueued()) return; // closed: the close handler detaches
      // A burst grew the buffer; don't keep megabytes per idle connection afterwards.
      if (this.start === this.end && this.buf.length > this.initialCapacity * 16) this.setBuffer(new Uint8Array(this.initialCapacity));
    } else if (process.env.NODE_ENV !== "production") {
      this.checkFilled();
    }
    this.relieve();
  }

  /** One write of everything queued; false once the socket is closed. */
  private writeQueued(): boolean {
    if (process.env.NODE_ENV !== "production") this.checkFilled();
    const n = this.sink!.write(this.buf, this.start, this.end - this.start);
    if (n < 0) return false;
    this.start += n;
    this.shared.queued -= n;
    if (n > 0) this.onWritten();
    if (this.start === this.end) this.start = this.end = 0;
    return true;
  }

  /**
   * The batch passed EARLY_WRITE_BYTES before the end of its turn: write it now. Every reservation
   * made so far is filled (callers fill before they reserve again), and relief is left to the
   * scheduled flush, so no paused client resumes in the middle of another's frame. A socket that
   * took less than all of it gets no more early writes until that flush or its drain.
   */
  private writeEarly(): void {
    if (this.sink === null) return;
    if (!this.writeQueued() || this.end !== this.start) this.earlyWrites = false;
  }

  /** The rule reserve() states: space is filled before the caller yields, so before any flush. */
  private checkFilled(): void {
    // Guarded here too, so the release build keeps no trace of the check (its callers are guarded).
    if (process.env.NODE_ENV === "production") return;
    const stamped = this.stamped;
    const dv = this.dv;
    for (let i = 0; i < stamped.length; i++) {
      const at = stamped[i]!;
      const unfilled = dv.getUint32(at) === UNFILLED_HI && dv.getUint32(at + 4) === UNFILLED_LO;
      invariant(!unfilled, "reserved space is filled before the caller yields");
    }
    stamped.length = 0;
  }

  private relieve(): void {
    if (this.owesRelief && this.end - this.start <= this.highWater / 2) {
      this.owesRelief = false;
      this.onRelieved();
    }
  }

  private schedule(): void {
    if (this.scheduled || this.sink === null) return;
    this.scheduled = true;
    scheduleFlush(this);
  }

  /** The end-of-turn flush this writer was listed for (see scheduleFlush). */
  flushScheduled(): void {
    this.scheduled = false;
    this.flush();
  }

  private makeRoom(n: number): void {
    const used = this.end - this.start;
    let cap = this.buf.length;
    while (cap < used + n) cap *= 2;
    if (cap === this.buf.length) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(this.start, this.end));
      this.setBuffer(next);
    }
    if (process.env.NODE_ENV !== "production") {
      for (let i = 0; i < this.stamped.length; i++) this.stamped[i]! -= this.start;
    }
    this.start = 0;
    this.end = used;
  }
}
