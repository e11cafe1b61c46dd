import { describe, expect, test } from "bun:test";
import { crc32 as zlibCrc32 } from "node:zlib";
import type { RouteRule, RouteStrategy } from "../../src/config/types.ts";
import { rendezvousPick, endpointSeed } from "../../src/routing/rendezvous.ts";
import { Router } from "../../src/routing/router.ts";

function rule(r: Partial<RouteRule> & Pick<RouteRule, "server_type" | "endpoints">): RouteRule {
  return { world_id: 0, service_name: "", strategy: "round_robin", ...r };
}

const endpointsOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:7000`);

// The reference gateway's hash picks, written from its description (../shared/reference/reference-gateway.md,
// "Routing rules") with zlib's crc32: none of the gateway's code computes these expectations.
function referenceHashIndex(strategy: "consistent_hash" | "realm_based", n: number, world: number, inst: number): number | "round_robin" {
  if (strategy === "consistent_hash") return inst > 0 ? zlibCrc32(String(inst)) % n : "round_robin";
  return world > 0 && inst > 0 ? zlibCrc32(`world:${world}:inst:${inst}`) % n : "round_robin";
}

describe("Router", () => {
  const router = new Router([
    rule({ server_type: 10, endpoints: ["any:1"] }),
    rule({ server_type: 10, world_id: 7, endpoints: ["w7:1"] }),
    rule({ server_type: 200, world_id: 3, endpoints: ["g3:1"] }),
  ]);

  test("exact world first, then the wildcard, else nothing", () => {
    expect(router.ruleFor(10, 7)!.endpoints).toEqual(["w7:1"]);
    expect(router.ruleFor(10, 8)!.endpoints).toEqual(["any:1"]);
    expect(router.ruleFor(10, 0)!.endpoints).toEqual(["any:1"]);
    expect(router.ruleFor(200, 3)!.endpoints).toEqual(["g3:1"]);
    expect(router.ruleFor(200, 4)).toBeUndefined();
    expect(router.ruleFor(11, 0)).toBeUndefined();
    expect(router.endpoints().sort()).toEqual(["any:1", "g3:1", "w7:1"]);
  });
});

describe("the reference's choices, reproduced", () => {
  test("zlib's crc32 is the IEEE one the reference uses (check value of the CRC catalogue)", () => {
    expect(zlibCrc32("123456789")).toBe(0xcbf43926);
  });

  // (strategy, endpoints, world, instance) -> endpoint. Worlds and instances cover one to five
  // digits and both ends of their ranges; pool sizes cover 1, primes and powers of two.
  const rows: [strategy: "consistent_hash" | "realm_based", n: number, world: number, inst: number][] = [];
  for (const n of [1, 2, 3, 4, 5, 7, 8, 10, 16, 31]) {
    for (const world of [1, 2, 9, 10, 42, 99, 100, 999, 1000, 4096, 9999, 10000, 32766, 32767]) {
      for (const inst of [1, 7, 9, 10, 55, 99, 100, 128, 200, 254, 255]) {
        rows.push(["realm_based", n, world, inst]);
        if (world === 1) rows.push(["consistent_hash", n, world, inst]);
      }
    }
  }

  test(`${rows.length} hash rows land on the endpoint crc32 mod n names`, () => {
    const mismatches: string[] = [];
    for (const [strategy, n, world, inst] of rows) {
      const eps = endpointsOf(n);
      const r = new Router([rule({ server_type: 1, strategy, endpoints: eps })]).ruleFor(1, world)!;
      const expected = eps[referenceHashIndex(strategy, n, world, inst) as number];
      const got = r.pick(world, inst, 0);
      if (got !== expected) mismatches.push(`${strategy} n=${n} world=${world} inst=${inst}: expected ${expected}, got ${got}`);
    }
    expect(mismatches).toEqual([]);
  });

  test("every instID 1..255 and world sample, for pool sizes 1..12", () => {
    let checked = 0;
    for (let n = 1; n <= 12; n++) {
      const eps = endpointsOf(n);
      const hash = new Router([rule({ server_type: 1, strategy: "consistent_hash", endpoints: eps })]).ruleFor(1, 0)!;
      const realm = new Router([rule({ server_type: 2, strategy: "realm_based", endpoints: eps })]).ruleFor(2, 0)!;
      for (let inst = 1; inst <= 255; inst++) {
        expect(hash.pick(3, inst, 0)).toBe(eps[referenceHashIndex("consistent_hash", n, 3, inst) as number]!);
        for (const world of [1, 17, 300, 5000, 32767]) {
          expect(realm.pick(world, inst, 0)).toBe(eps[referenceHashIndex("realm_based", n, world, inst) as number]!);
          checked++;
        }
      }
    }
    expect(checked).toBe(12 * 255 * 5);
  });

  test("worked examples: instID 7 hashes the one byte \"7\"; the realm key is spelled out", () => {
    const eps = endpointsOf(5);
    const hash = new Router([rule({ server_type: 1, strategy: "consistent_hash", endpoints: eps })]).ruleFor(1, 0)!;
    const realm = new Router([rule({ server_type: 1, strategy: "realm_based", endpoints: eps })]).ruleFor(1, 0)!;
    // zlib: crc32("7") = 1790921346, mod 5 = 1; crc32("world:3:inst:7") = 1073223503, mod 5 = 3.
    expect(zlibCrc32("7")).toBe(1790921346);
    expect(zlibCrc32("world:3:inst:7")).toBe(1073223503);
    expect(hash.pick(3, 7, 0)).toBe("10.0.0.2:7000");
    expect(realm.pick(3, 7, 0)).toBe("10.0.0.4:7000");
  });

  test("round_robin: counter++ mod n, one counter per (server_type, world_id) rule", () => {
    const router = new Router([
      rule({ server_type: 1, endpoints: ["a:1", "b:1", "c:1"] }),
      rule({ server_type: 1, world_id: 5, endpoints: ["w5a:1", "w5b:1"] }),
      rule({ server_type: 2, endpoints: ["x:1", "y:1"] }),
    ]);
    const pick = (type: number, world: number): string => router.ruleFor(type, world)!.pick(world, 0, 0)!;
    // Interleaved: each rule's sequence is unaffected by the others'. Worlds without their own
    // rule (0, 6, 9) share the wildcard rule's counter.
    const seq = [pick(1, 0), pick(1, 5), pick(2, 0), pick(1, 6), pick(1, 5), pick(1, 9), pick(2, 3), pick(1, 0), pick(1, 5), pick(2, 0)];
    expect(seq).toEqual(["a:1", "w5a:1", "x:1", "b:1", "w5b:1", "c:1", "y:1", "a:1", "w5a:1", "x:1"]);
  });

  for (const [strategy, world, inst, why] of [
    ["consistent_hash", 3, 0, "instID 0"],
    ["realm_based", 0, 7, "worldID 0"],
    ["realm_based", 3, 0, "instID 0"],
  ] as const) {
    test(`${strategy} with ${why} is round robin on the rule's counter`, () => {
      const r = new Router([rule({ server_type: 1, strategy, endpoints: ["a:1", "b:1", "c:1"] })]).ruleFor(1, world)!;
      expect(Array.from({ length: 5 }, () => r.pick(world, inst, 12345))).toEqual(["a:1", "b:1", "c:1", "a:1", "b:1"]);
      // A hashed session in between takes no counter value.
      r.pick(3, 9, 0);
      expect(r.pick(world, inst, 12345)).toBe("c:1");
    });
  }

  test("a reload keeps each rule key's round robin counter, modulo the new pool", () => {
    const before = new Router([rule({ server_type: 1, endpoints: ["a:1", "b:1", "c:1"] }), rule({ server_type: 2, endpoints: ["x:1", "y:1"] })]);
    for (let i = 0; i < 4; i++) before.ruleFor(1, 0)!.pick(0, 0, 0); // counter 4
    const after = new Router([rule({ server_type: 1, endpoints: ["a:1", "b:1", "c:1", "d:1", "e:1"] }), rule({ server_type: 3, endpoints: ["z:1"] })]);
    after.continueCountersFrom(before);
    expect(after.ruleFor(1, 0)!.pick(0, 0, 0)).toBe("e:1"); // 4 mod 5
    expect(after.ruleFor(3, 0)!.pick(0, 0, 0)).toBe("z:1"); // a new rule key starts at 0
  });
});

