// A PromQL parser small enough to read in one sitting, for tests of the dashboards and alert
// rules shipped in deploy/: it accepts the PromQL grammar (selectors, ranges and subqueries,
// offset/@, functions, aggregations with by/without, binary operators with bool/on/ignoring/
// group_left/group_right) plus Grafana's $variables, rejects anything else, and reports the
// metric names an expression selects together with the label names its matchers use.

export interface SelectorRef {
  /** The metric name, or null for a selector with matchers only ({__name__=~"..."}). */
  readonly metric: string | null;
  /** Label names used in the selector's matchers. */
  readonly labels: readonly string[];
  /** The equality matchers (label="value"), whose values a dashboard depends on. */
  readonly equals: readonly { readonly label: string; readonly value: string }[];
}

export interface ParsedExpr {
  readonly selectors: readonly SelectorRef[];
  readonly functions: readonly string[];
}

export class PromQLError extends Error {
  constructor(message: string, expr: string, at: number) {
    super(`${message} at offset ${at} in: ${expr}`);
  }
}

const AGGREGATIONS = new Set([
  "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
  "bottomk", "topk", "quantile", "limitk", "limit_ratio",
]);
/** Aggregations that take a parameter before the vector: topk(5, x), quantile(0.9, x)... */
const AGGREGATIONS_WITH_PARAM = new Set(["count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"]);

export const FUNCTIONS = new Set([
  "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
  "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
  "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing", "exp",
  "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
  "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info", "irate",
  "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time",
  "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad",
  "rate", "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
  "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
  "timestamp", "vector", "year",
]);

const SET_OPS = new Set(["and", "or", "unless"]);
const KEYWORDS = new Set([
  ...SET_OPS, "atan2", "bool", "on", "ignoring", "group_left", "group_right", "by", "without", "offset",
]);
const COMPARISONS = new Set(["==", "!=", ">", "<", ">=", "<="]);
const MATCH_OPS = new Set(["=", "!=", "=~", "!~"]);
const DURATION = /^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$/;

type Kind = "ident" | "number" | "duration" | "string" | "var" | "op" | "eof";
interface Token {
  readonly kind: Kind;
  readonly text: string;
  readonly at: number;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fail = (msg: string): never => {
    throw new PromQLError(msg, src, i);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    const rest = src.slice(i);
    let m: RegExpExecArray | null;
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += c !== "`" && src[j] === "\\" ? 2 : 1;
      if (j >= src.length) fail("unterminated string");
      out.push({ kind: "string", text: src.slice(i + 1, j), at: i });
      i = j + 1;
    } else if ((m = /^\$(?:\{[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z]+)?\}|[a-zA-Z_][a-zA-Z0-9_]*)/.exec(rest))) {
      out.push({ kind: "var", text: m[0], at: i });
      i += m[0].length;
    } else if ((m = /^(?:[0-9]+(?:ms|s|m|h|d|w|y))+(?![a-zA-Z0-9_.])/.exec(rest))) {
      out.push({ kind: "duration", text: m[0], at: i });
      i += m[0].length;
    } else if ((m = /^(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![a-zA-Z_])/.exec(rest))) {
      out.push({ kind: "number", text: m[0], at: i });
      i += m[0].length;
    } else if ((m = /^[a-zA-Z_][a-zA-Z0-9_:]*/.exec(rest))) {
      out.push({ kind: "ident", text: m[0], at: i });
      i += m[0].length;
    } else if ((m = /^(?:==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}[\],:@])/.exec(rest))) {
      out.push({ kind: "op", text: m[0], at: i });
      i += m[0].length;
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  out.push({ kind: "eof", text: "", at: src.length });
  return out;
}

class Parser {
  private pos = 0;
  private readonly tokens: Token[];
  readonly selectors: SelectorRef[] = [];
  readonly functions: string[] = [];

  constructor(private readonly src: string) {
    this.tokens = tokenize(src);
  }

