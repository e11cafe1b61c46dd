// Rendezvous (highest-random-weight) hashing: each key goes to the endpoint that scores it
// highest. Adding an endpoint to N moves only the keys the newcomer now wins, about 1/(N+1) of
// them, and removing one moves only that endpoint's keys. O(N) per pick, which is fine for a
// choice made once per session.

import { fnv1a32 } from "./hash.ts";

/** murmur3's 32-bit finalizer: spreads every input bit over the output. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stable 32-bit seed for an endpoint name (FNV-1a, then mixed). */
export function endpointSeed(name: string): number {
  return mix32(fnv1a32(name));
}

/**
 * Index of the winning seed for key (a 32-bit integer), or -1 when none is accepted. When the
 * winner is refused by `accept` (its endpoint is down), the runner-up is tried, and so on: the
 * keys of a down endpoint spread over the others and come back when it recovers.
 */
export function rendezvousPick(seeds: readonly number[], key: number, accept?: (index: number) => boolean): number {
  const k = mix32(Math.imul(key | 0, 0x9e3779b1) ^ 0x5bd1e995);
  let refusedAbove = Number.POSITIVE_INFINITY; // scores at or above this were refused
  for (let tries = 0; tries < seeds.length; tries++) {
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < seeds.length; i++) {
      const score = mix32(k ^ seeds[i]!);
      if (score > bestScore && score < refusedAbove) {
        bestScore = score;
        best = i;
      }
    }
    if (best < 0 || accept === undefined || accept(best)) return best;
    refusedAbove = bestScore;
  }
  return -1;
}
