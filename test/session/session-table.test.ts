import { describe, expect, test } from "bun:test";
import type { ClientPort } from "../../src/session/client-port.ts";
import { SessionIdGenerator } from "../../src/session/session-id.ts";
import { SessionManager } from "../../src/session/session-manager.ts";
import { SessionTable } from "../../src/session/session-table.ts";

interface Item {
  readonly key: number;
}
const item = (key: number): Item => ({ key });

/** The table's home slot for a key (mirrors session-table.ts; see "collisions are real" below). */
function homeSlot(key: number, capacity: number): number {
  return Math.imul(key | 0, 0x9e3779b9 | 0) >>> (Math.clz32(capacity) + 1);
}

/** `n` distinct keys from `from` on whose home slot is `slot`. */
function keysHomedAt(slot: number, capacity: number, n: number, from: number): number[] {
  const out: number[] = [];
  for (let k = from; out.length < n; k = (k + 1) >>> 0) if (homeSlot(k, capacity) === slot) out.push(k);
  return out;
}

/** Mean distance of t's entries from their home slots: the extra probes a lookup of each takes. */
function meanProbeDistance(t: SessionTable<Item>): number {
  const keys = (t as unknown as { keys: Int32Array }).keys;
  const capacity = t.capacity;
  let sum = 0;
  for (const v of t.values()) {
    let at = homeSlot(v.key, capacity);
    while (keys[at] !== (v.key | 0)) at = (at + 1) & (capacity - 1);
    sum += (at - homeSlot(v.key, capacity) + capacity) & (capacity - 1);
  }
  return sum / t.size;
}

