// A Prometheus histogram kept as plain bucket counts, for observations made on the data path:
// observe() is a short loop over a typed array — no label hashing, no allocation — and the
// registry reads the counts only when /metrics is scraped. One series per label value, fixed
// at construction (e.g. direction = upstream | downstream).

export class LatencyHistogram<L extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly counts: Float64Array[];
  private readonly sums: Float64Array;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly labelValues: readonly L[],
    /** Upper bounds in seconds, ascending. */
    readonly buckets: readonly number[],
  ) {
    this.counts = labelValues.map(() => new Float64Array(buckets.length + 1));
    this.sums = new Float64Array(labelValues.length);
  }

  /** Records `n` observations of `seconds` for series `series` (index into labelValues). */
  observe(series: number, seconds: number, n = 1): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[series]![i]! += n;
    this.sums[series]! += seconds * n;
  }

  /** Approximate quantile (upper bound of the bucket holding it), in seconds; NaN with no data. */
  quantile(series: number, q: number): number {
    const c = this.counts[series]!;
    let total = 0;
    for (const v of c) total += v;
    if (total === 0) return Number.NaN;
    let seen = 0;
    for (let i = 0; i < c.length; i++) {
      seen += c[i]!;
      if (seen >= q * total) return i < this.buckets.length ? this.buckets[i]! : Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  }

  count(series: number): number {
    let total = 0;
    for (const v of this.counts[series]!) total += v;
    return total;
  }

  reset(): void {
    for (const c of this.counts) c.fill(0);
    this.sums.fill(0);
  }

  /** The prom-client metric protocol (Registry.registerMetric accepts any object with get()). */
  async get() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    this.labelValues.forEach((label, s) => {
      const c = this.counts[s]!;
      let cumulative = 0;
      for (let i = 0; i < c.length; i++) {
        cumulative += c[i]!;
        const le = i < this.buckets.length ? this.buckets[i]! : "+Inf";
        values.push({ metricName: `${this.name}_bucket`, labels: { le, [this.labelName]: label }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: label }, value: this.sums[s]! });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: label }, value: cumulative });
    });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
