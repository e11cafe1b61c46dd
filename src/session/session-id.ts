// Session IDs: positive int64, unique across a fleet, never repeated by one process.
//   bit 63      0 (so the ID is always positive as an i64)
//   bits 52-62  11-bit node: a hash of the gateway name (the fleet part); in a group of worker
//               processes (server.workers) its low bits are the worker's index instead, so the
//               workers of one gateway can never hand out the same ID
//   bits 12-51  40 bits of milliseconds since 2024-01-01 (good until 2058)
//   bits 0-11   per-millisecond sequence
// The generator keeps a logical clock: when 4,096 IDs are taken in one millisecond it borrows the
// next millisecond, and it never steps backwards when the wall clock does, so it cannot repeat.
// The hot path carries IDs as two u32 halves; the BigInt form is for logs, JSON and tests.

import { fnv1a32 } from "../routing/hash.ts";

export type SessionId = bigint & { readonly __brand: "SessionId" };

const EPOCH_MS = Date.UTC(2024, 0, 1);
const SEQ_BITS = 12;
const SEQ_MAX = (1 << SEQ_BITS) - 1;
const NODE_BITS = 11;
const TIME_LOW_BITS = 20; // time bits that land in the low u32 (32 - SEQ_BITS)
/** The most worker processes one gateway may run: their index takes at most 6 of the 11 node bits. */
export const MAX_WORKERS = 64;

/** Which worker of a group a generator belongs to; { index: 0, count: 1 } is a single process. */
export interface WorkerSlot {
  readonly index: number;
  readonly count: number;
}

export const SINGLE_PROCESS: WorkerSlot = { index: 0, count: 1 };

/** How many low node bits carry the worker index in a group of `count`: 0 for a single process. */
export function workerBits(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_WORKERS) throw new RangeError(`worker count ${count}: expected 1..${MAX_WORKERS}`);
  return Math.ceil(Math.log2(count));
}

/** The node field of a worker's IDs: the name's hash with its low bits replaced by the worker index. */
export function nodeFor(gatewayName: string, slot: WorkerSlot): number {
  const bits = workerBits(slot.count);
  if (!Number.isInteger(slot.index) || slot.index < 0 || slot.index >= slot.count) throw new RangeError(`worker index ${slot.index}: expected 0..${slot.count - 1}`);
  const mask = (1 << bits) - 1;
  return (nodeHash(gatewayName) & ~mask) | slot.index;
}

/** An ID's fields, for logs, tools and tests. */
export interface DecodedSessionId {
  readonly node: number;
  /** Unix milliseconds (the logical clock: at or after the real time of issue). */
  readonly unixMs: number;
  readonly seq: number;
}

export function decodeSessionId(id: bigint): DecodedSessionId {
  return {
    node: Number((id >> BigInt(64 - 1 - NODE_BITS)) & BigInt((1 << NODE_BITS) - 1)),
    unixMs: EPOCH_MS + Number((id >> BigInt(SEQ_BITS)) & ((1n << 40n) - 1n)),
    seq: Number(id & BigInt(SEQ_MAX)),
  };
}

/** The index of the worker that issued `id`, in a group of `count` workers. */
export function workerOfSessionId(id: bigint, count: number): number {
  return decodeSessionId(id).node & ((1 << workerBits(count)) - 1);
}

/** FNV-1a of the name, folded to 11 bits. */
export function nodeHash(gatewayName: string): number {
  const h = fnv1a32(gatewayName);
  return (h ^ (h >>> NODE_BITS) ^ (h >>> 22)) & ((1 << NODE_BITS) - 1);
}

export function sessionIdFromParts(hi: number, lo: number): SessionId {
  return ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)) as SessionId;
}

export function sessionIdHi(id: bigint): number {
  return Number((id >> 32n) & 0xffffffffn);
}

export function sessionIdLo(id: bigint): number {
  return Number(id & 0xffffffffn);
}

export class SessionIdGenerator {
  private readonly node: number;
  private lastMs = -1;
  private seq = 0;
  /** Halves of the ID produced by the last next(). */
  hi = 0;
  lo = 0;

  constructor(
    gatewayName: string,
    private readonly now: () => number = Date.now,
    slot: WorkerSlot = SINGLE_PROCESS,
  ) {
    this.node = nodeFor(gatewayName, slot);
  }

  /**
   * Wall-clock ms (the clock's) of the last next(): the time its ID carries, read once for both. It
   * runs ahead of the clock by a millisecond per 4,096 IDs taken within one millisecond.
   */
  get ms(): number {
    return this.lastMs + EPOCH_MS;
  }

  /** Advances to a new ID and leaves its halves in hi/lo. */
  next(): void {
    const ms = Math.max(this.now() - EPOCH_MS, 0);
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.seq = 0;
    } else if (this.seq < SEQ_MAX) {
      this.seq++;
    } else {
      this.lastMs++;
      this.seq = 0;
    }
    const t = this.lastMs;
    this.hi = ((this.node << (32 - NODE_BITS - 1)) | Math.floor(t / 2 ** TIME_LOW_BITS)) >>> 0;
    this.lo = (((t % 2 ** TIME_LOW_BITS) << SEQ_BITS) | this.seq) >>> 0;
  }

  nextId(): SessionId {
    this.next();
    return sessionIdFromParts(this.hi, this.lo);
  }
}
