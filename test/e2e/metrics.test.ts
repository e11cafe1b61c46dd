// A dashboard built on the reference gateway keeps working: every case it counts is provoked here
// through real clients, real backends and the real gateway, and the exact series are read back
// from /metrics. What the series must be is written below from the reference facts
// (../shared/reference/reference-gateway.md, "Metric names"), not from src/admin/metrics.ts.
import { afterEach, describe, expect, test } from "bun:test";
import YAML from "yaml";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { TestScope, type TestGateway, eventually, rule, str, text } from "../support/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";
import { type Exposition, parseExposition, samplesOf, sumOf } from "../support/prom-text.ts";

const P = "game_gateway_";

/** The reference's metrics: name (without the prefix), type and label names. */
const REFERENCE_METRICS: readonly [name: string, type: "counter" | "gauge" | "histogram", labels: readonly string[]][] = [
  ["connections_active", "gauge", []],
  ["connections_total", "counter", []],
  ["backend_connections_active", "gauge", ["backend"]],
  ["sessions_active", "gauge", []],
  ["routing_errors_total", "counter", ["error_type"]],
  ["connection_rejected_total", "counter", ["reason"]],
  ["rate_limit_rejected_total", "counter", []],
  ["circuit_breaker_state", "gauge", ["backend"]],
  ["backend_requests_total", "counter", ["backend", "status"]],
  ["backend_connection_setup_latency_seconds", "histogram", ["backend"]],
  ["backend_connection_latency_seconds", "histogram", ["backend"]],
  ["backend_errors_total", "counter", ["backend", "error_type"]],
  ["backend_timeouts_total", "counter", ["backend"]],
  ["backend_retries_total", "counter", ["backend"]],
  ["backend_bytes_transmitted_total", "counter", ["backend", "direction"]],
  ["connection_setup_latency_seconds", "histogram", ["service_type"]],
  ["messages_processed_total", "counter", ["direction", "service_type"]],
  ["config_refresh_errors_total", "counter", ["config_type"]],
  ["config_refresh_success_total", "counter", ["config_type"]],
  ["backend_pool_active", "gauge", ["backend"]],
  ["backend_pool_idle", "gauge", ["backend"]],
  ["pool_cleanup_errors_total", "counter", []],
];

/** Label values the reference writes, which its dashboards filter on. */
const REFERENCE_VALUES = {
  messagesDirection: ["backend_to_client", "client_to_backend"],
  bytesDirection: ["request", "response"],
  requestStatus: ["error", "success"],
  routingErrorType: ["circuit_breaker_open", "connection_failed", "message_too_large", "not_found"],
  backendErrorType: ["circuit_breaker_open", "connection_failed", "notification_failed", "timeout"],
  rejectionReason: ["global_rate_limit", "ip_rate_limit", "pool_and_queue_full", "pool_closed_or_full"],
  configType: ["realm_mapping", "routing_rules"],
};

/** 1 ms doubling, n buckets (then +Inf). */
const doubling = (n: number): string[] => [...Array.from({ length: n }, (_, i) => String(0.001 * 2 ** i)), "+Inf"];
const REFERENCE_BUCKETS: readonly [name: string, le: string[]][] = [
  ["backend_connection_latency_seconds", doubling(10)],
  ["backend_connection_setup_latency_seconds", doubling(12)],
  ["connection_setup_latency_seconds", doubling(10)],
];

