// The group's /metrics: N workers' expositions merged into one. Judged against a third registry
// that saw every worker's events (what one gateway doing all the work would export), not against
// the merge's own arithmetic.

import { describe, expect, test } from "bun:test";
import { Registry, Summary } from "prom-client";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { ADDITIVE_GAUGES, mergeExpositions } from "../../src/admin/merge-exposition.ts";
import { type Exposition, parseExposition, samplesOf } from "../support/prom-text.ts";

/** name{sorted labels} -> value, for comparing two expositions series by series. */
function seriesMap(e: Exposition, keep: (name: string, labels: Readonly<Record<string, string>>) => boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of e.samples) {
    if (!keep(s.name, s.labels)) continue;
    const labels = Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(",");
    out.set(`${s.name}{${labels}}`, s.value);
  }
  return out;
}

/** The family a sample line belongs to, by the exposition's # TYPE names. */
function familyOf(e: Exposition, sampleName: string): string {
  if (e.types.has(sampleName)) return sampleName;
  const base = sampleName.replace(/_(bucket|sum|count)$/, "");
  return e.types.has(base) ? base : sampleName;
}

/** A small deterministic generator, so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

const ENDPOINTS = ["account:19711", "world:19712", 'odd"name\\with\nescapes:1'];
const REFUSALS = ["per_ip_limit", "rate_limited", "max_connections", "proxy_timeout"];

/** One event a worker sees, applied to that worker's metrics and to the registry that sees all. */
function applyEvent(m: GatewayMetrics, pick: number, r: () => number, endpoints: readonly string[]): void {
  const endpoint = endpoints[Math.floor(r() * endpoints.length)]!;
  // Multiples of 1/1024 s: sums of them are exact doubles in any order, so the union's _sum and the merged one compare exactly.
  const seconds = Math.floor(r() * 2048) / 1024;
  switch (pick % 10) {
    case 0:
      m.connectionsTotal.inc();
      m.connectionsActive.inc();
      break;
    case 1:
      m.connectionRefused(REFUSALS[Math.floor(r() * REFUSALS.length)]!);
      break;
    case 2: {
      const t = m.backendTally(endpoint);
      t.bytesIn += Math.floor(r() * 5000);
      t.bytesOut += Math.floor(r() * 5000);
      t.framesIn++;
      m.sessionBound(t);
      m.sessionsActive.inc();
      break;
    }
    case 3:
      m.messagesIn[10 + Math.floor(r() * 3)]! += 1;
      m.messagesOut[200]! += 1;
      break;
    case 4:
      m.backendConnectionSetupLatency.observe({ backend: endpoint }, seconds);
      m.backendConnectionsActive.inc({ backend: endpoint });
      break;
    case 5:
      m.connectionSetupLatency.observe({ service_type: String(10 + Math.floor(r() * 3)) }, seconds / 64);
      break;
    case 6:
      m.requestLatency.observe(Math.floor(r() * 2), seconds / 4096);
      break;
    case 7:
      m.configRefreshed(r() < 0.5 ? "routing_rules" : "realm_mapping", "signal", r() < 0.8);
      break;
    case 8:
      m.sessionBindFailed(m.backendTally(endpoint), "connection_failed");
      break;
    default:
      m.clientCloses.inc({ reason: r() < 0.5 ? "client_closed" : "slow_reader" });
      m.backendPoolIdle.inc({ backend: endpoint });
      break;
  }
}

/** Workers and the registry that saw everything, with scrape-time gauges fed from fixed numbers. */
function group(workerCount: number, defaultMetrics: boolean): { workers: GatewayMetrics[]; union: GatewayMetrics } {
  const make = (queued: () => number): GatewayMetrics => {
    const m = new GatewayMetrics({ defaultMetrics });
    m.trackQueues({ backendQueues: () => [{ endpoint: "account:19711", queuedBytes: queued() }], pooledBytesInUse: () => queued() * 2 });
    return m;
  };
  const queuedOf = (i: number): number => 1000 * (i + 1);
  const workers = Array.from({ length: workerCount }, (_, i) => make(() => queuedOf(i)));
  let total = 0;
  for (let i = 0; i < workerCount; i++) total += queuedOf(i);
  const union = make(() => total);
  return { workers, union };
}

async function expositions(workers: readonly GatewayMetrics[]): Promise<{ worker: number; text: string }[]> {
  return Promise.all(workers.map(async (m, worker) => ({ worker, text: await m.text() })));
}

