import { describe, expect, test } from "bun:test";
import { HISTOGRAM_MAX_US, Histogram } from "../../src/loadtest/histogram.ts";

function filled(values: Iterable<number>): Histogram {
  const h = new Histogram();
  for (const v of values) h.record(v);
  return h;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v++) out.push(v);
  return out;
}

const PERCENTILES = [0, 1, 10, 50, 90, 99, 99.9, 99.99, 100];

describe("Histogram", () => {
  test("an empty histogram reports NaN", () => {
    const h = new Histogram();
    expect(h.count).toBe(0);
    expect(h.percentileUs(50)).toBeNaN();
    expect(h.minUs).toBeNaN();
    expect(h.maxUs).toBeNaN();
    expect(h.meanUs).toBeNaN();
  });

  test("values below 256 µs are exact", () => {
    const h = filled(range(1, 200));
    expect(h.count).toBe(200);
    expect(h.percentileUs(50)).toBe(100);
    expect(h.percentileUs(90)).toBe(180);
    expect(h.percentileUs(99)).toBe(198);
    expect(h.percentileUs(100)).toBe(200);
    expect(h.percentileUs(0)).toBe(1);
    expect(h.minUs).toBe(1);
    expect(h.maxUs).toBe(200);
    expect(h.meanUs).toBe(100.5);
  });

  test("percentiles of 1..100,000 µs are within 1/128 above the true value; min, max and mean are exact", () => {
    const h = filled(range(1, 100_000));
    const truth: Record<number, number> = { 50: 50_000, 90: 90_000, 99: 99_000, 99.9: 99_900 };
    for (const [p, v] of Object.entries(truth)) {
      const got = h.percentileUs(Number(p));
      expect(got).toBeGreaterThanOrEqual(v);
      expect(got).toBeLessThanOrEqual(v * (1 + 1 / 128));
    }
    expect(h.minUs).toBe(1);
    expect(h.maxUs).toBe(100_000);
    expect(h.percentileUs(100)).toBe(100_000);
    expect(h.meanUs).toBe(50_000.5);
  });

  test("any single value is reported within 1/128 at every magnitude", () => {
    for (let v = 1; v < 2 ** 32; v = Math.ceil(v * 1.37)) {
      // 1 and the maximum around it, so the clamp to min/max does not hide the bucket's width.
      const h = filled([0, v, HISTOGRAM_MAX_US]);
      const got = h.percentileUs(50);
      expect(got).toBeGreaterThanOrEqual(v);
      expect(got).toBeLessThanOrEqual(v + v / 128);
    }
  });

  test("nearest rank: p99.9 of 1,000 values is the 999th, not lifted to the 1,000th by float noise", () => {
    // 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
    const h = filled(range(1, 1000).map((v) => v * 1000));
    const p999 = h.percentileUs(99.9);
    expect(p999).toBeGreaterThanOrEqual(999_000);
    expect(p999).toBeLessThan(1_000_000);
    expect(h.percentileUs(100)).toBe(1_000_000);
  });

  test("fractions round, negatives count as 0, huge values clamp to the maximum", () => {
    const h = filled([0.4, 1.6, -5, Number.NaN, 1e12]);
    expect(h.count).toBe(5);
    expect(h.minUs).toBe(0);
    expect(h.percentileUs(50)).toBe(0);
    expect(h.percentileUs(70)).toBe(2);
    expect(h.maxUs).toBe(HISTOGRAM_MAX_US);
  });

  test("merging two halves equals recording everything in one", () => {
    const all = range(1, 50_000).map((v) => (v * 7919) % 3_000_000);
    const whole = filled(all);
    const a = filled(all.filter((_, i) => i % 3 === 0));
    const b = filled(all.filter((_, i) => i % 3 !== 0));
    const merged = new Histogram();
    merged.merge(a);
    merged.merge(b);
    for (const p of PERCENTILES) expect(merged.percentileUs(p)).toBe(whole.percentileUs(p));
    expect(merged.count).toBe(whole.count);
    expect(merged.minUs).toBe(whole.minUs);
    expect(merged.maxUs).toBe(whole.maxUs);
    expect(merged.meanUs).toBeCloseTo(whole.meanUs, 9);
  });

  test("merging through JSON (as worker processes do) equals merging the objects", () => {
    const a = filled(range(100, 5000));
    const b = filled(range(4000, 90_000).filter((v) => v % 5 === 0));
    const viaJson = Histogram.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    viaJson.merge(JSON.parse(JSON.stringify(b.toJSON())));
    const direct = new Histogram();
    direct.merge(a);
    direct.merge(b);
    for (const p of PERCENTILES) expect(viaJson.percentileUs(p)).toBe(direct.percentileUs(p));
    expect(viaJson.count).toBe(direct.count);
    expect(viaJson.minUs).toBe(100);
    expect(viaJson.maxUs).toBe(90_000);
  });

  test("merging an empty histogram changes nothing; merging into an empty one copies", () => {
    const a = filled([10, 20, 30]);
    a.merge(new Histogram());
    a.merge(new Histogram().toJSON());
    expect(a.count).toBe(3);
    expect(a.minUs).toBe(10);
    const b = new Histogram();
    b.merge(a);
    expect(b.percentileUs(50)).toBe(20);
    expect(b.minUs).toBe(10);
    expect(b.maxUs).toBe(30);
  });

  test("reset empties it", () => {
    const h = filled([5, 6, 7]);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.percentileUs(50)).toBeNaN();
    h.record(9);
    expect(h.minUs).toBe(9);
  });
});
