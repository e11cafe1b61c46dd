// Session IDs: positive int64, unique across a fleet, never repeated by one process.
//   bit 63      0 (so the ID is always positive as an i64)
//   bits 52-62  11-bit hash of the gateway name (the fleet part)
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
  ) {
    this.node = nodeHash(gatewayName);
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
