// Compares the microbenchmarks of the working tree with those of an older commit, measured in the
// same run: both run this tree's bench/micro.bench.ts (same fixtures), one over this tree's src/,
// the other over the commit's src/ (`git archive` into a temporary directory).
//
//   bun scripts/bench-ab.ts --base 637012f [--rounds 8] [--filter '^SessionManager']
//
// bench:compare compares against numbers recorded earlier (bench/baseline.json), on a machine
// whose load changes by the minute; this one alternates processes of the two trees (base, this,
// this, base, ...) so both see the same load, and reports per benchmark the median and spread of
// each side and the median of the per-round ratios (this / base), the steadiest figure on a busy
// machine: a burst of load slows both processes of a round, not one side of the comparison.
// The harness's own helpers that the base may not have yet (src/cli/args.ts and the modules it
// imports) are copied from this tree; they are not measured.

import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { withTwoDashFlags } from "../src/cli/args.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Files the bench harness imports for itself, not for what it measures. */
const HARNESS_HELPERS = ["src/cli/args.ts"];

/** `files` and every file of this tree they import by a relative path, transitively (repo-relative). */
function withLocalImports(files: readonly string[]): string[] {
  const scanner = new Bun.Transpiler({ loader: "ts" });
  const seen = new Set<string>();
  const todo = [...files];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    for (const imp of scanner.scanImports(readFileSync(join(ROOT, f), "utf8"))) {
      if (imp.path.startsWith(".")) todo.push(relative(ROOT, resolve(ROOT, dirname(f), imp.path)));
    }
  }
  return [...seen];
}

const argv = withTwoDashFlags(process.argv.slice(2));
function option(name: string, fallback?: string): string {
  const i = argv.indexOf(name);
  const v = i < 0 ? fallback : argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  return v;
}
const base = option("--base");
const rounds = Number(option("--rounds", "8"));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be an integer >= 1");
const filter = option("--filter", ".");

/** A directory holding `commit`'s src/ and this tree's bench/, runnable like the tree itself. */
async function checkout(commit: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "bench-ab-"));
  const archive = Bun.spawn(["git", "-C", ROOT, "archive", "--format=tar", commit, "src"], { stdout: "pipe", stderr: "inherit" });
  const untar = Bun.spawn(["tar", "-x", "-C", dir], { stdin: archive.stdout, stderr: "inherit" });
  if ((await archive.exited) !== 0 || (await untar.exited) !== 0) throw new Error(`git archive ${commit} failed`);
  cpSync(join(ROOT, "bench"), join(dir, "bench"), { recursive: true });
  for (const f of withLocalImports(HARNESS_HELPERS)) cpSync(join(ROOT, f), join(dir, f));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

type Results = Record<string, number>;

async function runSuite(dir: string, out: string): Promise<Results> {
  const args = [process.execPath, join(dir, "bench/micro.bench.ts"), "--filter", filter, "--json", out];
  const proc = Bun.spawn(args, { cwd: dir, stdout: "ignore", stderr: "inherit" });
  if ((await proc.exited) !== 0) throw new Error(`${args.join(" ")} exited with code ${proc.exitCode}`);
  return (await Bun.file(out).json()) as Results;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (n: number, digits = 3): string => Number(n.toPrecision(digits)).toString();

const baseDir = await checkout(base);
const scratch = mkdtempSync(join(tmpdir(), "bench-ab-out-"));
const sides = [
  { name: base, dir: baseDir, samples: {} as Record<string, number[]> },
  { name: "this tree", dir: ROOT, samples: {} as Record<string, number[]> },
];
try {
  for (let r = 0; r < rounds; r++) {
    console.error(`round ${r + 1}/${rounds} (load average ${loadavg()[0]!.toFixed(1)}) ...`);
    // Alternate which side goes first, so neither always runs after the other's warm-up.
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const got = await runSuite(side.dir, join(scratch, `${sides.indexOf(side)}-${r}.json`));
      for (const [k, ns] of Object.entries(got)) (side.samples[k] ??= []).push(ns);
    }
  }
} finally {
  rmSync(baseDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}

const [before, after] = sides as [(typeof sides)[0], (typeof sides)[0]];
const rows = [["benchmark", `${base} median (min-max) ns`, "this tree median (min-max) ns", "ratio: median (quartiles)"]];
for (const name of Object.keys(after.samples)) {
  const a = after.samples[name]!;
  const b = before.samples[name];
  const spread = (xs: readonly number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
  if (b === undefined) {
    rows.push([name, "-", spread(a), "-"]);
    continue;
  }
  const ratios = a.map((x, i) => x / b[i]!).sort((x, y) => x - y);
  const q = (p: number) => ratios[Math.min(ratios.length - 1, Math.floor(p * ratios.length))]!;
  rows.push([name, spread(b), spread(a), `${fmt(median(ratios))}x (${fmt(q(0.25), 2)}-${fmt(q(0.75), 2)})`]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
for (const [i, row] of rows.entries()) {
  console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
console.log(`\n${rounds} rounds, each one process per side (mitata's median sample); ratio = this tree / ${base}, per round`);