  parse(): ParsedExpr {
    this.expr(0);
    if (this.peek().kind !== "eof") this.fail(`unexpected ${this.shown()}`);
    return { selectors: this.selectors, functions: this.functions };
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== "eof") this.pos++;
    return t;
  }
  /** The next token as an error message shows it. */
  private shown(t = this.peek()): string {
    return t.kind === "eof" ? "the end of the expression" : JSON.stringify(t.text);
  }
  private fail(msg: string): never {
    throw new PromQLError(msg, this.src, this.peek().at);
  }
  private isOp(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === "op" && t.text === text;
  }
  private expectOp(text: string): void {
    if (!this.isOp(text)) this.fail(`expected ${JSON.stringify(text)}, got ${this.shown()}`);
    this.pos++;
  }
  private isWord(word: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === "ident" && t.text.toLowerCase() === word;
  }

  /** Binary operator precedence (PromQL): or < and/unless < comparisons < +- < * / % atan2 < ^. */
  private binaryPrecedence(): number {
    const t = this.peek();
    if (t.kind === "ident") {
      const w = t.text.toLowerCase();
      if (w === "or") return 1;
      if (w === "and" || w === "unless") return 2;
      if (w === "atan2") return 5;
      return 0;
    }
    if (t.kind !== "op") return 0;
    if (COMPARISONS.has(t.text)) return 3;
    if (t.text === "+" || t.text === "-") return 4;
    if (t.text === "*" || t.text === "/" || t.text === "%") return 5;
    if (t.text === "^") return 6;
    return 0;
  }

  private expr(minPrecedence: number): void {
    this.unary();
    for (;;) {
      const prec = this.binaryPrecedence();
      if (prec === 0 || prec <= minPrecedence) return;
      const op = this.next();
      if (COMPARISONS.has(op.text) && this.isWord("bool")) this.pos++;
      if (this.isWord("on") || this.isWord("ignoring")) {
        this.pos++;
        this.labelList();
        if (this.isWord("group_left") || this.isWord("group_right")) {
          this.pos++;
          if (this.isOp("(")) this.labelList();
        }
      }
      // The right side takes only tighter operators; ^ is right-associative, so also further ^.
      this.expr(prec === 6 ? prec - 1 : prec);
    }
  }

  private unary(): void {
    if (this.isOp("-") || this.isOp("+")) this.pos++;
    this.postfix();
  }

  private postfix(): void {
    this.primary();
    for (;;) {
      if (this.isOp("[")) {
        this.pos++;
        this.durationOrVar("range");
        if (this.isOp(":")) {
          this.pos++;
          if (!this.isOp("]")) this.durationOrVar("subquery step");
        }
        this.expectOp("]");
      } else if (this.isWord("offset")) {
        this.pos++;
        if (this.isOp("-")) this.pos++;
        this.durationOrVar("offset");
      } else if (this.isOp("@")) {
        this.pos++;
        const t = this.next();
        if (t.kind === "ident" && (t.text === "start" || t.text === "end")) {
          this.expectOp("(");
          this.expectOp(")");
        } else if (t.kind !== "number" && t.kind !== "var") this.fail("expected a timestamp after @");
      } else {
        return;
      }
    }
  }

  private durationOrVar(what: string): void {
    const t = this.next();
    if (t.kind === "duration" && DURATION.test(t.text)) return;
    if (t.kind === "var") return;
    this.fail(`expected a duration for the ${what}, got ${this.shown(t)}`);
  }

  private primary(): void {
    const t = this.peek();
    if (t.kind === "number" || t.kind === "string" || t.kind === "var") {
      this.pos++;
      return;
    }
    if (this.isOp("(")) {
      this.pos++;
      this.expr(0);
      this.expectOp(")");
      return;
    }
    if (this.isOp("{")) {
      this.selector(null);
      return;
    }
    if (t.kind !== "ident") this.fail(`unexpected ${this.shown(t)}`);
    const word = t.text;
    const lower = word.toLowerCase();
    if (AGGREGATIONS.has(lower) && (this.isOp("(", 1) || this.isWord("by", 1) || this.isWord("without", 1))) {
      this.aggregation(lower);
      return;
    }
    if (this.isOp("(", 1)) {
      if (!FUNCTIONS.has(word)) this.fail(`unknown function ${JSON.stringify(word)}`);
      this.pos += 2;
      this.functions.push(word);
      if (!this.isOp(")")) {
        this.expr(0);
        while (this.isOp(",")) {
          this.pos++;
          this.expr(0);
        }
      }
      this.expectOp(")");
      return;
    }
    if (lower === "inf" || lower === "nan") {
      this.pos++;
      return;
    }
    if (KEYWORDS.has(lower) || AGGREGATIONS.has(lower)) this.fail(`keyword ${JSON.stringify(word)} where a value was expected`);
    this.pos++;
    this.selector(word);
  }

  private aggregation(op: string): void {
    this.pos++;
    const grouping = () => {
      if (this.isWord("by") || this.isWord("without")) {
        this.pos++;
        this.labelList();
      }
    };
    grouping();
    this.expectOp("(");
    if (AGGREGATIONS_WITH_PARAM.has(op)) {
      this.expr(0);
      this.expectOp(",");
    }
    this.expr(0);
    this.expectOp(")");
    grouping();
  }

  private labelList(): string[] {
    this.expectOp("(");
    const names: string[] = [];
    while (!this.isOp(")")) {
      const t = this.next();
      if (t.kind !== "ident" || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(t.text)) this.fail(`expected a label name, got ${this.shown(t)}`);
      names.push(t.text);
      if (!this.isOp(")")) this.expectOp(",");
    }
    this.pos++;
    return names;
  }

  private selector(metric: string | null): void {
    const labels: string[] = [];
    const equals: { label: string; value: string }[] = [];
    if (this.isOp("{")) {
      this.pos++;
      while (!this.isOp("}")) {
        const name = this.next();
        if (name.kind !== "ident" || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name.text)) this.fail(`expected a label name, got ${this.shown(name)}`);
        const op = this.next();
        if (op.kind !== "op" || !MATCH_OPS.has(op.text)) this.fail(`expected a label matcher operator after ${name.text}`);
        const value = this.next();
        if (value.kind !== "string") this.fail(`expected a quoted value for label ${name.text}`);
        labels.push(name.text);
        if (op.text === "=") equals.push({ label: name.text, value: value.text });
        if (!this.isOp("}")) this.expectOp(",");
      }
      this.pos++;
      if (metric === null && labels.length === 0) this.fail("a selector needs a metric name or a matcher");
    }
    this.selectors.push({ metric, labels, equals });
  }
}

