// Every metric name the reference gateway (and the performance guide) uses is exported with its
// labels, and moves when its event happens: this test provokes each event and reads /metrics.
import { afterAll, expect, test } from "bun:test";
import YAML from "yaml";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { eventually, rule, startGateway, str, text } from "../support/harness.ts";
import { type Exposition, parseExposition, samplesOf } from "../support/prom-text.ts";

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** The values of the samples named `name` whose labels include `labels`. */
function find(m: Exposition, name: string, labels: Record<string, string> = {}): number[] {
  return samplesOf(m, name, labels).map((s) => s.value);
}

test("every reference metric is registered with its labels and moves with its event", async () => {
  const healthy = await DemoBackend.start({ port: 0 });
  const doomed = await DemoBackend.start({ port: 0 });
  cleanup.push(() => healthy.stop());
  const mute = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  cleanup.push(() => mute.stop(true));
  const H = `127.0.0.1:${healthy.port}`;
  const D = `127.0.0.1:${doomed.port}`;
  const M = `127.0.0.1:${mute.port}`;
  const rules = [rule(10, [H]), rule(20, [D]), rule(30, [M])];
  const gw = startGateway({
    admin: { listen_addr: "127.0.0.1:0" },
    security: { max_connections_per_ip: 50, message_rate_limit: 100, message_rate_burst: 100 },
    backend: { ping_interval: "100ms", connections_per_endpoint: 2 },
    // The mute backend's Pings must time out; the healthy one's Pongs must not, even on a loaded
    // machine (200 ms opened its breaker under load). The test waits for the timeout, not a time.
    connection_pool: { read_timeout: "2s", retry_delay: "20ms" },
    circuit_breaker: { failure_threshold: 2, open_timeout: "1m" },
    routing: { rules },
  });
  cleanup.push(() => gw.stop());

  // Traffic: sessions, messages both ways, bytes, setup latency, request latency.
  const c = await gw.connect();
  for (let i = 0; i < 5; i++) {
    c.send(1, serverIdFor(10), text(`m${i}`));
    expect(str((await c.next()).body)).toBe(`m${i}`);
  }
  // A routing error, a per-IP rejection, and a message-rate rejection.
  const lost = await gw.connect();
  lost.send(1, serverIdFor(99), text("?"));
  await lost.closed;
  const flood = await gw.connect();
  for (let i = 0; i < 150; i++) flood.send(1, serverIdFor(10), text("f"));
  await flood.frames(100, 5000);
  const crowd = await Promise.all(Array.from({ length: 50 }, () => gw.connect()));
  await eventually(async () => (await gw.gateway.metrics.value("connection_rejected_total")) >= 1, "a per-IP rejection");
  for (const x of crowd) x.close();
  // Backend failures: a killed backend (errors, retries, breaker) and a mute one (timeouts).
  await doomed.stop();
  await eventually(async () => (await gw.gateway.metrics.value("circuit_breaker_state", { backend: D })) === 1, "breaker open");
  await eventually(async () => (await gw.gateway.metrics.value("backend_timeouts_total", { backend: M })) >= 1, "a ping timeout");
  await eventually(async () => (await gw.gateway.metrics.value("backend_connection_latency_seconds", { backend: H })) >= 1, "a timed Pong");
  // Config reloads: one applied, one refused.
  const dir = mkdtempSync(join(tmpdir(), "gw-metrics-"));
  writeFileSync(join(dir, "ok.yaml"), YAML.stringify({ routing: { rules } }));
  writeFileSync(join(dir, "bad.yaml"), "routing: 5\n");
  await gw.gateway.reloadFromFile(join(dir, "ok.yaml"));
  await gw.gateway.reloadFromFile(join(dir, "bad.yaml"));

  const m = parseExposition(await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/metrics`)).text());
  const P = "game_gateway_";
  const positive: [string, Record<string, string>][] = [
    ["connections_active", {}],
    ["connections_total", {}],
    ["backend_connections_active", { backend: H }],
    ["sessions_active", {}],
    ["routing_errors_total", { error_type: "no_route" }],
    ["connection_rejected_total", { reason: "per_ip_limit" }],
    ["rate_limit_rejected_total", {}],
    ["circuit_breaker_state", { backend: D }],
    ["backend_requests_total", { backend: H, status: "ok" }],
    ["backend_connection_setup_latency_seconds_count", { backend: H }],
    ["backend_connection_latency_seconds_count", { backend: H }],
    ["backend_errors_total", { backend: D, error_type: "connection_lost" }],
    ["backend_timeouts_total", { backend: M }],
    ["backend_retries_total", { backend: D }],
    ["backend_bytes_transmitted_total", { backend: H, direction: "out" }],
    ["backend_bytes_transmitted_total", { backend: H, direction: "in" }],
    ["connection_setup_latency_seconds_count", { service_type: "10" }],
    ["messages_processed_total", { direction: "in", service_type: "10" }],
    ["messages_processed_total", { direction: "out", service_type: "10" }],
    ["config_refresh_errors_total", { config_type: "file" }],
    ["config_refresh_success_total", { config_type: "file" }],
    ["backend_pool_active", { backend: H }],
    ["request_latency_seconds_count", { direction: "upstream" }],
    ["request_latency_seconds_count", { direction: "downstream" }],
  ];
  const missing = positive.filter(([name, labels]) => !find(m, P + name, labels).some((v) => v > 0));
  expect(missing).toEqual([]);
  // backend_pool_idle is exported per endpoint too (0 or more).
  expect(find(m, `${P}backend_pool_idle`, { backend: H })).toHaveLength(1);
  expect(find(m, `${P}circuit_breaker_state`, { backend: H })).toEqual([0]);
  // Queue depths beyond the reference: exported per endpoint (0 when drained) and in total.
  expect(find(m, `${P}backend_queued_bytes`, { backend: H })).toEqual([0]);
  expect(find(m, `${P}buffer_pool_in_use_bytes`)).toHaveLength(1);
  c.close();
  flood.close();
});
