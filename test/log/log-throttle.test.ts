// The one log throttle: one line per key per interval, with what it suppressed, within a key bound.
import { describe, expect, test } from "bun:test";
import { LogThrottle, Logger, ThrottledLog } from "../../src/log/logger.ts";

describe("LogThrottle", () => {
  test("one line per key per interval, then the count suppressed since", () => {
    const t = new LogThrottle(1_000, 16);
    expect(t.admit("a", 0)).toBe(0);
    expect(t.admit("a", 10)).toBe(-1);
    expect(t.admit("a", 999)).toBe(-1);
    expect(t.admit("b", 999)).toBe(0); // keys are independent
    expect(t.admit("a", 1_000)).toBe(2);
    expect(t.admit("a", 1_001)).toBe(-1);
  });

  test("past its key bound the oldest key is forgotten, so it may log again at once", () => {
    const t = new LogThrottle(1_000, 2);
    t.admit("a", 0);
    t.admit("b", 0);
    expect(t.admit("b", 1)).toBe(-1);
    t.admit("c", 1); // evicts a
    expect(t.admit("a", 2)).toBe(0);
    expect(t.admit("c", 2)).toBe(-1);
  });
});

describe("ThrottledLog", () => {
  test("writes the first warning of a key and swallows its repeats within the interval", () => {
    const lines: Record<string, unknown>[] = [];
    const log = new ThrottledLog(new Logger("warn", { write: (l) => lines.push(JSON.parse(l)) }), 60_000);
    log.warn("k", "bad thing", { n: 1 });
    log.warn("k", "bad thing", { n: 2 });
    log.warn("other", "bad thing", { n: 3 });
    expect(lines.map((l) => l.n)).toEqual([1, 3]);
  });
});
