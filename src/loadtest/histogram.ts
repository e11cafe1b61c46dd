// A log-linear latency histogram in the spirit of HdrHistogram, kept in integer microseconds.
// Values below 256 µs get their own bucket; above that every power of two is split into 128
// buckets, so a reported percentile is within 1/128 (0.8%) of the true value at any magnitude.
// Recording is one Math.clz32, a shift and an array increment: cheap enough to run per reply,
// and histograms from several processes merge by adding counts.

/** Linear buckets below this value; each power of two above it has SUB_BUCKETS buckets. */
const LINEAR_LIMIT = 256;
const SUB_BITS = 7;
/** Largest value kept apart (2^32 - 1 µs, about 71 minutes); larger values share the last bucket. */
export const HISTOGRAM_MAX_US = 0xffffffff;
// index(2^32 - 1) = (24 << 7) + 255 = 3327.
const BUCKETS = 3328;

function bucketIndex(v: number): number {
  if (v < LINEAR_LIMIT) return v;
  // v in [2^m, 2^(m+1)), m >= 8: keep its top 8 bits, so the bucket is (shift, top) with top in [128, 256).
  const shift = 24 - Math.clz32(v);
  return (shift << SUB_BITS) + (v >>> shift);
}

/** Largest value that lands in bucket i. */
function bucketHighest(i: number): number {
  if (i < LINEAR_LIMIT) return i;
  const shift = (i >> SUB_BITS) - 1;
  const top = i - (shift << SUB_BITS);
  // Multiplication, not <<: top << 24 would overflow 32-bit integer arithmetic.
  return (top + 1) * 2 ** shift - 1;
}

/** A histogram as JSON: non-empty buckets as [index, count] pairs flattened into one array. */
export interface HistogramData {
  readonly buckets: number[];
  readonly count: number;
  readonly sumUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private sum = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = 0;

  /** Records one value in microseconds (rounded; negative or NaN counts as 0). */
  record(us: number): void {
    let v = Math.round(us);
    if (!(v >= 0)) v = 0;
    else if (v > HISTOGRAM_MAX_US) v = HISTOGRAM_MAX_US;
    this.counts[bucketIndex(v)]!++;
    this.total++;
    this.sum += v;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  get count(): number {
    return this.total;
  }

  /** Smallest value recorded, exact; NaN when empty. */
  get minUs(): number {
    return this.total === 0 ? Number.NaN : this.lo;
  }

  /** Largest value recorded, exact; NaN when empty. */
  get maxUs(): number {
    return this.total === 0 ? Number.NaN : this.hi;
  }

  /** Exact mean of the (rounded) values; NaN when empty. */
  get meanUs(): number {
    return this.total === 0 ? Number.NaN : this.sum / this.total;
  }

  /**
   * The value at percentile p (0..100): the highest value of the bucket holding the ceil(p% of
   * count)-th smallest recording, clamped to the exact min and max. NaN when empty.
   */
  percentileUs(p: number): number {
    if (this.total === 0) return Number.NaN;
    // The epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) from moving up a rank.
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.total - 1e-9));
    const c = this.counts;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += c[i]!;
      if (seen >= rank) return Math.min(this.hi, Math.max(this.lo, bucketHighest(i)));
    }
    return this.hi;
  }

  /** Adds another histogram's recordings to this one. */
  merge(other: Histogram | HistogramData): void {
    if (other instanceof Histogram) {
      if (other.total === 0) return;
      const a = this.counts;
      const b = other.counts;
      for (let i = 0; i < BUCKETS; i++) a[i]! += b[i]!;
      this.addSummary(other.total, other.sum, other.lo, other.hi);
      return;
    }
    if (other.count === 0) return;
    const pairs = other.buckets;
    for (let k = 0; k + 1 < pairs.length; k += 2) {
      const i = pairs[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= BUCKETS) throw new RangeError(`histogram bucket ${i} is out of range`);
      this.counts[i]! += pairs[k + 1]!;
    }
    this.addSummary(other.count, other.sumUs, other.minUs, other.maxUs);
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.lo = Number.POSITIVE_INFINITY;
    this.hi = 0;
  }

  toJSON(): HistogramData {
    const buckets: number[] = [];
    const c = this.counts;
    for (let i = 0; i < BUCKETS; i++) if (c[i]! > 0) buckets.push(i, c[i]!);
    return { buckets, count: this.total, sumUs: this.sum, minUs: this.total === 0 ? 0 : this.lo, maxUs: this.hi };
  }

  static fromJSON(data: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(data);
    return h;
  }

  private addSummary(count: number, sum: number, lo: number, hi: number): void {
    this.total += count;
    this.sum += sum;
    if (lo < this.lo) this.lo = lo;
    if (hi > this.hi) this.hi = hi;
  }
}