/** Deterministic PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function shuffled<T>(xs: readonly T[], rand: () => number): T[] {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("SessionTable", () => {
  test("set, get, has, replace, delete", () => {
    const t = new SessionTable<Item>();
    const a = item(7);
    expect(t.get(7)).toBeUndefined();
    expect(t.has(7)).toBe(false);
    t.set(7, a);
    expect(t.get(7)).toBe(a);
    expect(t.has(7)).toBe(true);
    expect(t.size).toBe(1);

    const b = item(7);
    t.set(7, b); // replaces, does not add
    expect(t.get(7)).toBe(b);
    expect(t.size).toBe(1);

    expect(t.delete(8)).toBe(false);
    expect(t.delete(7)).toBe(true);
    expect(t.delete(7)).toBe(false);
    expect(t.get(7)).toBeUndefined();
    expect(t.has(7)).toBe(false);
    expect(t.size).toBe(0);
  });

  test("key 0 and key 0xFFFFFFFF are ordinary keys", () => {
    const t = new SessionTable<Item>();
    // Empty slots hold key 0: they must not read as an entry for key 0.
    expect(t.has(0)).toBe(false);
    expect(t.get(0)).toBeUndefined();
    t.set(5, item(5));
    expect(t.has(0)).toBe(false);

    const zero = item(0);
    const max = item(0xffffffff);
    t.set(0, zero);
    t.set(0xffffffff, max);
    expect(t.get(0)).toBe(zero);
    expect(t.get(0xffffffff)).toBe(max);
    expect(t.get(-1)).toBe(max); // the same 32 bits
    expect(t.size).toBe(3);
    expect([...t.values()].sort((x, y) => x.key - y.key)).toEqual([zero, item(5), max]);

    expect(t.delete(0)).toBe(true);
    expect(t.has(0)).toBe(false);
    expect(t.get(0xffffffff)).toBe(max);
    expect(t.delete(0xffffffff)).toBe(true);
    expect(t.has(0xffffffff)).toBe(false);
    expect(t.size).toBe(1);
  });

  test("rejects a capacity that is not a power of two >= 2", () => {
    expect(() => new SessionTable<Item>(0)).toThrow(RangeError);
    expect(() => new SessionTable<Item>(1)).toThrow(RangeError);
    expect(() => new SessionTable<Item>(24)).toThrow(RangeError);
    expect(new SessionTable<Item>(2).capacity).toBe(2);
  });

  test("collisions are real: keys with one home slot fill consecutive slots", () => {
    // Guards the tests below: if the table's hash changed, homeSlot() would no longer predict it.
    const capacity = 64;
    const t = new SessionTable<Item>(capacity);
    const keys = keysHomedAt(10, capacity, 5, 1);
    for (const k of keys) t.set(k, item(k));
    const slots = (t as unknown as { keys: Int32Array }).keys;
    expect(Array.from(slots.subarray(10, 15))).toEqual(keys.map((k) => k | 0));
  });

  test("session IDs one per millisecond, and a burst in one millisecond, are found in about one probe", () => {
    // Their low halves are near-arithmetic sequences (steps of 4,096, or of 1): a hash keeping the
    // key's low bits would home every one-per-millisecond ID in one slot (mean distance ~200).
    // At this load (400 of 1,024 slots) a random hash's mean distance is about 0.3.
    let now = Date.UTC(2026, 0, 1);
    const perMs = new SessionIdGenerator("gw", () => now++);
    const spread = new SessionTable<Item>(1024);
    while (spread.size < 400) {
      perMs.next();
      spread.set(perMs.lo, item(perMs.lo));
    }
    expect(meanProbeDistance(spread)).toBeLessThan(1); // measured: 0.55

    const burst = new SessionIdGenerator("gw", () => Date.UTC(2026, 0, 1));
    const packed = new SessionTable<Item>(1024);
    while (packed.size < 400) {
      burst.next();
      packed.set(burst.lo, item(burst.lo));
    }
    expect(meanProbeDistance(packed)).toBeLessThan(1); // measured: 0
  });

  test("add inserts an absent key; deleteIf deletes only the value it is given", () => {
    const t = new SessionTable<Item>(16);
    const a = item(7);
    t.add(7, a);
    expect(t.get(7)).toBe(a);
    expect(t.deleteIf(7, item(7))).toBe(false); // an equal value, not this one
    expect(t.get(7)).toBe(a);
    expect(t.deleteIf(8, a)).toBe(false);
    expect(t.deleteIf(7, a)).toBe(true);
    expect(t.has(7)).toBe(false);
    expect(t.size).toBe(0);
    expect(t.deleteIf(7, a)).toBe(false);
  });

  test("add of a key already present breaks an invariant (development builds)", () => {
    const t = new SessionTable<Item>(16);
    t.add(3, item(3));
    expect(() => t.add(3, item(3))).toThrow("a key added to a SessionTable is not in it yet");
  });

  test("deleting inside colliding, wrapping probe chains keeps every other key reachable", () => {
    const capacity = 1024; // fixed: 70 entries never grow it, and it never shrinks below its start
    // Three groups of keys: 40 homed near the end so their chain wraps to slot 0, 20 homed inside
    // that chain, 10 homed just after the wrap (displaced by the first chain: their home is after
    // the holes that open before them).
    const groups = [keysHomedAt(1010, capacity, 40, 0), keysHomedAt(1020, capacity, 20, 1 << 20), keysHomedAt(2, capacity, 10, 1 << 28)];

    const rand = prng(42);
    for (let round = 0; round < 20; round++) {
      const t = new SessionTable<Item>(capacity);
      // Interleave the groups so each chain mixes homes.
      const all: number[] = [];
      for (let i = 0; i < 40; i++) for (const g of groups) if (i < g.length) all.push(g[i]!);
      for (const k of all) t.set(k, item(k));
      expect(t.capacity).toBe(capacity);

      const live = new Set(all);
      // Delete in a random order, checking every key after every deletion.
      const order = shuffled(all, rand);
      for (const k of order) {
        expect(t.delete(k)).toBe(true);
        live.delete(k);
        for (const other of all) {
          if (live.has(other)) expect(t.get(other)?.key).toBe(other);
          else expect(t.has(other)).toBe(false);
        }
        expect(t.size).toBe(live.size);
      }
      expect(t.capacity).toBe(capacity);
    }
  });

  test("grows through several doublings and shrinks back, never below its initial capacity", () => {
    const t = new SessionTable<Item>(16);
    const keys: number[] = [];
    for (let i = 0; i < 10_000; i++) keys.push((Math.imul(i, 0x10001) + 0x1000) >>> 0);
    for (const k of keys) {
      t.set(k, item(k));
      expect(t.capacity).toBeGreaterThanOrEqual(2 * t.size); // at most half full
    }
    expect(t.capacity).toBe(32_768); // 16 -> 32,768: eleven doublings
    for (const k of keys) expect(t.get(k)?.key).toBe(k);

    const capacities = new Set<number>();
    for (let i = 0; i < keys.length - 3; i++) {
      expect(t.delete(keys[i]!)).toBe(true);
      capacities.add(t.capacity);
      if (t.capacity > 16) expect(t.size * 16).toBeGreaterThanOrEqual(t.capacity); // shrank in time
      if (i % 997 === 0) for (let j = i + 1; j < keys.length; j++) expect(t.get(keys[j]!)?.key).toBe(keys[j]!);
    }
    expect(t.size).toBe(3);
    expect(t.capacity).toBe(16);
    expect(capacities.size).toBeGreaterThan(5); // it shrank step by step
    for (const k of keys.slice(-3)) expect(t.get(k)?.key).toBe(k);
  });

  test("iteration yields every live value exactly once", () => {
    const t = new SessionTable<Item>();
    const live = new Map<number, Item>();
    const rand = prng(7);
    for (let i = 0; i < 5000; i++) {
      const k = Math.floor(rand() * 3000) * 16; // shared low bits
      if (rand() < 0.6) {
        const v = item(k);
        t.set(k, v);
        live.set(k, v);
      } else {
        t.delete(k);
        live.delete(k);
      }
    }
    const seen = [...t.values()];
    expect(seen.length).toBe(live.size);
    expect(new Set(seen).size).toBe(seen.length);
    for (const v of seen) expect(live.get(v.key)).toBe(v);
  });

  test("iteration refuses to go on once entries were added or removed", () => {
    const t = new SessionTable<Item>();
    for (let k = 0; k < 10; k++) t.set(k, item(k));
    expect(() => {
      for (const v of t.values()) t.delete(v.key);
    }).toThrow("changed during iteration");
    expect(() => {
      for (const v of t.values()) t.set(v.key + 100, item(v.key + 100));
    }).toThrow("changed during iteration");
    // Replacing a value moves nothing, so it is allowed.
    for (const v of t.values()) t.set(v.key, item(v.key));
  });

  test("behaves like a Map over 100,000 random operations", () => {
    const rand = prng(0x5e55);
    const t = new SessionTable<Item>();
    const ref = new Map<number, Item>();
    // A pool of keys: some edge values, many sharing low bits, many arbitrary.
    const pool = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff];
    while (pool.length < 4000) {
      pool.push(pool.length % 2 === 0 ? (Math.floor(rand() * 2 ** 28) << 4) >>> 0 : Math.floor(rand() * 2 ** 32));
    }
    for (let op = 0; op < 100_000; op++) {
      const k = pool[Math.floor(rand() * pool.length)]!;
      const r = rand();
      // Phases of 20,000 operations, alternately insert- and delete-heavy, to grow and shrink.
      const insertBias = Math.floor(op / 20_000) % 2 === 0 ? 0.5 : 0.15;
      if (r < insertBias) {
        const v = item(k);
        t.set(k, v);
        ref.set(k, v);
      } else if (r < 0.7) {
        expect(t.delete(k)).toBe(ref.delete(k));
      } else if (r < 0.85) {
        expect(t.get(k)).toBe(ref.get(k));
      } else {
        expect(t.has(k)).toBe(ref.has(k));
      }
      expect(t.size).toBe(ref.size);
      if (op % 5000 === 0) {
        const vals = [...t.values()];
        expect(vals.length).toBe(ref.size);
        for (const v of vals) expect(ref.get(v.key)).toBe(v);
      }
    }
    for (const [k, v] of ref) expect(t.get(k)).toBe(v);
    for (const k of pool) expect(t.has(k)).toBe(ref.has(k));
  });
});

describe("SessionManager on its SessionTable", () => {
  const port = { protocol: "tcp", remoteAddress: "127.0.0.1", session: null } as unknown as ClientPort;
  const route = { serverType: 10, worldId: 0, instId: 0 };

  test("iterating tolerates removing sessions meanwhile, as a Map did", () => {
    const m = new SessionManager(new SessionIdGenerator("gw", () => Date.UTC(2026, 0, 1)), 10_000);
    const all = Array.from({ length: 1000 }, () => m.create(port, route)!);
    const seen = new Set<unknown>();
    const removed = new Set<unknown>();
    const removedBeforeTurn = new Set<unknown>();
    for (const s of m) {
      expect(removed.has(s)).toBe(false); // never yields a session removed earlier
      seen.add(s);
      m.remove(s); // the current one
      removed.add(s);
      const other = all[(all.indexOf(s) + 500) % all.length]!;
      if (m.remove(other)) {
        removed.add(other);
        if (!seen.has(other)) removedBeforeTurn.add(other);
      }
    }
    expect(m.size).toBe(0);
    // Nothing skipped: a session not yielded is one removed before its turn.
    expect(seen.size + removedBeforeTurn.size).toBe(all.length);
  });

  test("holds and finds many sessions across growth and churn", () => {
    let now = Date.UTC(2026, 0, 1);
    const m = new SessionManager(new SessionIdGenerator("gw", () => now), 50_000);
    const live = [];
    for (let i = 0; i < 40_000; i++) {
      if (i % 3 === 0) now++;
      live.push(m.create(port, route)!);
    }
    for (let i = 0; i < live.length; i += 2) expect(m.remove(live[i]!)).toBe(true);
    const left = live.filter((_, i) => i % 2 === 1);
    expect(m.size).toBe(left.length);
    for (const s of left) expect(m.get(s.hi, s.lo)).toBe(s);
    for (let i = 0; i < live.length; i += 2) expect(m.get(live[i]!.hi, live[i]!.lo)).toBeUndefined();
    expect(new Set(m).size).toBe(left.length);
  });
});
