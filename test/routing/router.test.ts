import { describe, expect, test } from "bun:test";
import type { RouteRule } from "../../src/config/types.ts";
import { rendezvousPick, endpointSeed } from "../../src/routing/rendezvous.ts";
import { Router } from "../../src/routing/router.ts";

function rule(r: Partial<RouteRule> & Pick<RouteRule, "server_type" | "endpoints">): RouteRule {
  return { world_id: 0, service_name: "", strategy: "round_robin", ...r };
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

  test("round_robin takes endpoints in turn", () => {
    const r = new Router([rule({ server_type: 1, endpoints: ["a:1", "b:1", "c:1"] })]).ruleFor(1, 0)!;
    expect(Array.from({ length: 6 }, () => r.pick(0, 0, 0))).toEqual(["a:1", "b:1", "c:1", "a:1", "b:1", "c:1"]);
  });

  test("consistent_hash keys by instID, falling back to the session", () => {
    const eps = Array.from({ length: 5 }, (_, i) => `10.0.0.${i}:9000`);
    const r = new Router([rule({ server_type: 1, strategy: "consistent_hash", endpoints: eps })]).ruleFor(1, 0)!;
    for (let inst = 1; inst < 256; inst++) expect(r.pick(0, inst, 1)).toBe(r.pick(0, inst, 999));
    const bySession = new Set(Array.from({ length: 200 }, (_, s) => r.pick(0, 0, s)));
    expect(bySession.size).toBe(5); // session keys spread over every endpoint
    expect(r.pick(0, 0, 42)).toBe(r.pick(0, 0, 42));
  });

  test("realm_based keeps a whole world on one endpoint", () => {
    const r = new Router([rule({ server_type: 1, strategy: "realm_based", endpoints: ["a:1", "b:1", "c:1"] })]).ruleFor(1, 0)!;
    for (let w = 0; w < 50; w++) {
      const first = r.pick(w, 0, 1);
      for (let s = 0; s < 10; s++) expect(r.pick(w, s, s * 7919)).toBe(first);
    }
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
