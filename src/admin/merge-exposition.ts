// One /metrics for a group of worker processes: the workers' Prometheus text expositions merged
// into one, so a dashboard built on one gateway reads the group as one gateway.
// Runs at scrape time (N texts of a few hundred lines), never per message.
//
// The rule (docs/metrics.md, "With workers"):
// - counters, histograms (`_bucket` per `le`, `_sum`, `_count`) and the `_sum` / `_count` of
//   summaries: summed per identical label set; a label set only some workers have is kept;
// - gauges in `additiveGauges` (things that add up across processes: connections, sessions,
//   queued bytes, ...): summed likewise;
// - every other gauge (a breaker's state, the config version, ...), summary quantiles (they do
//   not add up), untyped samples, and every family of the process itself (`process_*`,
//   `nodejs_*`, and their `game_gateway_` copies; even counters such as CPU seconds: each
//   process's own): one series per worker, labelled `worker="<index>"`.

import { type MetricType, type ParsedFamily, type ParsedSample, escapeLabelValue, formatValue, parseFamilies } from "./prom-text.ts";

export interface WorkerExposition {
  /** The worker's index, or "supervisor" for the supervisor's own process families: the value of its `worker` label. */
  readonly worker: number | "supervisor";
  /** Its /metrics text (Prometheus text format 0.0.4). */
  readonly text: string;
}

export interface MergeOptions {
  /** Gauge families (by name) summed across workers; other gauges are labelled per worker. */
  readonly additiveGauges?: ReadonlySet<string>;
  /** Families starting with one of these are each process's own: labelled per worker whatever their type. */
  readonly perWorkerPrefixes?: readonly string[];
  /** The label that names the worker; "worker" unless said. */
  readonly workerLabel?: string;
}

/** The gateway's gauges that add up across workers (src/admin/metrics.ts). */
export const ADDITIVE_GAUGES: ReadonlySet<string> = new Set([
  "game_gateway_connections_active",
  "game_gateway_sessions_active",
  "game_gateway_backend_connections_active",
  "game_gateway_backend_pool_active",
  "game_gateway_backend_pool_idle",
  "game_gateway_backend_queued_bytes",
  "game_gateway_buffer_pool_in_use_bytes",
  "game_gateway_trace_spans_pending",
]);

/** Families that describe the process itself (prom-client's default metrics, src/admin/process-metrics.ts). */
export const PER_WORKER_PREFIXES: readonly string[] = ["process_", "nodejs_", "game_gateway_process_", "game_gateway_nodejs_"];

const INTEGER_TEXT = /^-?\d+$/;

/** One output line being summed: its value as a double, and exactly while every part was an integer. */
interface Point {
  readonly name: string;
  readonly labels: string;
  /** The text of the only contribution so far, copied through unchanged; null once summed. */
  onlyText: string | null;
  sum: number;
  /** The exact integer sum once past 2^53 (a double would round it); null while `sum` is exact or not integral. */
  exact: bigint | null;
  integral: boolean;
}

interface Series {
  readonly points: Point[];
  /** Histogram buckets by `le` text, sorted at output (+Inf last). */
  buckets: Point[] | null;
}

interface FamilyOut {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly points: Map<string, Point>;
  /** Per series (labels without `le`/`quantile`), its lines in output order. */
  readonly series: Map<string, Series>;
}

/** Merges N workers' expositions into one (see the rule above). */
export function mergeExpositions(parts: readonly WorkerExposition[], options: MergeOptions = {}): string {
  const additive = options.additiveGauges ?? ADDITIVE_GAUGES;
  const prefixes = options.perWorkerPrefixes ?? PER_WORKER_PREFIXES;
  const workerLabel = options.workerLabel ?? "worker";
  const families = new Map<string, FamilyOut>();
  for (const part of parts) {
    const workerPair = `${workerLabel}="${escapeLabelValue(String(part.worker))}"`;
    for (const family of parseFamilies(part.text)) {
      let out = families.get(family.name);
      if (out === undefined) {
        out = { name: family.name, type: family.type, help: family.help, points: new Map(), series: new Map() };
        families.set(family.name, out);
      }
      const perWorker = isPerWorker(family, out.type, additive, prefixes);
      for (const sample of family.samples) add(out, sample, perWorker || isQuantile(out.type, sample) ? workerPair : null, workerLabel);
    }
  }
  const blocks: string[] = [];
  for (const family of families.values()) blocks.push(render(family));
  return blocks.length === 0 ? "" : `${blocks.join("\n\n")}\n`;
}