describe("mergeExpositions with the gateway's metrics", () => {
  test("counters, histograms and additive gauges equal one registry that saw every worker's events", async () => {
    const { workers, union } = group(3, false);
    const r = random(16);
    for (let n = 0; n < 3000; n++) {
      const w = Math.floor(r() * workers.length);
      // Worker 2 alone talks to the third endpoint: label sets present in only some workers are kept.
      const endpoints = w === 2 ? ENDPOINTS : ENDPOINTS.slice(0, 2);
      const pick = Math.floor(r() * 1000);
      const seed = Math.floor(r() * 2 ** 32);
      applyEvent(workers[w]!, pick, random(seed), endpoints);
      applyEvent(union, pick, random(seed), endpoints);
    }
    const merged = parseExposition(mergeExpositions(await expositions(workers)));
    const whole = parseExposition(await union.text());
    const summed = (name: string): boolean => {
      const type = whole.types.get(familyOf(whole, name));
      return type === "counter" || type === "histogram" || (type === "gauge" && ADDITIVE_GAUGES.has(familyOf(whole, name)));
    };
    const expected = seriesMap(whole, (name) => summed(name));
    const actual = seriesMap(merged, (name) => summed(name));
    expect(expected.size).toBeGreaterThan(150);
    expect(actual).toEqual(expected);
    // The events did land: a series only worker 2 had, and a histogram's +Inf bucket.
    expect(samplesOf(merged, "game_gateway_backend_requests_total", { backend: ENDPOINTS[2]!, status: "success" })[0]!.value).toBeGreaterThan(0);
    expect(samplesOf(merged, "game_gateway_backend_queued_bytes", { backend: "account:19711" })[0]!.value).toBe(6000);
    for (const [name, type] of whole.types) expect(merged.types.get(name)).toBe(type);
  });

  test("gauges that do not add up, and the process's own families, are one series per worker", async () => {
    const { workers } = group(2, true);
    workers[0]!.circuitBreakerState.set({ backend: "account:19711" }, 1);
    workers[1]!.circuitBreakerState.set({ backend: "account:19711" }, 0);
    workers[1]!.circuitBreakerState.set({ backend: "world:19712" }, 2);
    workers[0]!.configVersion.set(3);
    workers[1]!.configVersion.set(4);
    const parts = await expositions(workers);
    const merged = parseExposition(mergeExpositions(parts));
    expect(samplesOf(merged, "game_gateway_circuit_breaker_state").map((s) => [s.labels.backend, s.labels.worker, s.value])).toEqual([
      ["account:19711", "0", 1],
      ["account:19711", "1", 0],
      ["world:19712", "1", 2],
    ]);
    expect(samplesOf(merged, "game_gateway_config_version").map((s) => [s.labels.worker, s.value])).toEqual([["0", 3], ["1", 4]]);

    const own = parts.map((p) => parseExposition(p.text));
    const processFamily = (name: string): boolean => /^(game_gateway_)?(process|nodejs)_/.test(name);
    const processSamples = merged.samples.filter((s) => processFamily(s.name));
    expect(processSamples.length).toBeGreaterThan(20);
    for (const s of processSamples) expect(s.labels.worker === "0" || s.labels.worker === "1").toBe(true);
    // Each worker's series is that worker's own value: a counter (CPU seconds) is not summed.
    for (const w of [0, 1]) {
      for (const name of ["process_cpu_seconds_total", "process_start_time_seconds", "process_resident_memory_bytes"]) {
        expect(samplesOf(merged, name, { worker: String(w) }).map((s) => s.value)).toEqual(samplesOf(own[w]!, name).map((s) => s.value));
      }
    }
  });

  test("each family has one HELP and one TYPE, and its lines stay together", async () => {
    const { workers } = group(2, true);
    const text = mergeExpositions(await expositions(workers));
    const helps = text.split("\n").filter((l) => l.startsWith("# HELP "));
    const types = text.split("\n").filter((l) => l.startsWith("# TYPE "));
    expect(new Set(helps.map((l) => l.split(" ")[2])).size).toBe(helps.length);
    expect(new Set(types.map((l) => l.split(" ")[2])).size).toBe(types.length);
    expect(helps.length).toBe(parseExposition(await workers[0]!.text()).types.size);
    // Every sample line follows its own family's # TYPE.
    let family = "";
    for (const line of text.split("\n")) {
      if (line.startsWith("# TYPE ")) family = line.split(" ")[2]!;
      else if (line !== "" && !line.startsWith("#")) expect(line.startsWith(family)).toBe(true);
    }
  });
});

