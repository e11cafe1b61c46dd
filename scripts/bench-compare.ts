// Runs bench/micro.bench.ts a few times and compares each benchmark with bench/baseline.json and
// with the performance guide's published figure.
//
//   bun scripts/bench-compare.ts [--threshold 1.5] [--min-delta 2] [--runs 3] [--retries 2]
//                                [--baseline bench/baseline.json] [--update]
//
// Exits 1 when a benchmark is slower than its baseline by more than --threshold (a ratio, default
// 1.5) and by more than --min-delta ns (default 2). A benchmark that is not at least 10x faster
// than the guide's figure is a warning only.
// --update writes the measured numbers (rounded) to the baseline file instead of failing.
//
// Robustness on a shared, noisy 2-core machine: each benchmark's value is the BEST (lowest) of
// --runs separate processes, each process reporting mitata's median sample.
//  - Within a process the median already ignores samples that caught another process's time
//    slice (mitata times batches of 4,096 calls; a slice lands on a few batches, not half).
//  - Across processes the spread is not noise but the JIT: the same benchmark settles in a fast
//    or a slow compiled form per process (Pool_Put measured 9 ns in most runs, 17 ns in some).
//    Interference only ever adds time, so the minimum over processes is the steadiest estimate;
//    at the rate seen here, a median of 3 would still land on the slow form about one time in six.
//  - Scaling by a calibration loop measured in the same run was tried and rejected: under load
//    (two busy processes on the two cores) the loop stayed within 2% while some benchmarks moved
//    50%, so the scale factor corrects nothing that happens here. The "Calibration" benchmark is
//    still compared, as a check that the machine itself is as fast as the baseline's.
//  - Load comes in bursts of a few seconds (another test suite) that can slow the same
//    benchmark in every run. So a benchmark over the threshold is measured again, alone, up to
//    --retries times (default 2), and keeps its best: a real regression stays over; a burst does not.
//  - The fastest benchmarks (3-7 ns) also have JIT modes a ratio cannot absorb: ReadFullPacket
//    measured 3.7 ns or 5.5 ns from run to run of the same code, 1.5x. --min-delta ignores slowdowns
//    of under 2 ns; anything that adds real work (an allocation, a Map lookup) adds more.
//  - What none of this absorbs: a neighbour keeping the other core busy for minutes slows the
//    fast benchmarks in every run (ParseClientMessageHeader read 6.5 ns instead of 3.4) while the
//    calibration loop hardly moves. The report then warns that the machine was busy.
// The baseline is made the same way (--update), so both sides use the same estimator.

import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SKIPPED, guideFigure } from "../bench/guide-figures.ts";
import { withTwoDashFlags } from "../src/cli/args.ts";

type Results = Record<string, number>;

const ROOT = resolve(import.meta.dir, "..");
const SUITE = join(ROOT, "bench/micro.bench.ts");
/** The speed-up over the guide's figure below which a benchmark gets a warning. */
const GUIDE_SPEEDUP = 10;
const CALIBRATION = "Calibration";

const argv = withTwoDashFlags(process.argv.slice(2));

function option(name: string, fallback: string): string {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}

