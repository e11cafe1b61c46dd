// The Grafana dashboard and Prometheus alerts in deploy/ only work if every metric they query is
// one the gateway exports. This parses every PromQL expression in both files and checks each
// metric name (histogram _bucket/_sum/_count folded into their family) against the /metrics
// output of a running gateway with default process metrics on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { GroupMetrics } from "../../src/admin/group-metrics.ts";
import { Gateway } from "../../src/gateway.ts";
import { Logger } from "../../src/log/logger.ts";
import { CapturedLog, rule, testConfig } from "../support/harness.ts";
import { familyOf, grafanaVariableExpr, metricNames, parsePromQL } from "./promql.ts";
import { parseExposition, type Exposition } from "../support/prom-text.ts";

const DEPLOY = join(import.meta.dir, "../../deploy");
const DASHBOARD = join(DEPLOY, "grafana-dashboard.json");
const ALERTS = join(DEPLOY, "prometheus-alerts.yaml");
const ALERT_TESTS = join(DEPLOY, "prometheus-alerts.test.yaml");
const T = 10;

/** One PromQL expression and where it was found. */
interface Located {
  readonly where: string;
  readonly expr: string;
}

/** Every `expr` in the dashboard (panel targets, annotations) and its query variables. */
function dashboardExprs(): Located[] {
  const out: Located[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}[${i}]`));
      return;
    }
    if (node === null || typeof node !== "object") return;
    const o = node as Record<string, unknown>;
    if (typeof o.expr === "string") out.push({ where: `${path}.expr`, expr: o.expr });
    for (const [k, v] of Object.entries(o)) walk(v, `${path}.${k}`);
  };
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
    panels: unknown[];
    annotations?: { list?: unknown[] };
    templating?: { list?: { type?: string; name?: string; query?: string | { query?: string } }[] };
  };
  walk(dashboard.panels, "panels");
  walk(dashboard.annotations ?? {}, "annotations");
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
    const expr = grafanaVariableExpr(q);
    if (expr !== null) out.push({ where: `templating.${v.name}`, expr });
  }
  return out;
}

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const doc = YAML.parse(readFileSync(ALERTS, "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

function alertExprs(): Located[] {
  const doc = YAML.parse(readFileSync(ALERTS, "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `${g.name}/${r.alert ?? r.record}`, expr: r.expr })));
}

/** The input series of the promtool unit tests are selectors too: they must name real metrics. */
function alertTestSeries(): Located[] {
  const doc = YAML.parse(readFileSync(ALERT_TESTS, "utf8")) as { tests: { input_series: { series: string }[] }[] };
  return doc.tests.flatMap((t, i) => t.input_series.map((s, j) => ({ where: `tests[${i}].input_series[${j}]`, expr: s.series })));
}

/** Expressions that are not valid PromQL, with the parser's complaint. */
function unparsable(exprs: readonly Located[]): string[] {
  const bad: string[] = [];
  for (const e of exprs) {
    try {
      parsePromQL(e.expr);
    } catch (err) {
      bad.push(`${e.where}: ${(err as Error).message}`);
    }
  }
  return bad;
}

/** Metric families the expressions select, each with where it is used. */
function families(exprs: readonly Located[], types: ReadonlyMap<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of exprs) {
    for (const name of metricNames(e.expr)) {
      const family = familyOf(name, types);
      out.set(family, [...(out.get(family) ?? []), e.where]);
    }
  }
  return out;
}

/** Names (as written) whose family the exposition does not have, with where they are used. */
function missingNames(exprs: readonly Located[], exposition: Exposition): string[] {
  const missing: string[] = [];
  for (const e of exprs) {
    for (const name of metricNames(e.expr)) {
      if (!exposition.types.has(familyOf(name, exposition.types))) missing.push(`${name} (${e.where})`);
    }
  }
  return missing;
}

/** Matchers on labels that the metric's exported samples never carry (job/instance come from the scrape). */
function unknownLabels(exprs: readonly Located[], exposition: Exposition): string[] {
  const seen = new Map<string, Set<string>>();
  for (const s of exposition.samples) {
    const family = familyOf(s.name, exposition.types);
    const labels = seen.get(family) ?? new Set<string>();
    for (const k of Object.keys(s.labels)) labels.add(k);
    seen.set(family, labels);
  }
  const out: string[] = [];
  for (const e of exprs) {
    for (const sel of parsePromQL(e.expr).selectors) {
      if (sel.metric === null) continue;
      const family = familyOf(sel.metric, exposition.types);
      const labels = seen.get(family);
      if (labels === undefined) continue; // no samples to judge by
      for (const l of sel.labels) {
        if (["job", "instance", "__name__"].includes(l)) continue;
        if (!labels.has(l) && !(l === "le" && exposition.types.get(family) === "histogram")) out.push(`${sel.metric}{${l}} (${e.where})`);
      }
    }
  }
  return out;
}

/** Labels whose values depend on the deployment (addresses, server types), not on the gateway's vocabulary. */
const OPEN_LABELS = new Set(["job", "instance", "__name__", "le", "backend", "service_type"]);

/**
 * Equality matchers (label="value") on the gateway's own vocabulary (direction, error_type,
 * reason, status, ...) whose value no exported sample of that family carries: a dashboard
 * filtering on a value the gateway never writes shows nothing.
 */
function unknownValues(exprs: readonly Located[], exposition: Exposition): string[] {
  const seen = new Map<string, Set<string>>();
  for (const s of exposition.samples) {
    const family = familyOf(s.name, exposition.types);
    for (const [k, v] of Object.entries(s.labels)) {
      const key = `${family}{${k}}`;
      const values = seen.get(key) ?? new Set<string>();
      values.add(v);
      seen.set(key, values);
    }
  }
  const out: string[] = [];
  for (const e of exprs) {
    for (const sel of parsePromQL(e.expr).selectors) {
      if (sel.metric === null) continue;
      const family = familyOf(sel.metric, exposition.types);
      for (const m of sel.equals) {
        if (OPEN_LABELS.has(m.label) || m.value.includes("$")) continue;
        if (!seen.get(`${family}{${m.label}}`)?.has(m.value)) out.push(`${sel.metric}{${m.label}="${m.value}"} (${e.where})`);
      }
    }
  }
  return out;
}

const cleanup: (() => Promise<void> | void)[] = [];
let exposition: Exposition;

beforeAll(async () => {
  const backend = await DemoBackend.start({ port: 0 });
  cleanup.push(() => backend.stop());
  const config = testConfig({
    admin: { listen_addr: "127.0.0.1:0" },
    routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] },
  });
  // Default process metrics on (the harness turns them off): the dashboard's resource panels use them.
  const gateway = Gateway.start(config, {
    defaultMetrics: true,
    logger: new Logger(config.log.level, new CapturedLog()),
    accessLogSink: new CapturedLog(),
  });
  cleanup.push(() => gateway.stop());
  // Some traffic, so labelled series (per backend, per direction) have samples to check labels against.
  const client = await GameClient.connect("127.0.0.1", gateway.port);
  cleanup.push(() => client.close());
  client.send(1, serverIdFor(T), "hello");
  await client.next();
  const res = await fetch(`http://127.0.0.1:${gateway.adminPort}/metrics`);
  expect(res.status).toBe(200);
  // With server.workers > 1 the group's admin port adds the supervisor's own series (the real
  // GroupMetrics, as group-admin.ts appends it): the workers' alerts query those.
  const group = new GroupMetrics({ workerRestarts: () => [{ index: 0, restarts: 0 }, { index: 1, restarts: 2 }] });
  exposition = parseExposition(`${await res.text()}\n${await group.text([{ index: 0, up: true }, { index: 1, up: false }])}`);
});

afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe("PromQL extractor (self-check)", () => {
  test("reports metric names, not functions, aggregations, keywords, label names or template variables", () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, direction) (rate(a_seconds_bucket{instance=~"$instance", direction="up"}[$__rate_interval])))',
      ),
    ).toEqual(["a_seconds_bucket"]);
    expect(metricNames("sum by (backend) (x) / on (instance) group_left (job) sum without (reason) (y + z)")).toEqual(["x", "y", "z"]);
    expect(metricNames("count(s > 0) or vector(0)")).toEqual(["s"]);
    expect(metricNames("time() - start_seconds offset 5m")).toEqual(["start_seconds"]);
    expect(metricNames("topk(3, rate(r_total[5m:1m])) and bool_metric unless inf")).toEqual(["r_total", "bool_metric"]);
    expect(metricNames('{__name__="only_matchers"}')).toEqual([]);
  });

  test("rejects what is not PromQL", () => {
    for (const bad of ["sum(rate(x[5m])", "rat(x[5m])", "x[5]", "x{a=b}", "sum by (a b) (x)", "x y", "x +", "x{a=\"1\""]) {
      expect(() => parsePromQL(bad)).toThrow();
    }
  });

  test("folds histogram series into their family only for histograms", () => {
    expect(familyOf("game_gateway_request_latency_seconds_bucket", exposition.types)).toBe("game_gateway_request_latency_seconds");
    expect(familyOf("game_gateway_request_latency_seconds_count", exposition.types)).toBe("game_gateway_request_latency_seconds");
    expect(familyOf("game_gateway_connections_total_bucket", exposition.types)).toBe("game_gateway_connections_total_bucket");
  });

  test("a misspelled or made-up name is reported missing; real ones are not", () => {
    const probes: Located[] = [
      { where: "typo", expr: "rate(game_gateway_conections_total[5m])" },
      { where: "histogram typo", expr: "histogram_quantile(0.9, rate(game_gateway_request_latency_secondz_bucket[5m]))" },
      { where: "not a histogram", expr: "game_gateway_connections_total_bucket" },
      { where: "made-up default metric", expr: "process_cpu_minutes_total" },
      { where: "real", expr: "sum(rate(game_gateway_request_latency_seconds_bucket[5m])) / game_gateway_connections_total" },
      { where: "real default metric", expr: "rate(process_cpu_seconds_total[5m])" },
    ];
    expect(missingNames(probes, exposition)).toEqual([
      "game_gateway_conections_total (typo)",
      "game_gateway_request_latency_secondz_bucket (histogram typo)",
      "game_gateway_connections_total_bucket (not a histogram)",
      "process_cpu_minutes_total (made-up default metric)",
    ]);
    expect(unknownLabels([{ where: "label typo", expr: 'game_gateway_messages_processed_total{directon="in"}' }], exposition)).toEqual([
      "game_gateway_messages_processed_total{directon} (label typo)",
    ]);
    expect(
      unknownValues(
        [
          { where: "old value", expr: 'game_gateway_messages_processed_total{direction="in"}' },
          { where: "reference value", expr: 'game_gateway_messages_processed_total{direction="client_to_backend",service_type="10"}' },
          { where: "registered at 0", expr: 'game_gateway_routing_errors_total{error_type="not_found"}' },
          { where: "variable", expr: 'game_gateway_routing_errors_total{error_type="$type",job="x"}' },
        ],
        exposition,
      ),
    ).toEqual(['game_gateway_messages_processed_total{direction="in"} (old value)']);
  });

  test("the running gateway exports the standard unprefixed process metrics, and the game_gateway_ ones of earlier versions", () => {
    expect(exposition.types.get("process_cpu_seconds_total")).toBe("counter");
    expect(exposition.types.get("process_resident_memory_bytes")).toBe("gauge");
    expect(exposition.types.get("game_gateway_process_cpu_seconds_total")).toBe("counter");
    expect(exposition.types.get("game_gateway_process_resident_memory_bytes")).toBe("gauge");
    expect(exposition.types.get("game_gateway_request_latency_seconds")).toBe("histogram");
  });
});

