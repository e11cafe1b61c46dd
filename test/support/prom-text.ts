// The Prometheus text reader every test reading /metrics uses: src/admin/prom-text.ts (which the
// group's /metrics merge uses too), flattened to samples with labels as records.

import { parseFamilies } from "../../src/admin/prom-text.ts";

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** Metric family name to its # TYPE (counter, gauge, histogram, summary, untyped). */
  readonly types: ReadonlyMap<string, string>;
}

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const family of parseFamilies(text)) {
    types.set(family.name, family.type); // no # TYPE line: "untyped", as the format reads it
    for (const s of family.samples) samples.push({ name: s.name, labels: Object.fromEntries(s.labels), value: s.value });
  }
  return { samples, types };
}

/** The samples named `name` whose labels include `match`. */
export function samplesOf(e: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sumOf(e: Exposition, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samplesOf(e, name, match)) sum += s.value;
  return sum;
}
