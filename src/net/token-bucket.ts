// The one token bucket behind every rate limit here (new connections per IP, frames per session).

export interface TokenBucket {
  tokens: number;
  /** When tokens was last brought up to date (ms). */
  at: number;
}

/** Refills b continuously at ratePerSec up to cap, then takes one token if there is one. */
export function takeToken(b: TokenBucket, now: number, ratePerSec: number, cap: number): boolean {
  b.tokens = Math.min(cap, b.tokens + ((now - b.at) * ratePerSec) / 1000);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}
