// A bounded pool of byte buffers in a few fixed size classes.
// Connections borrow a buffer only while they hold pending bytes (a partial frame, or output the
// socket would not take yet) and give it back as soon as it empties, so thousands of idle
// connections pin no memory. The pool keeps at most maxIdleBytes of returned buffers; beyond that,
// returned buffers are left to the garbage collector.

export interface BufferPoolOptions {
  /** Ascending buffer sizes; a request is served by the smallest class that fits it. */
  readonly classes: readonly number[];
  /** Upper bound on bytes kept idle in the pool across all classes. */
  readonly maxIdleBytes: number;
}

export interface BufferPoolStats {
  /** Buffers handed out and not yet returned. */
  readonly outstanding: number;
  readonly outstandingBytes: number;
  readonly idleBytes: number;
  /** Buffers created because no idle buffer of the class was available. */
  readonly allocations: number;
  /** Requests larger than the largest class, served by a one-off allocation. */
  readonly oversize: number;
}

/** Size classes that suit client framing: most frames are small, none exceeds 65,543 bytes. */
export const DEFAULT_CLASSES: readonly number[] = [4096, 16384, 65544, 262144, 1048576];

export class BufferPool {
  private readonly classes: readonly number[];
  private readonly idle: Uint8Array[][];
  private readonly maxIdleBytes: number;
  private idleBytes = 0;
  private outstanding = 0;
  private outstandingBytes = 0;
  private allocations = 0;
  private oversize = 0;

  constructor(options: BufferPoolOptions = { classes: DEFAULT_CLASSES, maxIdleBytes: 64 * 1024 * 1024 }) {
    const sorted = [...options.classes].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted[0]! <= 0) throw new RangeError("BufferPool needs at least one positive size class");
    this.classes = sorted;
    this.idle = sorted.map(() => []);
    this.maxIdleBytes = options.maxIdleBytes;
  }

  get largestClass(): number {
    return this.classes[this.classes.length - 1]!;
  }

  /** A buffer of at least minBytes (its length is the class size, or minBytes when oversize). */
  acquire(minBytes: number): Uint8Array {
    const c = this.classIndex(minBytes);
    let buf: Uint8Array;
    if (c < 0) {
      this.oversize++;
      buf = new Uint8Array(minBytes);
    } else {
      const free = this.idle[c]!;
      const reused = free.pop();
      if (reused) {
        this.idleBytes -= reused.length;
        buf = reused;
      } else {
        this.allocations++;
        buf = new Uint8Array(this.classes[c]!);
      }
    }
    this.outstanding++;
    this.outstandingBytes += buf.length;
    return buf;
  }

  /** Returns a buffer obtained from acquire. Each buffer must be released at most once. */
  release(buf: Uint8Array): void {
    this.outstanding--;
    this.outstandingBytes -= buf.length;
    const c = this.classes.indexOf(buf.length);
    if (c < 0 || this.idleBytes + buf.length > this.maxIdleBytes) return;
    this.idle[c]!.push(buf);
    this.idleBytes += buf.length;
  }

  stats(): BufferPoolStats {
    return {
      outstanding: this.outstanding,
      outstandingBytes: this.outstandingBytes,
      idleBytes: this.idleBytes,
      allocations: this.allocations,
      oversize: this.oversize,
    };
  }

  private classIndex(minBytes: number): number {
    const classes = this.classes;
    for (let i = 0; i < classes.length; i++) if (classes[i]! >= minBytes) return i;
    return -1;
  }
}
