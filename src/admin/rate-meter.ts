// Messages per second as /api/status reports them. The gateway samples its two message totals
// once a second; a rate is taken from the older of the last two samples (1-2 s back) to now.
// Computed here rather than between two polls of the status page, so the page shows a rate from
// its first paint instead of a dash until its second poll.

const SAMPLE_INTERVAL_MS = 1_000;

export interface MessageTotals {
  readonly in: number;
  readonly out: number;
}

export interface MessageRates {
  readonly in_per_s: number;
  readonly out_per_s: number;
}

export class RateMeter {
  private olderAt: number;
  private olderIn = 0;
  private olderOut = 0;
  private newerAt: number;
  private newerIn = 0;
  private newerOut = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly totals: () => MessageTotals) {
    this.olderAt = this.newerAt = Date.now();
    const t = totals();
    this.olderIn = this.newerIn = t.in;
    this.olderOut = this.newerOut = t.out;
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  private sample(): void {
    const t = this.totals();
    this.olderAt = this.newerAt;
    this.olderIn = this.newerIn;
    this.olderOut = this.newerOut;
    this.newerAt = Date.now();
    this.newerIn = t.in;
    this.newerOut = t.out;
  }

  /** Rates from the older sample to `now` (totals read now); 0 over an empty interval. */
  rates(now: MessageTotals): MessageRates {
    const seconds = (Date.now() - this.olderAt) / 1000;
    if (seconds <= 0) return { in_per_s: 0, out_per_s: 0 };
    return { in_per_s: (now.in - this.olderIn) / seconds, out_per_s: (now.out - this.olderOut) / seconds };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
