// The offered rate bench:e2e holds a ramped open-loop run to (bench/e2e/offered-load.ts).
import { expect, test } from "bun:test";
import { offeredPerSecond, scheduledSends } from "../../bench/e2e/offered-load.ts";

test("workload c (5,000 clients ramped at 2,500/s, 30 s at 10/s) asks for 1,450,000 sends, not 1,500,000", () => {
  // Σ_{i<5000} (30 − i/2500) × 10 = (150,000 − 4,999) × 10: the brief's 1,450,000 counts the ramp
  // as continuous (5,000 × 2 s / 2 of connection-seconds missing); connection 0 starts at once.
  expect(scheduledSends(5000, 2500, 30, 10)).toBeCloseTo(1_450_010, 6);
  expect(scheduledSends(5000, 2500, 30, 10)).toBeCloseTo(1_450_000, -2);
  // 48,333/s: what a generator holding its schedule sends, where the nominal rate says 50,000/s.
  expect(offeredPerSecond(5000, 2500, 30, 10)).toBeCloseTo(48_333.67, 1);
});

test("no ramp: clients x seconds x rate", () => {
  expect(scheduledSends(5000, 0, 30, 10)).toBe(1_500_000);
  expect(offeredPerSecond(1000, 0, 8, 25)).toBe(25_000);
});

test("a ramp slower than the run: connections never dialled ask for nothing", () => {
  // 100 connections at 10/s over 5 s: connections 0..49 are dialled (i/10 < 5), the rest never.
  // Σ_{i<50} (5 − i/10) = 250 − 122.5 = 127.5 connection-seconds.
  expect(scheduledSends(100, 10, 5, 2)).toBeCloseTo(255, 9);
  // The brute-force sum agrees.
  let sum = 0;
  for (let i = 0; i < 100; i++) sum += Math.max(0, 5 - i / 10) * 2;
  expect(scheduledSends(100, 10, 5, 2)).toBeCloseTo(sum, 9);
});
