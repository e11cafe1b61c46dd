import type { ClientPort } from "./client-port.ts";
import { Session, type SessionRoute } from "./session.ts";
import { SessionIdGenerator } from "./session-id.ts";
import { DEFAULT_CAPACITY, SessionTable, keyHash } from "./session-table.ts";

// All live sessions of this process, in 16 shards by a hash of the session ID's low 32 bits.
// The hash matters: the low bits of an ID are its per-millisecond sequence, which restarts at 0
// every millisecond, so at under one new session per millisecond (most of the time, on most
// gateways) they are 0, and sharding by them put nearly every session in one shard: one table
// holding everything, resized (rehashed) whole as it grows, where 16 tables resize 1/16 at a time.
// The shard is the top 4 bits of the table's own hash (keyHash, a Fibonacci product, in which every
// bit of the low half counts) and each shard's table homes keys by the bits below those: one
// multiply for both, and the near-arithmetic ID streams a gateway issues stay evenly spaced within
// a shard, so lookups rarely probe. (A fully mixed shard hash, murmur3's finalizer, spread the
// shards as evenly but made each shard's keys random to its table: measurably slower, see
// docs/architecture.md.)
// Each shard is keyed by the ID's low 32 bits (a small integer key: no BigInt per lookup); the
// manager keeps those low halves unique among live sessions (it skips an ID whose low half is in
// use, which only happens to sessions older than 2^20 ms), and a lookup checks the high half too.
// A shard is a SessionTable rather than a Map for memory (see session-table.ts). The shards hold
// at most maxSessions sessions between them, since create() refuses beyond it, so no shard's
// table grows past max(16, 4 * maxSessions) slots.

const SHARD_BITS = 4;
export const SHARD_COUNT = 1 << SHARD_BITS;

/** The shard holding the session whose ID has this low half. */
export function shardOf(lo: number): number {
  return keyHash(lo) >>> (32 - SHARD_BITS);
}

export class SessionManager {
  private readonly shards: SessionTable<Session>[] = [];
  private count = 0;

  constructor(
    private readonly ids: SessionIdGenerator,
    /** Bound on live sessions; create() refuses beyond it. Lowering it closes no live session. */
    public maxSessions: number,
  ) {
    for (let i = 0; i < SHARD_COUNT; i++) this.shards.push(new SessionTable<Session>(DEFAULT_CAPACITY, SHARD_BITS));
  }

  get size(): number {
    return this.count;
  }

  /** Creates and registers a session; null when maxSessions are live. */
  create(client: ClientPort, route: SessionRoute): Session | null {
    if (this.count >= this.maxSessions) return null;
    const ids = this.ids;
    let shard: SessionTable<Session>;
    do {
      ids.next();
      shard = this.shards[shardOf(ids.lo)]!;
    } while (shard.has(ids.lo));
    const session = new Session(ids.hi, ids.lo, client, route);
    shard.set(ids.lo, session);
    this.count++;
    return session;
  }

  /** The live session with this ID, or undefined. */
  get(hi: number, lo: number): Session | undefined {
    const s = this.shards[shardOf(lo)]!.get(lo);
    return s !== undefined && s.hi === hi ? s : undefined;
  }

  remove(session: Session): boolean {
    const shard = this.shards[shardOf(session.lo)]!;
    if (shard.get(session.lo) !== session) return false;
    shard.delete(session.lo);
    this.count--;
    return true;
  }

  /** Sessions with no traffic either way since before `cutoff` (ms timestamp). */
  idleSince(cutoff: number): Session[] {
    const out: Session[] = [];
    for (const shard of this.shards) for (const s of shard.values()) if (s.lastActive < cutoff) out.push(s);
    return out;
  }

  *[Symbol.iterator](): IterableIterator<Session> {
    // A Map's iteration survived removals meanwhile; a table's does not (a removal shifts entries
    // back past the cursor), so walk a copy of each shard, skipping sessions removed since. (Unlike
    // a Map, a session created meanwhile in the shard being walked is not visited.)
    for (const shard of this.shards) {
      for (const s of Array.from(shard.values())) if (shard.get(s.lo) === s) yield s;
    }
  }
}
