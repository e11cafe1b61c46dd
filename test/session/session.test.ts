import { describe, expect, test } from "bun:test";
import type { ClientPort } from "../../src/session/client-port.ts";
import {
  SessionIdGenerator,
  nodeHash,
  sessionIdFromParts,
  sessionIdHi,
  sessionIdLo,
} from "../../src/session/session-id.ts";
import { SessionManager } from "../../src/session/session-manager.ts";
import { Session } from "../../src/session/session.ts";

describe("session IDs", () => {
  test("never repeat, even far beyond 4,096 in one millisecond", () => {
    const frozen = Date.UTC(2026, 10, 26, 12, 0, 0);
    const gen = new SessionIdGenerator("gw-a", () => frozen);
    const seen = new Set<bigint>();
    let prev = -1n;
    for (let i = 0; i < 20_000; i++) {
      const id = gen.nextId();
      expect(id > prev).toBe(true); // strictly increasing, so unique
      prev = id;
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  test("stay positive and unique when the wall clock steps backwards", () => {
    let now = Date.UTC(2057, 0, 1);
    const gen = new SessionIdGenerator("x".repeat(100), () => now);
    const seen = new Set<bigint>();
    for (let i = 0; i < 10_000; i++) {
      if (i === 5000) now -= 60_000;
      const id = gen.nextId();
      expect(id).toBeGreaterThan(0n);
      expect(id).toBeLessThan(1n << 63n);
      seen.add(id);
    }
    expect(seen.size).toBe(10_000);
  });

  test("carry the gateway-name hash in bits 52-62, so two gateways never collide", () => {
    const now = () => Date.UTC(2026, 0, 1);
    const a = new SessionIdGenerator("gateway-0", now);
    const b = new SessionIdGenerator("gateway-1", now);
    expect(nodeHash("gateway-0")).not.toBe(nodeHash("gateway-1"));
    const ida = a.nextId();
    const idb = b.nextId();
    expect(Number(ida >> 52n)).toBe(nodeHash("gateway-0"));
    expect(Number(idb >> 52n)).toBe(nodeHash("gateway-1"));
    expect(ida).not.toBe(idb);
  });

  test("hi/lo halves convert both ways", () => {
    const id = sessionIdFromParts(0x7fffffff, 0xfffffffe);
    expect(id).toBe(0x7ffffffffffffffen as never);
    expect(sessionIdHi(id)).toBe(0x7fffffff);
    expect(sessionIdLo(id)).toBe(0xfffffffe);
  });
});

const port = { protocol: "tcp", remoteAddress: "127.0.0.1", session: null } as unknown as ClientPort;
const route = { serverType: 10, worldId: 0, instId: 0 };

describe("SessionManager", () => {
  test("add, get by both halves, remove", () => {
    const m = new SessionManager(new SessionIdGenerator("gw"), 100);
    const s = m.create(port, route)!;
    expect(m.get(s.hi, s.lo)).toBe(s);
    expect(m.get(s.hi + 1, s.lo)).toBeUndefined();
    expect(m.size).toBe(1);
    expect(m.remove(s)).toBe(true);
    expect(m.remove(s)).toBe(false);
    expect(m.get(s.hi, s.lo)).toBeUndefined();
    expect(m.size).toBe(0);
  });

  test("remove takes only the session it is given, not another with the same ID", () => {
    const m = new SessionManager(new SessionIdGenerator("gw"), 100);
    const live = m.create(port, route)!;
    const stale = new Session(live.hi, live.lo, port, route, Date.now()); // e.g. one a backend still names
    expect(m.remove(stale)).toBe(false);
    expect(m.get(live.hi, live.lo)).toBe(live);
    expect(m.size).toBe(1);
  });

  test("refuses past its bound", () => {
    const m = new SessionManager(new SessionIdGenerator("gw"), 2);
    expect(m.create(port, route)).not.toBeNull();
    expect(m.create(port, route)).not.toBeNull();
    expect(m.create(port, route)).toBeNull();
  });

  test("low halves stay unique among live sessions across a 2^20 ms wrap", () => {
    let now = Date.UTC(2026, 0, 1);
    const m = new SessionManager(new SessionIdGenerator("gw", () => now), 100);
    const old = m.create(port, route)!;
    now += 2 ** 20; // same low 20 time bits, same sequence
    const young = m.create(port, route)!;
    expect(young.lo).not.toBe(old.lo);
    expect(m.get(old.hi, old.lo)).toBe(old);
    expect(m.get(young.hi, young.lo)).toBe(young);
  });

  test("idle sweep sees activity in either direction", () => {
    const m = new SessionManager(new SessionIdGenerator("gw"), 10);
    const a = m.create(port, route)!;
    const b = m.create(port, route)!;
    a.lastActive = 1000;
    b.lastActive = 5000;
    expect(m.idleSince(2000)).toEqual([a]);
  });
});
