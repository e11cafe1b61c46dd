// Keeps the group's merged counters monotonic, as Prometheus requires of a counter. A merged
// counter is a sum over workers; it would fall when a worker is left out of a scrape (it did not
// answer in time) or restarts (its counters begin again at 0), and rate()/increase() read every
// fall as a reset: phantom increase. So, per worker, the group remembers the last value it saw of
// each summed series, and adds as extra parts to merge:
// - for a worker that did not answer: its last values (carried forward);
// - for a worker that restarted: its previous lives' final values ("retired"), added to the new
//   life's own; a series a live worker no longer shows: its last value.
// Per-process families (`process_*`, ...) and gauges are not carried: they are labelled per
// worker, or describe the present (a silent worker's gauges are simply omitted).
// Runs at scrape time, never per message. Bounded: at most maxSeriesPerWorker series remembered
// per worker; a series past the bound is not carried (its sum may fall when that worker restarts),
// and is counted in `dropped`.

import type { WorkerExposition } from "./merge-exposition.ts";
import { PER_WORKER_PREFIXES } from "./merge-exposition.ts";
import { type MetricType, type ParsedSample, escapeLabelValue, formatValue, parseFamilies } from "./prom-text.ts";

/** One worker's answer to this scrape. */
export interface ScrapedWorker {
  readonly worker: number;
  /** Changes when the worker process is replaced (its pid and start time, say). */
  readonly life: string;
  /** Its /metrics text; null when it did not answer this scrape. */
  readonly text: string | null;
}

/** A summed series: what is needed to write it again. */
interface SeriesShape {
  readonly family: string;
  readonly type: MetricType;
  readonly help: string;
  /** The sample line's name and labels, `name{a="1",b="2"}` (labels as written by the worker). */
  readonly line: string;
}

interface WorkerMemory {
  life: string;
  /** Series key -> last value seen in this life. */
  readonly last: Map<string, number>;
  /** Series key -> the final values of its previous lives, summed. */
  readonly retired: Map<string, number>;
}

export const DEFAULT_MAX_CARRIED_SERIES_PER_WORKER = 20_000;

export class CounterCarry {
  private readonly workers = new Map<number, WorkerMemory>();
  /** Every key's shape, shared by the workers (the same series on each). */
  private readonly shapes = new Map<string, SeriesShape>();
  /** Series not remembered because a worker's bound was reached. */
  dropped = 0;

  constructor(
    private readonly maxSeriesPerWorker: number = DEFAULT_MAX_CARRIED_SERIES_PER_WORKER,
    private readonly perWorkerPrefixes: readonly string[] = PER_WORKER_PREFIXES,
  ) {}

  /** Records this scrape; returns the parts to merge beside the workers' own (one per worker with something carried). */
  carry(scrape: readonly ScrapedWorker[]): WorkerExposition[] {
    const parts: WorkerExposition[] = [];
    for (const s of scrape) {
      let memory = this.workers.get(s.worker);
      if (memory === undefined) {
        memory = { life: s.life, last: new Map(), retired: new Map() };
        this.workers.set(s.worker, memory);
      }
      const extra = new Map<string, number>();
      if (s.text === null) {
        addAll(extra, memory.retired);
        addAll(extra, memory.last);
      } else {
        if (memory.life !== s.life) {
          // A new process: what the old one counted is retired, added from now on.
          addAll(memory.retired, memory.last);
          memory.last.clear();
          memory.life = s.life;
        }
        const seen = this.remember(memory, s.text);
        addAll(extra, memory.retired);
        for (const [key, value] of memory.last) if (!seen.has(key)) add(extra, key, value);
      }
      const text = this.render(extra);
      if (text !== "") parts.push({ worker: s.worker, text });
    }
    return parts;
  }

  /** Stores the worker's summed series' values; returns the keys it showed. */
  private remember(memory: WorkerMemory, text: string): Set<string> {
    const seen = new Set<string>();
    for (const family of parseFamilies(text)) {
      if (!this.isSummedCumulative(family.name, family.type)) continue;
      for (const sample of family.samples) {
        if (family.type === "summary" && !sample.name.endsWith("_sum") && !sample.name.endsWith("_count")) continue;
        const key = seriesLine(sample);
        if (!memory.last.has(key) && !memory.retired.has(key) && memory.last.size + memory.retired.size >= this.maxSeriesPerWorker) {
          this.dropped++;
          continue;
        }
        if (!this.shapes.has(key)) this.shapes.set(key, { family: family.name, type: family.type, help: family.help, line: key });
        memory.last.set(key, sample.value);
        seen.add(key);
      }
    }
    return seen;
  }

  private isSummedCumulative(name: string, type: MetricType): boolean {
    for (const prefix of this.perWorkerPrefixes) if (name.startsWith(prefix)) return false;
    return type === "counter" || type === "histogram" || type === "summary";
  }

  /** Prometheus text of the carried values, grouped by family. */
  private render(values: Map<string, number>): string {
    if (values.size === 0) return "";
    const byFamily = new Map<string, string[]>();
    for (const [key, value] of values) {
      const shape = this.shapes.get(key)!;
      let lines = byFamily.get(shape.family);
      if (lines === undefined) {
        lines = [];
        if (shape.help !== "") lines.push(`# HELP ${shape.family} ${shape.help}`);
        lines.push(`# TYPE ${shape.family} ${shape.type}`);
        byFamily.set(shape.family, lines);
      }
      lines.push(`${shape.line} ${formatValue(value)}`);
    }
    return `${[...byFamily.values()].map((l) => l.join("\n")).join("\n")}\n`;
  }
}

function seriesLine(sample: ParsedSample): string {
  if (sample.labels.length === 0) return sample.name;
  const pairs = [...sample.labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${sample.name}{${pairs.map(([n, v]) => `${n}="${escapeLabelValue(v)}"`).join(",")}}`;
}

function add(into: Map<string, number>, key: string, value: number): void {
  into.set(key, (into.get(key) ?? 0) + value);
}

function addAll(into: Map<string, number>, from: ReadonlyMap<string, number>): void {
  for (const [key, value] of from) add(into, key, value);
}
