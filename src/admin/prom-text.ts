// One reader of the Prometheus text exposition format (version 0.0.4, as prom-client writes it),
// used where /metrics texts are merged (merge-exposition.ts) and, through test/support/prom-text.ts,
// by every test that reads /metrics: label quoting, escapes and +Inf are parsed one way.
// It keeps what a merge needs and a plain parse drops: the family each sample belongs to (the
// # HELP / # TYPE it follows), the HELP text as written, and each value's text as written.

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface ParsedSample {
  readonly name: string;
  /** Label names and their unescaped values, in the order written. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  /** The value as written ("+Inf", "NaN", "12.5", "1e+21"): copied through unchanged where nothing is summed. */
  readonly valueText: string;
  readonly value: number;
}

export interface ParsedFamily {
  readonly name: string;
  readonly type: MetricType;
  /** The HELP text still escaped, as written after `# HELP name `; "" when there was none. */
  readonly help: string;
  readonly samples: ParsedSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"/g;
const META = /^#[ \t]+(HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:[ \t]+(.*))?$/;
const TYPES: ReadonlySet<string> = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** A value's text to its number; prom-client writes NaN as "Nan". */
export function parseValue(text: string): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN" || text === "Nan") return Number.NaN;
  return Number(text);
}

/** A number as the format writes it; String() gives the shortest text that reads back to the same double. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function unescapeLabelValue(text: string): string {
  return text.indexOf("\\") < 0 ? text : text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

/** Backslash, double quote and newline escaped, as the format requires inside a label value. */
export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : value;
}

/** Parses one sample line (no # comment); throws on anything else. */
export function parseSampleLine(line: string): ParsedSample {
  const m = SAMPLE.exec(line);
  if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
  const labels: [string, string][] = [];
  const labelText = m[2];
  if (labelText !== undefined && labelText !== "") {
    for (const l of labelText.matchAll(LABEL)) labels.push([l[1]!, unescapeLabelValue(l[2]!)]);
  }
  return { name: m[1]!, labels, valueText: m[3]!, value: parseValue(m[3]!) };
}

/**
 * The families of an exposition in the order written. A sample belongs to the family whose
 * # HELP or # TYPE line it follows (histogram `_bucket`/`_sum`/`_count` lines included); a sample
 * named otherwise, with no such line before it, is a family of its own, untyped.
 */
export function parseFamilies(text: string): ParsedFamily[] {
  const families: ParsedFamily[] = [];
  let current: { name: string; type: MetricType; help: string; samples: ParsedSample[] } | undefined;
  const open = (name: string): { name: string; type: MetricType; help: string; samples: ParsedSample[] } => {
    if (current?.name !== name) {
      current = { name, type: "untyped", help: "", samples: [] };
      families.push(current);
    }
    return current;
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.charCodeAt(0) === 35 /* # */) {
      const meta = META.exec(line);
      if (meta === null) continue; // any other comment
      const family = open(meta[2]!);
      if (meta[1] === "TYPE") {
        const type = (meta[3] ?? "").trim();
        if (!TYPES.has(type)) throw new Error(`not a Prometheus metric type: ${line}`);
        family.type = type as MetricType;
      } else {
        family.help = meta[3] ?? "";
      }
      continue;
    }
    const sample = parseSampleLine(line);
    const family = current !== undefined && belongsTo(sample.name, current) ? current : open(sample.name);
    family.samples.push(sample);
  }
  return families;
}

function belongsTo(sampleName: string, family: { name: string; type: MetricType }): boolean {
  if (sampleName === family.name) return true;
  if (!sampleName.startsWith(family.name)) return false;
  const suffix = sampleName.slice(family.name.length);
  if (family.type === "histogram") return suffix === "_bucket" || suffix === "_sum" || suffix === "_count";
  if (family.type === "summary") return suffix === "_sum" || suffix === "_count";
  return false;
}