/** Parses one PromQL expression; throws PromQLError if it is not valid PromQL. */
export function parsePromQL(expr: string): ParsedExpr {
  return new Parser(expr).parse();
}

/** Metric names an expression selects (distinct, in order of appearance). */
export function metricNames(expr: string): string[] {
  return [...new Set(parsePromQL(expr).selectors.flatMap((s) => (s.metric === null ? [] : [s.metric])))];
}

const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"] as const;

/**
 * The metric family a selected name belongs to: `x_bucket`, `x_sum` and `x_count` belong to the
 * histogram or summary `x` when `types` says x is one; any other name is its own family.
 */
export function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const type = types.get(base);
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base;
  }
  return name;
}

/**
 * Grafana template variable queries: label_values(<selector>, label), metrics(regex),
 * query_result(<expr>), label_names(); returns the PromQL inside, or null when there is none.
 */
export function grafanaVariableExpr(query: string): string | null {
  const q = query.trim();
  let m = /^label_values\(\s*([\s\S]*?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(q);
  if (m) return m[1]!;
  m = /^query_result\(([\s\S]*)\)$/.exec(q);
  if (m) return m[1]!;
  if (/^label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.test(q) || /^label_names\(\s*\)$/.test(q) || /^metrics\(/.test(q)) return null;
  return q;
}
