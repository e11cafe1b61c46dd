// Admission control for new client connections, by client IP:
//   - at most maxPerIp concurrent connections (state: one counter per IP with a live connection,
//     so bounded by the global connection cap);
//   - at most ratePerSec new connections per second (a token bucket per IP, burst = ratePerSec).
// Bucket state is bounded: at most maxTrackedIps addresses are remembered, least recently seen
// forgotten first (a forgotten address simply starts again with a full bucket), and a bucket
// that has refilled is dropped at once since it is the same as no state at all.

export type AdmissionRefusal = "per_ip_limit" | "rate_limited";

export interface AdmissionOptions {
  readonly maxPerIp: number;
  readonly ratePerSec: number;
  readonly maxTrackedIps: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class AdmissionControl {
  private readonly live = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(private options: AdmissionOptions) {}

  /** New limits (reload); counts and buckets are kept. */
  update(options: AdmissionOptions): void {
    this.options = options;
    while (this.buckets.size > options.maxTrackedIps) this.buckets.delete(this.buckets.keys().next().value!);
  }

  get trackedIps(): number {
    return this.buckets.size;
  }

  /** null when admitted (and counted as live until release), else why not. */
  admit(ip: string, now = Date.now()): AdmissionRefusal | null {
    const { maxPerIp, ratePerSec, maxTrackedIps } = this.options;
    const live = this.live.get(ip) ?? 0;
    if (live >= maxPerIp) return "per_ip_limit";

    let b = this.buckets.get(ip);
    if (b === undefined) {
      b = { tokens: ratePerSec, at: now };
    } else {
      this.buckets.delete(ip); // re-inserted below: Map order is least-recently-seen first
      b.tokens = Math.min(ratePerSec, b.tokens + ((now - b.at) * ratePerSec) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) {
      this.remember(ip, b, maxTrackedIps);
      return "rate_limited";
    }
    b.tokens -= 1;
    if (b.tokens < ratePerSec) this.remember(ip, b, maxTrackedIps);
    this.live.set(ip, live + 1);
    return null;
  }

  /** A connection admitted for ip has closed. */
  release(ip: string): void {
    const n = this.live.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.live.delete(ip);
    else this.live.set(ip, n - 1);
  }

  private remember(ip: string, b: Bucket, max: number): void {
    this.buckets.set(ip, b);
    if (this.buckets.size > max) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
