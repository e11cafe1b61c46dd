import type { ClientPort } from "./client-port.ts";
import { Session, type SessionRoute } from "./session.ts";
import { SessionIdGenerator } from "./session-id.ts";
import { SessionTable } from "./session-table.ts";

// All live sessions of this process, in one SessionTable keyed by the session ID's low 32 bits
// (a small integer key: no BigInt per lookup). The manager keeps those low halves unique among
// live sessions (it skips an ID whose low half is in use, which only happens to sessions older
// than 2^20 ms), and a lookup checks the high half too. A SessionTable rather than a Map for
// memory (see session-table.ts). It holds at most maxSessions sessions, since create() refuses
// beyond it, so the table never grows past max(16, 4 * maxSessions) slots.
//
// One table, not shards. The reference shards its session map because its goroutines lock it
// (a shard's lock held by the sweep blocks a sixteenth of the lookups, not all); here one thread
// owns it and there is no lock to split. What shards would still buy is a table resize rehashing
// a sixteenth of the sessions instead of all: measured (docs/architecture.md, "Sessions"), a
// single table's worst create() is about 1 ms at 100,000 sessions, once per doubling, far inside
// the GC's own pauses. Against that, picking a shard cost a hash and an indirection on every
// lookup: the microbenchmarks ran 1.1-1.6x slower sharded (bench/README.md).

export class SessionManager {
  private readonly table = new SessionTable<Session>();

  constructor(
    private readonly ids: SessionIdGenerator,
    /** Bound on live sessions; create() refuses beyond it. Lowering it closes no live session. */
    public maxSessions: number,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** Creates and registers a session; null when maxSessions are live. */
  create(client: ClientPort, route: SessionRoute): Session | null {
    const table = this.table;
    if (table.size >= this.maxSessions) return null;
    const ids = this.ids;
    do ids.next();
    while (table.has(ids.lo));
    const session = new Session(ids.hi, ids.lo, client, route, ids.ms);
    table.add(ids.lo, session);
    return session;
  }

  /** The live session with this ID, or undefined. */
  get(hi: number, lo: number): Session | undefined {
    const s = this.table.get(lo);
    return s !== undefined && s.hi === hi ? s : undefined;
  }

  /** Unregisters the session; false when it was not registered (removed already). */
  remove(session: Session): boolean {
    return this.table.deleteIf(session.lo, session);
  }

  /** Sessions with no traffic either way since before `cutoff` (ms timestamp). */
  idleSince(cutoff: number): Session[] {
    const out: Session[] = [];
    for (const s of this.table.values()) if (s.lastActive < cutoff) out.push(s);
    return out;
  }

  *[Symbol.iterator](): IterableIterator<Session> {
    // A Map's iteration survived removals meanwhile; a table's does not (a removal shifts entries
    // back past the cursor), so walk a copy, skipping sessions removed since. (Unlike a Map, a
    // session created meanwhile is not visited.)
    const table = this.table;
    for (const s of Array.from(table.values())) if (table.get(s.lo) === s) yield s;
  }
}
