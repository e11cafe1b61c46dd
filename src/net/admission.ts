// Admission control for new client connections, by client IP:
//   - at most maxPerIp concurrent connections (state: one counter per IP with a live connection,
//     so bounded by the global connection cap);
//   - at most ratePerSec new connections per second (a token bucket per IP, burst = ratePerSec).
// Bucket state is bounded: at most maxTrackedIps addresses are remembered. It is kept in two
// generations: new and touched buckets go into the young one; when that holds half the bound,
// the old generation is dropped whole and the young one becomes old. So the addresses forgotten
// are the least recently seen, at O(1) per connection (deleting Map entries one by one from the
// front is O(n) per delete in JavaScriptCore). A forgotten address starts again with a full
// bucket; a full bucket is never stored, since it is the same as no state at all.

import type { AdmissionGate, AdmissionOptions, AdmissionRefusal, AdmissionWaiter } from "./admission-gate.ts";
import { type TokenBucket, takeToken } from "./token-bucket.ts";

export type { AdmissionOptions, AdmissionRefusal } from "./admission-gate.ts";

/** One process's own limits; as an AdmissionGate it always answers at once. */
export class AdmissionControl implements AdmissionGate {
  private readonly live = new Map<string, number>();
  private young = new Map<string, TokenBucket>();
  private old = new Map<string, TokenBucket>();

  /** now: milliseconds since the epoch (default Date.now); tests pass a clock they advance themselves. */
  constructor(
    private options: AdmissionOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** New limits (reload); counts and buckets are kept. */
  update(options: AdmissionOptions): void {
    this.options = options;
    if (this.young.size + this.old.size > options.maxTrackedIps) this.old = new Map();
  }

  get trackedIps(): number {
    return this.young.size + this.old.size;
  }

  /** null when admitted (and counted as live until release), else why not. */
  admit(ip: string, now = this.now()): AdmissionRefusal | null {
    const { maxPerIp, ratePerSec, maxTrackedIps } = this.options;
    const live = this.live.get(ip) ?? 0;
    if (live >= maxPerIp) return "per_ip_limit";

    let b = this.young.get(ip);
    if (b === undefined) {
      b = this.old.get(ip);
      if (b !== undefined) this.old.delete(ip); // promoted into the young generation below
    }
    b ??= { tokens: ratePerSec, at: now };
    if (!takeToken(b, now, ratePerSec, ratePerSec)) {
      this.remember(ip, b, maxTrackedIps);
      return "rate_limited";
    }
    if (b.tokens < ratePerSec) this.remember(ip, b, maxTrackedIps);
    else this.young.delete(ip);
    this.live.set(ip, live + 1);
    return null;
  }

  readonly answersAtOnce = true;

  /** AdmissionGate: decided here and now, never pending. */
  request(ip: string, _waiter: AdmissionWaiter): AdmissionRefusal | null {
    return this.admit(ip);
  }

  /** AdmissionGate: nothing is ever pending here. */
  cancel(_waiter: AdmissionWaiter): void {}

  /** A connection admitted for ip has closed. */
  release(ip: string): void {
    const n = this.live.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.live.delete(ip);
    else this.live.set(ip, n - 1);
  }

  private remember(ip: string, b: TokenBucket, max: number): void {
    if (!this.young.has(ip) && this.young.size >= Math.max(1, Math.floor(max / 2))) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(ip, b);
  }
}