function positive(name: string, fallback: number): number {
  const v = Number(option(name, String(fallback)));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

function count(name: string, fallback: number, min: number): number {
  const v = Number(option(name, String(fallback)));
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}`);
  return v;
}

const threshold = positive("--threshold", 1.5);
const runs = count("--runs", 3, 1);
const retries = count("--retries", 2, 0);
const minDelta = Number(option("--min-delta", "2"));
if (!Number.isFinite(minDelta) || minDelta < 0) throw new Error("--min-delta must be a number >= 0");
const baselinePath = resolve(option("--baseline", join(ROOT, "bench/baseline.json")));
const update = argv.includes("--update");

/** One process running the suite (or the benchmarks matching filter); its {name: ns_per_op}. */
async function runSuite(jsonPath: string, filter?: string): Promise<Results> {
  const args = [process.execPath, SUITE, "--json", jsonPath, ...(filter === undefined ? [] : ["--filter", filter])];
  const proc = Bun.spawn(args, { stdout: "ignore", stderr: "inherit" });
  if ((await proc.exited) !== 0) throw new Error(`${args.join(" ")} exited with code ${proc.exitCode}`);
  return (await Bun.file(jsonPath).json()) as Results;
}

/** Highest 1-minute load average seen before a run (the suite itself accounts for about 1). */
let peakLoad = 0;

/** Runs the suite `times` times and lowers each benchmark in `best` to its best value seen. */
async function measureInto(best: Results, times: number, only?: readonly string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-compare-"));
  // Names are made of letters, digits, "_" and "/": nothing to escape in a regex.
  const filter = only === undefined ? undefined : `^(${only.join("|")})$`;
  try {
    for (let i = 1; i <= times; i++) {
      const load = loadavg()[0]!;
      peakLoad = Math.max(peakLoad, load);
      console.error(`run ${i}/${times}${only === undefined ? "" : ` of ${only.join(", ")}`} (load average ${load.toFixed(1)}, ${availableParallelism()} cores) ...`);
      for (const [name, ns] of Object.entries(await runSuite(join(dir, `run-${i}.json`), filter))) {
        best[name] = Math.min(best[name] ?? Infinity, ns);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Three significant digits: enough for a 1.5x threshold, and short diffs. */
function round(ns: number): number {
  return Number(ns.toPrecision(3));
}

function fmt(n: number | undefined, suffix = ""): string {
  return n === undefined ? "-" : `${round(n)}${suffix}`;
}

const current: Results = {};
await measureInto(current, runs);

if (update) {
  const rounded = Object.fromEntries(Object.entries(current).map(([k, v]) => [k, round(v)]));
  await Bun.write(baselinePath, JSON.stringify(rounded, null, 2) + "\n");
  console.log(`wrote ${Object.keys(rounded).length} benchmarks (best of ${runs} runs) to ${baselinePath}`);
  process.exit(0);
}

const baseline = (await Bun.file(baselinePath).json()) as Results;
/** Slower than the baseline by more than the threshold, both as a ratio and in ns. */
function regressed(name: string, ns: number): boolean {
  const base = baseline[name];
  return name !== CALIBRATION && base !== undefined && ns / base > threshold && ns - base > minDelta;
}
const over = () => Object.keys(current).filter((n) => regressed(n, current[n]!));
for (let i = 0; i < retries && over().length > 0; i++) await measureInto(current, 1, over());
const rows: string[][] = [["benchmark", "current ns/op", "baseline ns/op", "current/baseline", "guide ns/op", "speed-up vs guide"]];
const failures: string[] = [];
const warnings: string[] = [];

for (const [name, ns] of Object.entries(current)) {
  const base = baseline[name];
  const guide = guideFigure(name);
  const ratio = base === undefined ? undefined : ns / base;
  const speedup = guide === undefined ? undefined : guide / ns;
  rows.push([name, fmt(ns), fmt(base), fmt(ratio, "x"), fmt(guide), fmt(speedup, "x")]);

  if (ratio === undefined) warnings.push(`NEW  ${name}: not in the baseline (record it with --update)`);
  else if (name === CALIBRATION) {
    // Only a hint about the machine: a different speed here makes every ratio suspect.
    if (ratio > 1.25 || ratio < 0.8) warnings.push(`WARN ${name}: the machine runs at ${fmt(1 / ratio, "x")} the baseline's speed; ratios are suspect`);
  } else if (regressed(name, ns)) failures.push(`FAIL ${name}: ${fmt(ratio, "x")} the baseline's ${fmt(base)} ns/op (threshold ${threshold}x)`);
  else if (ratio > threshold) warnings.push(`NOTE ${name}: ${fmt(ratio, "x")} the baseline, but only +${fmt(ns - base!)} ns (--min-delta ${minDelta})`);
  if (speedup !== undefined && speedup < GUIDE_SPEEDUP) {
    warnings.push(`WARN ${name}: only ${fmt(speedup, "x")} faster than the guide's ${guide} ns/op (want >= ${GUIDE_SPEEDUP}x)`);
  }
}
for (const name of Object.keys(baseline)) {
  if (!(name in current)) warnings.push(`WARN ${name}: in the baseline but not measured (renamed or removed?)`);
}
if (peakLoad >= availableParallelism()) {
  warnings.push(`WARN machine busy: load average up to ${peakLoad.toFixed(1)} on ${availableParallelism()} cores while measuring; a FAIL may be other processes' doing: rerun when quiet`);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
console.log(`\nbest of ${runs} runs (benchmarks over the threshold: up to ${retries} more), each the median of mitata's samples`);
console.log(`baseline: ${baselinePath}`);
for (const [name, why] of Object.entries(SKIPPED)) console.log(`SKIP ${name}: ${why}`);
for (const line of [...warnings, ...failures]) console.log(line);

if (failures.length > 0) {
  console.log(`\n${failures.length} benchmark(s) slower than the baseline by more than ${threshold}x and ${minDelta} ns`);
  process.exit(1);
}
console.log(`\nno benchmark slower than the baseline by more than ${threshold}x and ${minDelta} ns`);