describe("mergeExpositions: summaries", () => {
  test("quantiles are labelled per worker; _sum and _count are summed", async () => {
    const make = (): { registry: Registry; summary: Summary<"route"> } => {
      const registry = new Registry();
      const summary = new Summary({ name: "rpc_seconds", help: "RPC time", labelNames: ["route"], percentiles: [0.5, 0.9], registers: [registry] });
      return { registry, summary };
    };
    const a = make();
    const b = make();
    const all = make();
    for (let i = 1; i <= 100; i++) {
      a.summary.observe({ route: "x" }, i / 8);
      all.summary.observe({ route: "x" }, i / 8);
    }
    for (let i = 1; i <= 10; i++) {
      b.summary.observe({ route: "x" }, 100 + i);
      all.summary.observe({ route: "x" }, 100 + i);
    }
    const merged = parseExposition(mergeExpositions([{ worker: 0, text: await a.registry.metrics() }, { worker: 1, text: await b.registry.metrics() }]));
    const whole = parseExposition(await all.registry.metrics());
    for (const name of ["rpc_seconds_sum", "rpc_seconds_count"]) {
      expect(samplesOf(merged, name, { route: "x" }).map((s) => [s.labels.worker, s.value])).toEqual(samplesOf(whole, name).map((s) => [undefined, s.value]));
    }
    const ownA = parseExposition(await a.registry.metrics());
    expect(samplesOf(merged, "rpc_seconds", { worker: "0" }).map((s) => [s.labels.quantile, s.value])).toEqual(
      samplesOf(ownA, "rpc_seconds").map((s) => [s.labels.quantile, s.value]),
    );
    expect(samplesOf(merged, "rpc_seconds", { worker: "1", quantile: "0.5" })[0]!.value).toBeGreaterThan(100);
    expect(merged.types.get("rpc_seconds")).toBe("summary");
  });
});

describe("mergeExpositions: the text itself", () => {
  const part = (worker: number, text: string) => ({ worker, text });

  test("label values with quotes, backslashes and newlines come out escaped and read back the same", () => {
    const value = 'a "quoted" \\ back\\slash\nnew line';
    const escaped = 'a \\"quoted\\" \\\\ back\\\\slash\\nnew line';
    const text = `# HELP c_total A counter\n# TYPE c_total counter\nc_total{path="${escaped}"} 2\n`;
    const out = mergeExpositions([part(0, text), part(1, text.replace(" 2\n", " 5\n"))]);
    expect(out).toContain(`c_total{path="${escaped}"} 7`);
    expect(samplesOf(parseExposition(out), "c_total")).toEqual([{ name: "c_total", labels: { path: value }, value: 7 }]);
  });

  test("big counters are summed exactly; values are written so they read back as the same double", () => {
    const counter = (v: string) => `# TYPE big_total counter\nbig_total ${v}\n# TYPE f_total counter\nf_total{k="1"} 0.1\nf_total{k="2"} 1.7976931348623157e+308\n`;
    // 2^53 + 1 is no double: summing 2^53 and 1 as doubles would say 2^53.
    const out = mergeExpositions([part(0, counter("9007199254740992")), part(1, counter("1")), part(2, counter("123456789012345678901"))]);
    expect(out).toContain("big_total 123465796211600419894\n");
    const f = samplesOf(parseExposition(out), "f_total");
    expect(f.map((s) => s.value)).toEqual([0.1 + 0.1 + 0.1, Number.POSITIVE_INFINITY]);
    expect(out).toContain(`f_total{k="1"} ${String(0.1 + 0.1 + 0.1)}\n`);
    // One worker's value is copied as written.
    const single = mergeExpositions([part(0, "# TYPE g gauge\ng 1.7976931348623157e+308\n")]);
    expect(single).toContain('g{worker="0"} 1.7976931348623157e+308\n');
  });

  test("histogram buckets stay in le order with +Inf last, even when workers' buckets differ", () => {
    const a = `# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3\nh_sum 4.5\nh_count 3\n`;
    const b = `# TYPE h histogram\nh_bucket{le="0.1"} 0\nh_bucket{le="0.5"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n`;
    const lines = mergeExpositions([part(0, a), part(1, b)]).trim().split("\n");
    expect(lines).toEqual([
      "# TYPE h histogram",
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="0.5"} 1',
      'h_bucket{le="1"} 3',
      'h_bucket{le="+Inf"} 5',
      "h_sum 7.5",
      "h_count 5",
    ]);
  });

  test("label sets in either order meet; untyped samples, NaN and a family only one worker has are kept", () => {
    const a = `# TYPE c_total counter\nc_total{a="1",b="2"} 1\nstray 3\n# TYPE g gauge\ng NaN\n`;
    const b = `# TYPE c_total counter\nc_total{b="2",a="1"} 2\n# TYPE only_b_total counter\nonly_b_total 9\n`;
    const e = parseExposition(mergeExpositions([part(0, a), part(1, b)]));
    expect(samplesOf(e, "c_total")).toEqual([{ name: "c_total", labels: { a: "1", b: "2" }, value: 3 }]);
    expect(samplesOf(e, "stray")).toEqual([{ name: "stray", labels: { worker: "0" }, value: 3 }]);
    expect(Number.isNaN(samplesOf(e, "g", { worker: "0" })[0]!.value)).toBe(true);
    expect(samplesOf(e, "only_b_total")[0]!.value).toBe(9);
  });

  test("a series that already names a worker keeps its own label, not a second one", () => {
    const text = (w: number) => `# TYPE up gauge\nup{worker="${w + 10}"} 1\n`;
    const out = mergeExpositions([part(0, text(0)), part(1, text(1))]);
    expect(out).toBe('# TYPE up gauge\nup{worker="10"} 1\nup{worker="11"} 1\n');
  });

  test("no workers, no text", () => {
    expect(mergeExpositions([])).toBe("");
  });
});