describe("breaker-open endpoints (a skip the reference does not have)", () => {
  const eps = endpointsOf(4);
  const down = (bad: string) => (ep: string): boolean => ep !== bad;

  test("the crc32 strategies keep the reference's choice while it is usable, else take the next index", () => {
    for (const strategy of ["consistent_hash", "realm_based"] as const) {
      const r = new Router([rule({ server_type: 1, strategy, endpoints: eps })]).ruleFor(1, 0)!;
      for (let inst = 1; inst <= 255; inst++) {
        const i = referenceHashIndex(strategy, eps.length, 12, inst) as number;
        expect(r.pick(12, inst, 0, down(eps[(i + 1) % 4]!))).toBe(eps[i]!);
        expect(r.pick(12, inst, 0, down(eps[i]!))).toBe(eps[(i + 1) % 4]!);
      }
      expect(r.pick(12, 7, 0, () => false)).toBeNull();
    }
  });

  test("round_robin moves on, each refusal taking a counter value", () => {
    const r = new Router([rule({ server_type: 1, endpoints: eps })]).ruleFor(1, 0)!;
    const seq = Array.from({ length: 6 }, () => r.pick(0, 0, 0, down(eps[1]!)));
    expect(seq).toEqual([eps[0]!, eps[2]!, eps[3]!, eps[0]!, eps[2]!, eps[3]!]);
    expect(r.pick(0, 0, 0, () => false)).toBeNull();
  });
});