async function scrape(gw: TestGateway): Promise<Exposition> {
  const res = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** The one sample of `name` (prefixed) with exactly these labels; fails listing what there is. */
function value(m: Exposition, name: string, labels: Record<string, string> = {}): number {
  const full = name.startsWith("process_") ? name : P + name;
  const exact = samplesOf(m, full, labels).filter((s) => Object.keys(s.labels).length === Object.keys(labels).length);
  if (exact.length !== 1) throw new Error(`expected one ${full}${JSON.stringify(labels)}, found ${JSON.stringify(samplesOf(m, full))}`);
  return exact[0]!.value;
}

/** The values a label takes across the samples of a family, sorted. */
function labelValues(m: Exposition, name: string, label: string): string[] {
  return [...new Set(samplesOf(m, P + name).map((s) => s.labels[label]!))].sort();
}

/** A port nothing listens on: dials to it are refused. */
function deadPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

const scope = new TestScope();
afterEach(scope.release);

const admin = { admin: { listen_addr: "127.0.0.1:0" } };

async function echo(c: GameClient, serverType: number, body: string): Promise<void> {
  c.send(1, serverIdFor(serverType), text(body));
  expect(str((await c.next()).body)).toBe(body);
}

describe("the reference's metric names, labels and label values", () => {
  test("a routed session, a routing miss, a failed dial, an oversized message and config reloads, read back exactly", async () => {
    const healthy = await scope.backend();
    const H = `127.0.0.1:${healthy.port}`;
    const D = `127.0.0.1:${deadPort()}`;
    const rules = [rule(10, [H]), rule(20, [D])];
    const gw = scope.gateway(
      {
        ...admin,
        security: { max_message_size: 64 },
        // The dead endpoint's breaker must stay closed: this test wants the dial failure itself.
        circuit_breaker: { failure_threshold: 1_000_000 },
        connection_pool: { retry_delay: "20ms" },
        routing: { rules },
      },
      { defaultMetrics: true },
    );

    // A routed session: three messages each way.
    const c = await gw.connect();
    for (let i = 0; i < 3; i++) await echo(c, 10, `m${i}`);
    // A routing miss.
    const lost = await gw.connect();
    lost.send(1, serverIdFor(99), text("?"));
    await lost.closed;
    // A session routed to a backend that refuses every dial.
    await eventually(async () => (await gw.gateway.metrics.value("backend_errors_total", { backend: D, error_type: "connection_failed" })) >= 1, "a failed dial");
    const refused = await gw.connect();
    refused.send(1, serverIdFor(20), text("anyone?"));
    await refused.closed;
    // A message over security.max_message_size.
    const big = await gw.connect();
    big.send(1, serverIdFor(10), new Uint8Array(100));
    await big.closed;
    // Config reloads: one applied, one refused.
    const dir = mkdtempSync(join(tmpdir(), "gw-metrics-"));
    writeFileSync(join(dir, "ok.yaml"), YAML.stringify({ ...admin, security: { max_message_size: 64 }, routing: { rules } }));
    writeFileSync(join(dir, "bad.yaml"), "routing: 5\n");
    expect((await gw.gateway.reloadFromFile(join(dir, "ok.yaml"))).ok).toBe(true);
    expect((await gw.gateway.reloadFromFile(join(dir, "bad.yaml"))).ok).toBe(false);
    await eventually(async () => (await gw.gateway.metrics.value("connections_active")) === 1, "the refused clients to be gone");

    const m = await scrape(gw);

    // Every reference name, with its type and exactly its label names.
    for (const [name, type, labels] of REFERENCE_METRICS) {
      expect({ name, type: m.types.get(P + name) }).toEqual({ name, type });
      const series = samplesOf(m, type === "histogram" ? `${P}${name}_count` : P + name);
      expect({ name, exported: series.length > 0 }).toEqual({ name, exported: true });
      for (const s of series) expect({ name, labels: Object.keys(s.labels).sort() }).toEqual({ name, labels: [...labels].sort() });
    }
    for (const [name, le] of REFERENCE_BUCKETS) {
      const first = samplesOf(m, `${P}${name}_bucket`)[0]!;
      const { le: _, ...series } = first.labels;
      expect({ name, le: samplesOf(m, `${P}${name}_bucket`, series).map((s) => s.labels.le) }).toEqual({ name, le });
    }

    // The routed session: one success for its backend, not one per message.
    expect(value(m, "backend_requests_total", { backend: H, status: "success" })).toBe(1);
    expect(value(m, "backend_requests_total", { backend: H, status: "error" })).toBe(0);
    expect(value(m, "messages_processed_total", { direction: "client_to_backend", service_type: "10" })).toBe(3);
    expect(value(m, "messages_processed_total", { direction: "backend_to_client", service_type: "10" })).toBe(3);
    expect(labelValues(m, "messages_processed_total", "direction")).toEqual(REFERENCE_VALUES.messagesDirection);
    expect(value(m, "backend_bytes_transmitted_total", { backend: H, direction: "request" })).toBeGreaterThan(0);
    expect(value(m, "backend_bytes_transmitted_total", { backend: H, direction: "response" })).toBeGreaterThan(0);
    expect(labelValues(m, "backend_bytes_transmitted_total", "direction")).toEqual(REFERENCE_VALUES.bytesDirection);
    expect(labelValues(m, "backend_requests_total", "status")).toEqual(REFERENCE_VALUES.requestStatus);
    expect(value(m, "connection_setup_latency_seconds_count", { service_type: "10" })).toBe(1);
    expect(value(m, "backend_connection_latency_seconds_count", { backend: H })).toBe(1);
    expect(value(m, "backend_connection_setup_latency_seconds_count", { backend: H })).toBeGreaterThanOrEqual(1);
    expect(value(m, "sessions_active")).toBe(1);
    expect(value(m, "connections_active")).toBe(1);
    expect(value(m, "connections_total")).toBe(4);
    expect(value(m, "backend_connections_active", { backend: H })).toBeGreaterThanOrEqual(1);
    expect(value(m, "backend_pool_active", { backend: H })).toBe(1);
    expect(value(m, "backend_pool_idle", { backend: H })).toBeGreaterThanOrEqual(0);
    expect(value(m, "circuit_breaker_state", { backend: H })).toBe(0);
    expect(sumOf(m, `${P}request_latency_seconds_count`)).toBeGreaterThanOrEqual(6);

    // The routing miss, the failed dial and the oversized message, each under the reference's value.
    expect(value(m, "routing_errors_total", { error_type: "not_found" })).toBe(1);
    expect(value(m, "routing_errors_total", { error_type: "connection_failed" })).toBe(1);
    expect(value(m, "routing_errors_total", { error_type: "message_too_large" })).toBe(1);
    expect(value(m, "routing_errors_total", { error_type: "circuit_breaker_open" })).toBe(0);
    expect(value(m, "backend_requests_total", { backend: D, status: "error" })).toBe(1);
    expect(value(m, "backend_requests_total", { backend: D, status: "success" })).toBe(0);
    expect(value(m, "backend_errors_total", { backend: D, error_type: "connection_failed" })).toBeGreaterThanOrEqual(1);
    expect(value(m, "backend_retries_total", { backend: D })).toBeGreaterThanOrEqual(1);
    for (const backend of [H, D]) {
      for (const error_type of REFERENCE_VALUES.backendErrorType) expect(samplesOf(m, `${P}backend_errors_total`, { backend, error_type })).toHaveLength(1);
    }
    expect(value(m, "backend_errors_total", { backend: H, error_type: "connection_failed" })).toBe(0);
    for (const t of REFERENCE_VALUES.routingErrorType) expect(labelValues(m, "routing_errors_total", "error_type")).toContain(t);

    // Config reloads: a config file carries the routing rules; realm_mapping is there, at 0.
    expect(value(m, "config_refresh_success_total", { config_type: "routing_rules" })).toBe(1);
    expect(value(m, "config_refresh_errors_total", { config_type: "routing_rules" })).toBe(1);
    expect(value(m, "config_refresh_success_total", { config_type: "realm_mapping" })).toBe(0);
    expect(value(m, "config_refresh_errors_total", { config_type: "realm_mapping" })).toBe(0);
    // The reference's values, plus ours for Consul loads (an extra value, never in place of one).
    expect(labelValues(m, "config_refresh_success_total", "config_type")).toEqual([...REFERENCE_VALUES.configType, "consul_endpoints"].sort());
    expect(value(m, "config_reloads_total", { source: "file", result: "success" })).toBe(1);

    // Rejection reasons and cleanup errors are exported from the start, at 0 here.
    for (const reason of REFERENCE_VALUES.rejectionReason) expect(value(m, "connection_rejected_total", { reason })).toBe(0);
    expect(value(m, "pool_cleanup_errors_total")).toBe(0);
    expect(value(m, "rate_limit_rejected_total")).toBe(0);

    // The standard unprefixed process metrics, with real values.
    const now = Date.now() / 1000;
    expect(m.types.get("process_cpu_seconds_total")).toBe("counter");
    expect(value(m, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(value(m, "process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
    expect(value(m, "process_open_fds")).toBeGreaterThan(3); // listeners and sockets
    expect(value(m, "process_max_fds")).toBeGreaterThan(0);
    expect(value(m, "process_virtual_memory_bytes")).toBeGreaterThan(0);
    expect(value(m, "process_virtual_memory_max_bytes")).toBeGreaterThan(0);
    expect(value(m, "process_network_receive_bytes_total")).toBeGreaterThan(0); // this test's loopback traffic at least
    expect(value(m, "process_network_transmit_bytes_total")).toBeGreaterThan(0);
    const started = value(m, "process_start_time_seconds");
    expect(started).toBeLessThanOrEqual(now);
    expect(started).toBeGreaterThan(now - 24 * 3600);
    c.close();
  });

  test("an open breaker: routing_errors_total{error_type=circuit_breaker_open}, counted against its backend", async () => {
    const D = `127.0.0.1:${deadPort()}`;
    const gw = scope.gateway({
      ...admin,
      circuit_breaker: { failure_threshold: 1, open_timeout: "1m" },
      connection_pool: { retry_delay: "20ms" },
      routing: { rules: [rule(20, [D])] },
    });
    await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: D })) === 1, "the breaker to open");
    const c = await gw.connect();
    c.send(1, serverIdFor(20), text("anyone?"));
    await c.closed;
    const m = await scrape(gw);
    expect(value(m, "circuit_breaker_state", { backend: D })).toBe(1);
    expect(value(m, "routing_errors_total", { error_type: "circuit_breaker_open" })).toBe(1);
    expect(value(m, "routing_errors_total", { error_type: "connection_failed" })).toBe(0);
    expect(value(m, "backend_errors_total", { backend: D, error_type: "circuit_breaker_open" })).toBe(1);
    expect(value(m, "backend_requests_total", { backend: D, status: "error" })).toBe(1);
  });

  test("a backend that never answers Ping: backend_errors_total{error_type=timeout}, the exact cause in backend_connection_closes_total", async () => {
    const mute = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    scope.defer(() => mute.stop(true));
    const M = `127.0.0.1:${mute.port}`;
    const gw = scope.gateway({
      ...admin,
      backend: { ping_interval: "100ms", ping_timeout: "200ms", connections_per_endpoint: 1 },
      connection_pool: { retry_delay: "20ms" },
      routing: { rules: [rule(10, [M])] },
    });
    await eventually(async () => (await gw.gateway.metrics.value("backend_timeouts_total", { backend: M })) >= 1, "a Ping to time out");
    const m = await scrape(gw);
    expect(value(m, "backend_errors_total", { backend: M, error_type: "timeout" })).toBeGreaterThanOrEqual(1);
    expect(value(m, "backend_connection_closes_total", { backend: M, cause: "ping_timeout" })).toBeGreaterThanOrEqual(1);
    expect(samplesOf(m, `${P}backend_errors_total`, { error_type: "ping_timeout" })).toEqual([]);
  });

  test("dedicated mode: one success per session and its dial as backend_connection_latency_seconds", async () => {
    const b = await scope.backend();
    const B = `127.0.0.1:${b.port}`;
    const gw = scope.gateway({ ...admin, backend: { mode: "dedicated" }, routing: { rules: [rule(10, [B])] } });
    const clients = await Promise.all([1, 2].map(() => gw.connect()));
    for (const c of clients) for (let i = 0; i < 3; i++) await echo(c, 10, `d${i}`);
    const m = await scrape(gw);
    expect(value(m, "backend_requests_total", { backend: B, status: "success" })).toBe(2);
    expect(value(m, "backend_requests_total", { backend: B, status: "error" })).toBe(0);
    expect(value(m, "backend_connection_latency_seconds_count", { backend: B })).toBe(2);
    expect(value(m, "messages_processed_total", { direction: "client_to_backend", service_type: "10" })).toBe(6);
    for (const c of clients) c.close();
  });

  test("per-IP limits count as ip_rate_limit, the global cap as global_rate_limit; the exact refusal is its own metric", async () => {
    // Concurrent connections from one address.
    const perIp = scope.gateway({ ...admin, security: { max_connections_per_ip: 1 } });
    const first = await perIp.connect();
    const second = await perIp.connect();
    await second.closed;
    let m = await scrape(perIp);
    expect(value(m, "connection_rejected_total", { reason: "ip_rate_limit" })).toBe(1);
    expect(value(m, "connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);
    expect(value(m, "rate_limit_rejected_total")).toBe(1);
    first.close();

    // New connections per second from one address (the clock stands still: the bucket never refills).
    const rate = scope.gateway({ ...admin, security: { connection_rate_limit: 2 } }, { clock: new ManualClock() });
    const clients = await Promise.all([1, 2, 3].map(() => rate.connect()));
    await eventually(async () => (await rate.gateway.metrics.value("connection_rejected_total", { reason: "ip_rate_limit" })) === 1, "one refusal");
    m = await scrape(rate);
    expect(value(m, "connection_rejected_total", { reason: "ip_rate_limit" })).toBe(1);
    expect(value(m, "connection_refusals_total", { refusal: "rate_limited" })).toBe(1);
    expect(value(m, "rate_limit_rejected_total")).toBe(1);
    for (const c of clients) c.close();

    // The global cap (connection_pool.max_connections).
    const global = scope.gateway({ ...admin, connection_pool: { max_connections: 1 } });
    const only = await global.connect();
    await eventually(() => global.gateway.clientConnections === 1, "the first client to be accepted");
    const over = await global.connect();
    await over.closed;
    m = await scrape(global);
    expect(value(m, "connection_rejected_total", { reason: "global_rate_limit" })).toBe(1);
    expect(value(m, "connection_refusals_total", { refusal: "max_connections" })).toBe(1);
    expect(value(m, "connection_rejected_total", { reason: "ip_rate_limit" })).toBe(0);
    only.close();
  });
});
