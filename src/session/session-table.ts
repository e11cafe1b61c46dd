// A hash table from a u32 key (a session ID's low half) to a value: SessionManager's one table.
//
// It replaces a Map for memory: a heap snapshot of a gateway with 5,000 sessions showed the
// session Maps' backing stores at ~131 bytes per session. Here a slot is 12 bytes (an Int32Array key and a
// plain-array value) and the table is kept between 1/8 and 1/2 full, so a session costs 24-48
// bytes of table in the usual 1/4-1/2 range. Measured (Bun heapStats, whole SessionManager minus
// the sessions themselves): 100,000 sessions ~29 bytes each (Maps: ~102), 5,000 ~40 (Maps: ~123).
//
// Open addressing with linear probing. The home slot is a Fibonacci hash (multiply by 2^32/phi,
// keep the top bits): one multiply, and the low halves of session IDs (a per-millisecond counter
// under a millisecond clock) are near-arithmetic sequences, which it spreads evenly. On simulated
// ID streams (bursts down to one session per 30 ms, with and without churn) its mean probe length
// was 0.89x a random hash's on average and 1.13x at worst; for one ID per millisecond, 0 (every
// key at its home slot), where murmur3's finalizer gave 0.2-0.5.
// Deletion shifts the rest of the probe chain back instead of leaving tombstones, so lookups stay
// as short after heavy churn as on a fresh table.
//
// Key 0 is a legal key, so a slot is empty when its value is undefined, whatever its key.
// Keys are stored as int32 (`key | 0`: all int32 arithmetic on the hot path); a u32 key and its
// int32 bit pattern therefore name the same entry.
//
// Bound: a table grows only when an insert would make it more than half full, so its capacity
// stays under 4x the most entries it ever held (or is its initial capacity); it halves when a
// delete leaves it under 1/8 full. Its owner bounds the entries (SessionManager: maxSessions,
// since create() refuses beyond that).

import { invariant } from "../invariant.ts";

/** 2^32 / golden ratio, as an int32. */
const FIBONACCI = 0x9e3779b9 | 0;
const DEFAULT_CAPACITY = 16;

export class SessionTable<V extends object> {
  private keys: Int32Array;
  private vals: (V | undefined)[];
  private mask: number;
  /** 32 - log2(capacity): the home slot is the product's top bits. */
  private shift: number;
  private count = 0;
  /** Bumped by every insert and delete, so iteration can detect them. */
  private version = 0;
  private readonly minCapacity: number;

  /** initialCapacity: slots to start with (a power of two, at least 2); never shrinks below it. */
  constructor(initialCapacity = DEFAULT_CAPACITY) {
    if (initialCapacity < 2 || (initialCapacity & (initialCapacity - 1)) !== 0) {
      throw new RangeError(`SessionTable capacity must be a power of two >= 2, got ${initialCapacity}`);
    }
    this.minCapacity = initialCapacity;
    this.keys = new Int32Array(initialCapacity);
    this.vals = emptySlots(initialCapacity);
    this.mask = initialCapacity - 1;
    this.shift = Math.clz32(initialCapacity) + 1;
  }

  get size(): number {
    return this.count;
  }

  /** Slots allocated (for tests and diagnostics). */
  get capacity(): number {
    return this.mask + 1;
  }

  get(key: number): V | undefined {
    const k = key | 0;
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    for (let i = Math.imul(k, FIBONACCI) >>> this.shift; ; i = (i + 1) & mask) {
      const v = vals[i];
      if (v === undefined || keys[i] === k) return v;
    }
  }

  has(key: number): boolean {
    return this.find(key | 0) >= 0;
  }

  /** Inserts or replaces. */
  set(key: number, value: V): void {
    const k = key | 0;
    const at = this.find(k);
    if (at >= 0) {
      this.vals[at] = value;
      return;
    }
    this.insert(k, value);
  }

  /** Inserts a key known to be absent (one probe fewer than set). */
  add(key: number, value: V): void {
    const k = key | 0;
    if (process.env.NODE_ENV !== "production") invariant(this.find(k) < 0, "a key added to a SessionTable is not in it yet");
    this.insert(k, value);
  }

  delete(key: number): boolean {
    const at = this.find(key | 0);
    if (at < 0) return false;
    this.deleteAt(at);
    return true;
  }

  /** Deletes the entry only if key maps to this very value (one probe for get-compare-delete). */
  deleteIf(key: number, value: V): boolean {
    const at = this.find(key | 0);
    if (at < 0 || this.vals[at] !== value) return false;
    this.deleteAt(at);
    return true;
  }

  /**
   * Every value once, in slot order. The table must not gain or lose entries meanwhile (a
   * deletion shifts entries back past the cursor, a growth rehashes): that throws.
   */
  *values(): IterableIterator<V> {
    const version = this.version;
    const vals = this.vals;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (v === undefined) continue;
      yield v;
      if (this.version !== version) throw new Error("SessionTable changed during iteration");
    }
  }

  /** The slot holding k, or -1. */
  private find(k: number): number {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    for (let i = Math.imul(k, FIBONACCI) >>> this.shift; ; i = (i + 1) & mask) {
      if (vals[i] === undefined) return -1;
      if (keys[i] === k) return i;
    }
  }

  private insert(k: number, value: V): void {
    if ((this.count + 1) * 2 > this.capacity) this.resize(this.capacity * 2);
    this.place(k, value);
    this.count++;
    this.version++;
  }

  private deleteAt(hole: number): void {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    // Walk the rest of the chain; an entry may fill the hole unless its home slot lies cyclically
    // after the hole, up to the entry itself (moving it would put it before its home, where
    // lookups never look). Each move leaves a new hole further on; the chain ends at an empty slot.
    for (let j = (hole + 1) & mask; vals[j] !== undefined; j = (j + 1) & mask) {
      const home = Math.imul(keys[j]!, FIBONACCI) >>> this.shift;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys[hole] = keys[j]!;
        vals[hole] = vals[j];
        hole = j;
      }
    }
    keys[hole] = 0;
    vals[hole] = undefined;
    this.count--;
    this.version++;
    if (this.count * 8 < this.capacity && this.capacity > this.minCapacity) this.resize(this.capacity / 2);
  }

  /** Stores an entry known to be absent in the first free slot of its chain. */
  private place(k: number, value: V): void {
    const vals = this.vals;
    const mask = this.mask;
    let i = Math.imul(k, FIBONACCI) >>> this.shift;
    while (vals[i] !== undefined) i = (i + 1) & mask;
    this.keys[i] = k;
    vals[i] = value;
  }

  private resize(capacity: number): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    this.keys = new Int32Array(capacity);
    this.vals = emptySlots(capacity);
    this.mask = capacity - 1;
    this.shift = Math.clz32(capacity) + 1;
    for (let i = 0; i < oldVals.length; i++) {
      const v = oldVals[i];
      if (v !== undefined) this.place(oldKeys[i]!, v);
    }
  }
}

/** An array of n undefined slots, exactly n long and without holes (JSC: contiguous storage). */
function emptySlots<V>(n: number): (V | undefined)[] {
  return new Array<V | undefined>(n).fill(undefined);
}