describe("rendezvous strategies (ours)", () => {
  test("rendezvous_instance keys by instID, falling back to the session", () => {
    const eps = Array.from({ length: 5 }, (_, i) => `10.0.0.${i}:9000`);
    const r = new Router([rule({ server_type: 1, strategy: "rendezvous_instance", endpoints: eps })]).ruleFor(1, 0)!;
    for (let inst = 1; inst < 256; inst++) expect(r.pick(0, inst, 1)).toBe(r.pick(0, inst, 999));
    const bySession = new Set(Array.from({ length: 200 }, (_, s) => r.pick(0, 0, s)));
    expect(bySession.size).toBe(5); // session keys spread over every endpoint
    expect(r.pick(0, 0, 42)).toBe(r.pick(0, 0, 42));
  });

  test("rendezvous_world keeps a whole world on one endpoint", () => {
    const r = new Router([rule({ server_type: 1, strategy: "rendezvous_world", endpoints: ["a:1", "b:1", "c:1"] })]).ruleFor(1, 0)!;
    for (let w = 0; w < 50; w++) {
      const first = r.pick(w, 0, 1);
      for (let s = 0; s < 10; s++) expect(r.pick(w, s, s * 7919)).toBe(first);
    }
  });

  // Why they are kept (docs/architecture.md, "Routing"): growing a pool from n to n + 1 moves
  // about 1/(n+1) of the keys under rendezvous, and about n/(n+1) of them under crc32 mod n.
  test("growing a pool of 8 by one: rendezvous_world moves about 1/9 of worlds, realm_based most", () => {
    const moved = (strategy: RouteStrategy): number => {
      const small = new Router([rule({ server_type: 1, strategy, endpoints: endpointsOf(8) })]).ruleFor(1, 0)!;
      const big = new Router([rule({ server_type: 1, strategy, endpoints: endpointsOf(9) })]).ruleFor(1, 0)!;
      let m = 0;
      for (let w = 1; w <= 9000; w++) if (small.pick(w, 1, 0) !== big.pick(w, 1, 0)) m++;
      return m / 9000;
    };
    expect(Math.abs(moved("rendezvous_world") - 1 / 9)).toBeLessThan(0.02);
    expect(Math.abs(moved("realm_based") - 8 / 9)).toBeLessThan(0.02);
  });
});

describe("rendezvous hashing", () => {
  test("adding one endpoint to N moves about 1/(N+1) of keys, all to the newcomer", () => {
    for (const n of [2, 5, 10]) {
      const eps = Array.from({ length: n }, (_, i) => `backend-${i}:7000`);
      const before = eps.map(endpointSeed);
      const after = [...before, endpointSeed(`backend-${n}:7000`)];
      const keys = 20_000;
      let moved = 0;
      for (let k = 0; k < keys; k++) {
        const a = rendezvousPick(before, k * 2654435761);
        const b = rendezvousPick(after, k * 2654435761);
        if (a !== b) {
          moved++;
          expect(b).toBe(n); // a key only ever moves to the new endpoint
        }
      }
      const expected = keys / (n + 1);
      expect(Math.abs(moved - expected) / expected).toBeLessThan(0.1);
    }
  });

  test("removing an endpoint moves only its own keys", () => {
    const seeds = ["a:1", "b:1", "c:1", "d:1"].map(endpointSeed);
    const without = [seeds[0]!, seeds[1]!, seeds[3]!];
    for (let k = 0; k < 5000; k++) {
      const before = rendezvousPick(seeds, k);
      const after = rendezvousPick(without, k);
      if (before !== 2) expect(seeds[before]).toBe(without[after]!);
    }
  });

  test("spreads keys evenly", () => {
    const seeds = Array.from({ length: 8 }, (_, i) => endpointSeed(`h${i}:1`));
    const counts = new Array(8).fill(0);
    for (let k = 0; k < 80_000; k++) counts[rendezvousPick(seeds, k)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(1000);
  });
});
