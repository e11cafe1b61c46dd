// The demo backend's view of sessions and rooms, shared by all connections of one backend.
// Session IDs arrive as two u32 halves (hi, lo); the table is keyed by those halves in two levels
// so a lookup per frame allocates no BigInt or string. The high half changes slowly (gateway hash
// and the high time bits), so the outer map stays tiny.

export interface DemoSession<C> {
  readonly hi: number;
  readonly lo: number;
  /** The connection the latest frame for this session came on; null once that connection closed. */
  conn: C | null;
  /** Rooms joined; null until the first join (most sessions never join one). */
  rooms: Set<Room<C>> | null;
  /** The chat name the player chose (DemoMessage.Name); null until then. */
  name: string | null;
}

export interface Room<C> {
  readonly name: string;
  readonly members: Set<DemoSession<C>>;
}

export class DemoSessionTable<C> {
  private readonly byHi = new Map<number, Map<number, DemoSession<C>>>();
  private readonly roomsByName = new Map<string, Room<C>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get roomCount(): number {
    return this.roomsByName.size;
  }

  get(hi: number, lo: number): DemoSession<C> | undefined {
    return this.byHi.get(hi)?.get(lo);
  }

  /** The session, created if unknown, now reached over conn. */
  upsert(hi: number, lo: number, conn: C): DemoSession<C> {
    let inner = this.byHi.get(hi);
    if (inner === undefined) {
      inner = new Map();
      this.byHi.set(hi, inner);
    }
    let s = inner.get(lo);
    if (s === undefined) {
      s = { hi, lo, conn, rooms: null, name: null };
      inner.set(lo, s);
      this.count++;
    } else {
      s.conn = conn;
    }
    return s;
  }

  /**
   * Records that a frame for a known session came on conn. Unknown sessions are not added: a
   * backend without lifecycle messages never hears of their end, so only joins create entries.
   */
  touch(hi: number, lo: number, conn: C): void {
    const s = this.byHi.get(hi)?.get(lo);
    if (s !== undefined && s.conn !== conn) s.conn = conn;
  }

  /** Forgets the session and takes it out of its rooms; returns the rooms it left (still holding others) for a presence update. */
  remove(hi: number, lo: number): Room<C>[] {
    const inner = this.byHi.get(hi);
    const s = inner?.get(lo);
    if (inner === undefined || s === undefined) return [];
    inner.delete(lo);
    if (inner.size === 0) this.byHi.delete(hi);
    this.count--;
    if (s.rooms === null) return [];
    const left: Room<C>[] = [];
    for (const room of s.rooms) {
      this.leave(s, room);
      if (room.members.size > 0) left.push(room);
    }
    s.rooms = null;
    return left;
  }

  /** The room called name, as a one-room list, when s is in it (for a presence update). */
  roomsOf(s: DemoSession<C>, name: string): Room<C>[] {
    const room = this.roomsByName.get(name);
    return room !== undefined && room.members.has(s) ? [room] : [];
  }

  join(s: DemoSession<C>, name: string): void {
    let room = this.roomsByName.get(name);
    if (room === undefined) {
      room = { name, members: new Set() };
      this.roomsByName.set(name, room);
    }
    room.members.add(s);
    (s.rooms ??= new Set()).add(room);
  }

  /**
   * A connection closed. Its sessions stay known (a gateway moves them to a sibling connection,
   * and without lifecycle messages nothing would re-announce them) but are unreachable until
   * their next frame names the new connection.
   */
  detach(conn: C): void {
    for (const inner of this.byHi.values()) {
      for (const s of inner.values()) if (s.conn === conn) s.conn = null;
    }
  }

  private leave(s: DemoSession<C>, room: Room<C>): void {
    room.members.delete(s);
    if (room.members.size === 0) this.roomsByName.delete(room.name);
  }
}