describe("deploy/grafana-dashboard.json", () => {
  const exprs = dashboardExprs();

  test("every expression is valid PromQL", () => {
    expect(exprs.length).toBeGreaterThanOrEqual(30);
    expect(unparsable(exprs)).toEqual([]);
  });

  test("every metric it queries is exported by the gateway, with the labels it matches on", () => {
    const used = families(exprs, exposition.types);
    expect(used.size).toBeGreaterThanOrEqual(25);
    expect(missingNames(exprs, exposition)).toEqual([]);
    expect(unknownLabels(exprs, exposition)).toEqual([]);
    expect(unknownValues(exprs, exposition)).toEqual([]);
  });

  test("covers traffic, latency, errors, backends, breakers, rate limits and resources", () => {
    const used = families(exprs, exposition.types);
    for (const family of [
      "game_gateway_request_latency_seconds",
      "game_gateway_connections_active",
      "game_gateway_sessions_active",
      "game_gateway_messages_processed_total",
      "game_gateway_routing_errors_total",
      "game_gateway_client_closes_total",
      "game_gateway_protocol_violations_total",
      "game_gateway_backend_pool_active",
      "game_gateway_backend_pool_idle",
      "game_gateway_circuit_breaker_state",
      "game_gateway_rate_limit_rejected_total",
      "game_gateway_backend_requests_total",
      "game_gateway_connection_rejected_total",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_open_fds",
    ]) {
      expect({ family, used: used.has(family) }).toEqual({ family, used: true });
    }
    const latency = exprs.filter((e) => e.expr.includes("game_gateway_request_latency_seconds_bucket")).map((e) => e.expr);
    for (const q of ["0.5", "0.95", "0.99"]) expect(latency.some((e) => e.includes(`histogram_quantile(${q},`))).toBe(true);
  });

  test("is an importable dashboard: unique panel ids, a query per panel, the datasource variable, a 24-column grid", () => {
    const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
      uid: string;
      title: string;
      schemaVersion: number;
      panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: { expr: string; refId: string }[] }[];
      templating: { list: { name: string; type: string }[] };
    };
    expect(d.uid).toBe("game-gateway");
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating.list.find((v) => v.name === "datasource")?.type).toBe("datasource");
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of d.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === "row") continue;
      expect({ title: p.title, datasource: p.datasource?.uid }).toEqual({ title: p.title, datasource: "${datasource}" });
      expect(p.targets?.length ?? 0).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
    }
  });
});

