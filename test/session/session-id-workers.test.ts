// Session IDs of a group of worker processes (server.workers): the worker index in the node bits
// makes IDs unique across the group by construction, not by luck.
import { describe, expect, test } from "bun:test";
import { decodeSessionId, nodeHash, SessionIdGenerator, workerOfSessionId } from "../../src/session/session-id.ts";

describe("session IDs across the workers of one gateway", () => {
  // Every worker issues IDs in the same frozen millisecond (well past 4,096, so the sequence wraps
  // and the logical clock borrows milliseconds): the one place two workers could meet.
  test.each([2, 3, 8, 64])("%i workers with the same name and clock never issue the same ID, and each ID names its worker", (count) => {
    const frozen = Date.UTC(2026, 10, 30, 3, 0, 0);
    const perWorker = count > 8 ? 1_000 : 6_000;
    const seen = new Set<bigint>();
    for (let index = 0; index < count; index++) {
      const gen = new SessionIdGenerator("gw-a", () => frozen, { index, count });
      for (let i = 0; i < perWorker; i++) {
        const id = gen.nextId();
        expect(workerOfSessionId(id, count)).toBe(index);
        seen.add(id);
      }
    }
    expect(seen.size).toBe(count * perWorker);
  });

  test("a single process keeps the name's whole hash in the node bits (IDs as before)", () => {
    const now = () => Date.UTC(2026, 0, 1);
    const id = new SessionIdGenerator("gateway-0", now).nextId();
    expect(decodeSessionId(id).node).toBe(nodeHash("gateway-0"));
    expect(id).toBe(new SessionIdGenerator("gateway-0", now, { index: 0, count: 1 }).nextId());
  });

  test("a worker keeps the name's high hash bits, so gateways of a fleet still differ there", () => {
    const now = () => Date.UTC(2026, 0, 1);
    const id = new SessionIdGenerator("gateway-0", now, { index: 1, count: 2 }).nextId();
    expect(decodeSessionId(id).node >> 1).toBe(nodeHash("gateway-0") >> 1);
    expect(decodeSessionId(id).unixMs).toBe(Date.UTC(2026, 0, 1));
  });

  test("an index outside the group, or a group past 64, is refused", () => {
    expect(() => new SessionIdGenerator("gw", Date.now, { index: 2, count: 2 })).toThrow("worker index 2: expected 0..1");
    expect(() => new SessionIdGenerator("gw", Date.now, { index: 0, count: 65 })).toThrow("worker count 65: expected 1..64");
  });
});
