// CounterCarry on its own: what it adds for a silent or restarted worker, read back through the
// real merge and a Prometheus text parse, and its bound.
import { describe, expect, test } from "bun:test";
import { CounterCarry } from "../../src/admin/counter-carry.ts";
import { mergeExpositions, type WorkerExposition } from "../../src/admin/merge-exposition.ts";
import { parseExposition, sumOf } from "../support/prom-text.ts";

const text = (conns: number, buckets: [number, number], gauge: number) =>
  [
    "# HELP game_gateway_connections_total Connections.",
    "# TYPE game_gateway_connections_total counter",
    `game_gateway_connections_total ${conns}`,
    "# TYPE game_gateway_request_latency_seconds histogram",
    `game_gateway_request_latency_seconds_bucket{le="0.1"} ${buckets[0]}`,
    `game_gateway_request_latency_seconds_bucket{le="+Inf"} ${buckets[1]}`,
    `game_gateway_request_latency_seconds_sum 0.5`,
    `game_gateway_request_latency_seconds_count ${buckets[1]}`,
    "# TYPE game_gateway_connections_active gauge",
    `game_gateway_connections_active ${gauge}`,
    "# TYPE process_cpu_seconds_total counter",
    "process_cpu_seconds_total 2",
  ].join("\n");

function merged(carry: CounterCarry, scrape: { worker: number; life: string; text: string | null }[]) {
  const parts: WorkerExposition[] = scrape.filter((s) => s.text !== null).map((s) => ({ worker: s.worker, text: s.text! }));
  return parseExposition(mergeExpositions([...parts, ...carry.carry(scrape)]));
}

describe("CounterCarry", () => {
  test("silent: last values carried, gauges and per-process families not; restarted: previous life added to the new", () => {
    const carry = new CounterCarry();
    let e = merged(carry, [
      { worker: 0, life: "a", text: text(5, [3, 4], 2) },
      { worker: 1, life: "b", text: text(7, [1, 6], 3) },
    ]);
    expect([sumOf(e, "game_gateway_connections_total"), sumOf(e, "game_gateway_request_latency_seconds_count"), sumOf(e, "game_gateway_connections_active")]).toEqual([12, 10, 5]);

    e = merged(carry, [
      { worker: 0, life: "a", text: text(6, [3, 5], 2) },
      { worker: 1, life: "b", text: null },
    ]);
    expect(sumOf(e, "game_gateway_connections_total")).toBe(13);
    expect(sumOf(e, "game_gateway_request_latency_seconds_bucket", { le: "0.1" })).toBe(4);
    expect(sumOf(e, "game_gateway_request_latency_seconds_count")).toBe(11);
    expect(sumOf(e, "game_gateway_connections_active")).toBe(2);
    expect(sumOf(e, "process_cpu_seconds_total")).toBe(2);

    // Worker 1 restarted (a new life) with 1 connection: 7 retired + 1.
    e = merged(carry, [
      { worker: 0, life: "a", text: text(6, [3, 5], 2) },
      { worker: 1, life: "c", text: text(1, [0, 1], 1) },
    ]);
    expect(sumOf(e, "game_gateway_connections_total")).toBe(14);
    expect(sumOf(e, "game_gateway_request_latency_seconds_count")).toBe(12);
    expect(sumOf(e, "game_gateway_request_latency_seconds_sum")).toBe(1.5);
    expect(sumOf(e, "game_gateway_connections_active")).toBe(3);
  });

  test("past maxSeriesPerWorker a new series is not remembered, and counted", () => {
    const carry = new CounterCarry(1);
    carry.carry([{ worker: 0, life: "a", text: "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total 2" }]);
    expect(carry.dropped).toBe(1);
    const e = merged(carry, [{ worker: 0, life: "a", text: null }]);
    expect(sumOf(e, "a_total")).toBe(1);
    expect(sumOf(e, "b_total")).toBe(0);
  });
});