describe("deploy/prometheus-alerts.yaml", () => {
  const exprs = alertExprs();

  test("every expression is valid PromQL", () => {
    expect(exprs.length).toBe(7);
    expect(unparsable(exprs)).toEqual([]);
  });

  test("every metric it queries is exported by the gateway", () => {
    const used = families(exprs, exposition.types);
    expect([...used.keys()].sort()).toEqual([
      "game_gateway_backend_backpressure_pauses_total",
      "game_gateway_backend_pool_active",
      "game_gateway_backend_pool_idle",
      "game_gateway_circuit_breaker_state",
      "game_gateway_connections_total",
      "game_gateway_rate_limit_rejected_total",
      "game_gateway_request_latency_seconds",
      "game_gateway_routing_errors_total",
      "game_gateway_worker_restarts_total",
      "game_gateway_worker_up",
    ]);
    expect(missingNames(exprs, exposition)).toEqual([]);
    expect(unknownLabels(exprs, exposition)).toEqual([]);
    expect(unknownValues(exprs, exposition)).toEqual([]);
  });

  test("the performance guide's alerts, thresholds and durations", () => {
    const rules = alertRules();
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const expected: [string, string, string][] = [
      ["GameGatewayHighRequestLatency", "> 0.1", "5m"],
      ["GameGatewayBackendPoolSaturated", "> 0.9", "5m"],
      ["GameGatewayHighErrorRate", "> 0.01", "5m"],
      ["GameGatewayRateLimitRejections", "> 0.05", "5m"],
      ["GameGatewayCircuitBreakerOpen", "> 0", "1m"],
    ];
    for (const [name, threshold, duration] of expected) {
      const r = byName.get(name);
      expect({ name, found: r !== undefined }).toEqual({ name, found: true });
      expect(r!.expr.trim().endsWith(threshold)).toBe(true);
      expect(r!.for).toBe(duration);
      expect(typeof r!.labels?.severity).toBe("string");
    }
    expect(byName.get("GameGatewayHighRequestLatency")!.expr).toContain("histogram_quantile(0.95,");
  });

  test("a group's workers: one down for 5 minutes, or restarted more than 3 times in 10 minutes, alerts", () => {
    const byName = new Map(alertRules().map((r) => [r.alert, r]));
    expect(byName.get("GameGatewayWorkerDown")).toMatchObject({ expr: "game_gateway_worker_up == 0\n", for: "5m", labels: { severity: "critical" } });
    expect(byName.get("GameGatewayWorkerRestarting")).toMatchObject({ expr: "increase(game_gateway_worker_restarts_total[10m]) > 3\n", labels: { severity: "warning" } });
    expect(unknownLabels([{ where: "by worker", expr: 'game_gateway_worker_up{worker="1"}' }], exposition)).toEqual([]);
  });

  test("the promtool unit tests' input series are real metrics too", () => {
    const series = alertTestSeries();
    expect(series.length).toBeGreaterThan(10);
    expect(unparsable(series)).toEqual([]);
    expect(missingNames(series, exposition)).toEqual([]);
    expect(unknownValues(series, exposition)).toEqual([]);
  });

  // promtool is optional here (CI does not install Prometheus); where it exists, let it judge too.
  const promtool = Bun.which("promtool");
  test.skipIf(promtool === null)("promtool check rules and promtool test rules pass (when promtool is installed)", () => {
    for (const args of [["check", "rules", ALERTS], ["test", "rules", ALERT_TESTS]]) {
      const r = Bun.spawnSync([promtool!, ...args], { stdout: "pipe", stderr: "pipe" });
      expect({ args: args.join(" "), exitCode: r.exitCode, output: r.exitCode === 0 ? "" : `${r.stdout}${r.stderr}` }).toEqual({
        args: args.join(" "),
        exitCode: 0,
        output: "",
      });
    }
  });
});
