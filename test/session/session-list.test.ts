import { describe, expect, test } from "bun:test";
import type { ClientPort } from "../../src/session/client-port.ts";
import { Session } from "../../src/session/session.ts";
import { SessionList } from "../../src/session/session-list.ts";

const client = {} as ClientPort;
const route = { serverType: 10, worldId: 0, instId: 0 };
const session = (lo: number) => new Session(0, lo, client, route, Date.now());

function contents(list: SessionList): number[] {
  const out: number[] = [];
  for (let s = list.first; s !== null; s = s.nextOnLink) out.push(s.lo);
  return out;
}

describe("SessionList", () => {
  test("add, remove from head, middle and tail, and membership", () => {
    const list = new SessionList();
    const [a, b, c, d] = [1, 2, 3, 4].map(session) as [Session, Session, Session, Session];
    for (const s of [a, b, c, d]) list.add(s);
    expect(contents(list)).toEqual([4, 3, 2, 1]);
    expect(list.size).toBe(4);

    expect(list.remove(c)).toBe(true); // middle
    expect(list.remove(d)).toBe(true); // head
    expect(list.remove(a)).toBe(true); // tail
    expect(contents(list)).toEqual([2]);
    expect(list.size).toBe(1);
    expect([a, b, c, d].map((s) => list.has(s))).toEqual([false, true, false, false]);

    expect(list.remove(a)).toBe(false); // twice: nothing changes
    expect(list.size).toBe(1);
    expect(list.remove(b)).toBe(true);
    expect(list.first).toBeNull();
    expect(list.size).toBe(0);
  });

  test("drain hands back every session and leaves each free to join another list", () => {
    const from = new SessionList();
    const to = new SessionList();
    const all = Array.from({ length: 100 }, (_, i) => session(i));
    for (const s of all) from.add(s);
    for (let i = 0; i < 100; i += 3) from.remove(all[i]!);

    const moved = from.drain();
    expect(moved.map((s) => s.lo).sort((x, y) => x - y)).toEqual(all.filter((_, i) => i % 3 !== 0).map((s) => s.lo));
    expect(from.size).toBe(0);
    expect(from.first).toBeNull();
    expect(moved.some((s) => from.has(s))).toBe(false);

    for (const s of moved) to.add(s);
    expect(to.size).toBe(moved.length);
    expect(new Set(contents(to))).toEqual(new Set(moved.map((s) => s.lo)));
  });
});
