// The traceparent header a WebSocket upgrade may carry, read as the OpenTelemetry SDK's W3C
// propagator reads it (an implementation that is not ours): the same headers valid, the same IDs,
// the same sampled flag, the same headers refused.
import { describe, expect, test } from "bun:test";
import { ROOT_CONTEXT, defaultTextMapGetter, isSpanContextValid, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { parseTraceparent } from "../../src/protocol/trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

/** What OpenTelemetry's propagator makes of the header: null when it takes no valid context from it. */
function otel(value: string): { traceId: string; spanId: string; sampled: boolean } | null {
  const ctx = new W3CTraceContextPropagator().extract(ROOT_CONTEXT, { traceparent: value }, defaultTextMapGetter);
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return null;
  return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 };
}

function ours(value: string): { traceId: string; spanId: string; sampled: boolean } | null {
  const p = parseTraceparent(value);
  return p === null ? null : { traceId: p.traceId.toHex(), spanId: p.parentSpanId.toHex(), sampled: p.sampled };
}

describe("parseTraceparent", () => {
  const headers = [
    `00-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-00`,
    `00-${TRACE}-${SPAN}-03`, // unknown flag bits: sampled read from bit 0
    `01-${TRACE}-${SPAN}-01-extra`, // a later version may carry more fields
    `00-${TRACE}-${SPAN}-01-extra`, // version 00 may not
    `ff-${TRACE}-${SPAN}-01`, // version ff is invalid
    `00-${"0".repeat(32)}-${SPAN}-01`, // all-zero trace ID
    `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero span ID
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper case hex
    `00-${TRACE.slice(1)}-${SPAN}-01`, // short trace ID
    `00-${TRACE}-${SPAN}`, // no flags
    `00_${TRACE}_${SPAN}_01`,
    "",
    "garbage",
  ];
  for (const h of headers) {
    test(JSON.stringify(h), () => {
      expect(ours(h)).toEqual(otel(h));
    });
  }

  test("the valid one's IDs, in the byte order the gate header and OTLP use", () => {
    expect(ours(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
    expect(parseTraceparent(null)).toBeNull();
    expect(parseTraceparent(undefined)).toBeNull();
  });
});