function isPerWorker(family: ParsedFamily, type: MetricType, additive: ReadonlySet<string>, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (family.name.startsWith(prefix)) return true;
  if (type === "counter" || type === "histogram" || type === "summary") return false;
  if (type === "gauge") return !additive.has(family.name);
  return true; // untyped: nothing says its values add up
}

function isQuantile(type: MetricType, sample: ParsedSample): boolean {
  return type === "summary" && sample.name.endsWith("_sum") === false && sample.name.endsWith("_count") === false;
}

/**
 * Adds one sample: summed into the point with the same name and labels, or (with `workerPair`) a
 * point of its own. A sample that already has the worker label (a series a worker labelled
 * itself) keeps its own: a second label of that name would make the exposition invalid.
 */
function add(family: FamilyOut, sample: ParsedSample, workerPair: string | null, workerLabel: string): void {
  let seriesLabels = "";
  let le: string | null = null;
  let rest = "";
  // Label pairs in name order, so two workers that wrote a set in different orders meet in one line.
  const pairs = sample.labels.length > 1 && !inNameOrder(sample.labels) ? [...sample.labels].sort(byName) : sample.labels;
  for (const [name, value] of pairs) {
    if (name === workerLabel) workerPair = null;
    const pair = `${name}="${escapeLabelValue(value)}"`;
    if ((name === "le" && family.type === "histogram") || (name === "quantile" && family.type === "summary")) {
      if (name === "le") le = value;
      rest = pair;
    } else {
      seriesLabels = seriesLabels === "" ? pair : `${seriesLabels},${pair}`;
    }
  }
  if (workerPair !== null) seriesLabels = seriesLabels === "" ? workerPair : `${seriesLabels},${workerPair}`;
  const labels = rest === "" ? seriesLabels : seriesLabels === "" ? rest : `${seriesLabels},${rest}`;
  const key = `${sample.name}{${labels}}`;
  let point = family.points.get(key);
  if (point !== undefined) {
    sum(point, sample);
    return;
  }
  const integral = INTEGER_TEXT.test(sample.valueText);
  const exact = integral && !Number.isSafeInteger(sample.value) ? BigInt(sample.valueText) : null;
  point = { name: sample.name, labels, onlyText: sample.valueText, sum: sample.value, exact, integral };
  family.points.set(key, point);
  let series = family.series.get(seriesLabels);
  if (series === undefined) {
    series = { points: [], buckets: null };
    family.series.set(seriesLabels, series);
  }
  if (le !== null && sample.name.endsWith("_bucket")) {
    (series.buckets ??= []).push(point);
    leOf.set(point, le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le));
  } else {
    series.points.push(point);
  }
}

function inNameOrder(labels: ReadonlyArray<readonly [string, string]>): boolean {
  for (let i = 1; i < labels.length; i++) if (labels[i - 1]![0] > labels[i]![0]) return false;
  return true;
}

function byName(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Each bucket's `le` as a number, for sorting; a WeakMap so Point stays small for the rest. */
const leOf = new WeakMap<Point, number>();

function sum(point: Point, sample: ParsedSample): void {
  point.onlyText = null;
  const next = point.sum + sample.value;
  if (point.integral && INTEGER_TEXT.test(sample.valueText)) {
    // Integers past 2^53 are summed exactly; the double alone would round the last digits off.
    if (point.exact !== null || !Number.isSafeInteger(next) || !Number.isSafeInteger(sample.value)) {
      point.exact = (point.exact ?? BigInt(point.sum)) + BigInt(sample.valueText);
    }
  } else {
    point.integral = false;
    point.exact = null;
  }
  point.sum = next;
}

function valueText(point: Point): string {
  if (point.onlyText !== null) return point.onlyText === "Nan" ? "NaN" : point.onlyText;
  if (point.integral && point.exact !== null) return point.exact.toString();
  return formatValue(point.sum);
}

function render(family: FamilyOut): string {
  const lines: string[] = [];
  if (family.help !== "") lines.push(`# HELP ${family.name} ${family.help}`);
  if (family.type !== "untyped") lines.push(`# TYPE ${family.name} ${family.type}`);
  for (const series of family.series.values()) {
    // Buckets first, in `le` order with +Inf last, then the rest (_sum, _count) as first written.
    if (series.buckets !== null) {
      series.buckets.sort((a, b) => leOf.get(a)! - leOf.get(b)!);
      for (const point of series.buckets) lines.push(line(point));
    }
    for (const point of series.points) lines.push(line(point));
  }
  return lines.join("\n");
}

function line(point: Point): string {
  return point.labels === "" ? `${point.name} ${valueText(point)}` : `${point.name}{${point.labels}} ${valueText(point)}`;
}
