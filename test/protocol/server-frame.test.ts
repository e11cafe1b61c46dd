import { describe, expect, test } from "bun:test";
import { BackendFrameLayout, ClientFrameLayout } from "../../src/protocol/layouts.ts";
import {
  BACKEND_FRAME_PREFIX,
  GATE_HEADER_SIZE,
  GATE_HEADER_TRACE_SIZE,
  OpCode,
  SERVER_HEADER_SIZE,
  decodeBackendFrame,
  encodeBackendFrame,
  encodeMulticastBody,
  readI64Hi,
  readI64Lo,
  readOpCode,
  readServerLength,
  readServerServerId,
  readServerType,
  readSessionIdHi,
  readSessionIdLo,
  writeBackendFrameHeader,
  writeTraceContext,
  writeTrans,
  writeTransWithTrace,
} from "../../src/protocol/server-frame.ts";
import { encodeClientFrame, makeServerId } from "../../src/protocol/client-frame.ts";
import { SpanId, SpanIdSource, TraceId } from "../../src/protocol/trace-context.ts";
import { sessionIdFromParts } from "../../src/session/session-id.ts";

const SID = 0x0123456789abcdefn;
const HI = 0x01234567;
const LO = 0x89abcdef;

describe("server + gate header", () => {
  test("the 20-byte server header and 9-byte gate header, byte by byte", () => {
    const b = new Uint8Array(BACKEND_FRAME_PREFIX + 3);
    writeBackendFrameHeader(new DataView(b.buffer), 0, GATE_HEADER_SIZE + 3, 0xfffe, 0x80c80a07, OpCode.Trans, HI, LO);
    const dv = new DataView(b.buffer);
    expect(dv.getInt32(0, true)).toBe(12); // Length excludes the 20-byte header
    expect(dv.getInt32(4, true)).toBe(0xfffe);
    expect(dv.getUint32(8, true)).toBe(0x80c80a07);
    expect(dv.getBigInt64(12, true)).toBe(SID); // ObjectID
    expect(dv.getUint8(20)).toBe(OpCode.Trans);
    expect(dv.getBigInt64(21, true)).toBe(SID); // SessionID
    expect(readServerLength(b, 0)).toBe(12);
    expect(readServerType(b, 0)).toBe(0xfffe);
    expect(readServerServerId(b, 0)).toBe(0x80c80a07);
    expect(readOpCode(b, 0)).toBe(1);
    expect(readSessionIdHi(b, 0)).toBe(HI);
    expect(readSessionIdLo(b, 0)).toBe(LO);
    expect(sessionIdFromParts(readSessionIdHi(b, 0), readSessionIdLo(b, 0))).toBe(SID as never);
  });

  test("the largest positive session ID", () => {
    const b = new Uint8Array(BACKEND_FRAME_PREFIX);
    writeBackendFrameHeader(new DataView(b.buffer), 0, 9, 0, 0, OpCode.Trans, 0x7fffffff, 0xffffffff);
    expect(new DataView(b.buffer).getBigInt64(21, true)).toBe(0x7fffffffffffffffn);
  });

  test("a negative i64 reads as a negative high half", () => {
    const f = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: -5n });
    expect(readSessionIdHi(f, 0)).toBeLessThan(0);
  });

  test("33-byte gate header carries the W3C trace and span IDs", () => {
    const trace = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const span = Uint8Array.from({ length: 8 }, (_, i) => 0xf0 + i);
    const f = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: SID, body: new Uint8Array([9]), traceId: trace, spanId: span });
    expect(f.length).toBe(SERVER_HEADER_SIZE + GATE_HEADER_TRACE_SIZE + 1);
    expect(readServerLength(f, 0)).toBe(34);
    expect([...f.subarray(29, 45)]).toEqual([...trace]);
    expect([...f.subarray(45, 53)]).toEqual([...span]);
    const d = decodeBackendFrame(f, 0, true);
    expect([...d.traceId!]).toEqual([...trace]);
    expect([...d.spanId!]).toEqual([...span]);
    expect([...d.body]).toEqual([9]);
    const b = new Uint8Array(60);
    writeTraceContext(b, 0, trace, span);
    expect([...b.subarray(29, 53)]).toEqual([...trace, ...span]);
  });

  test("encode/decode round trip for every opcode", () => {
    for (const opcode of Object.values(OpCode)) {
      const body = new TextEncoder().encode(`op${opcode}`);
      const d = decodeBackendFrame(encodeBackendFrame({ opcode, sessionId: SID, type: 42, serverId: 7, body }), 0);
      expect(d).toMatchObject({ opcode, type: 42, serverId: 7, sessionId: SID, objectId: SID });
      expect(new TextDecoder().decode(d.body)).toBe(`op${opcode}`);
    }
  });

  test("multicast body layout", () => {
    const body = encodeMulticastBody([SID, 5n], new Uint8Array([1, 2]));
    expect(body.length).toBe(2 + 16 + 2);
    expect(body[0]).toBe(2);
    expect(readI64Hi(body, 2)).toBe(HI);
    expect(readI64Lo(body, 2)).toBe(LO);
    expect(readI64Lo(body, 10)).toBe(5);
    expect([...body.subarray(18)]).toEqual([1, 2]);
  });
});

describe("client frame -> Trans", () => {
  const serverId = makeServerId({ isZip: true, worldId: 3, serverType: 10, instId: 7 });
  const body = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const client = encodeClientFrame(0xbeef, serverId, body);
  // The client frame sits at an offset in a larger chunk, as it does in a socket read.
  const chunk = new Uint8Array(5 + client.length + 3).fill(0xee);
  chunk.set(client, 5);

  test("the 9-byte gate header form carries MessageID, ServerID, session and body", () => {
    const out = new Uint8Array(1000).fill(0xcc);
    const n = writeTrans(out, new DataView(out.buffer), 11, chunk, 5, client.length, HI, LO);
    expect(n).toBe(BACKEND_FRAME_PREFIX + body.length);
    expect(readServerLength(out, 11)).toBe(GATE_HEADER_SIZE + body.length);
    const f = decodeBackendFrame(out, 11);
    expect(f).toMatchObject({ opcode: OpCode.Trans, type: 0xbeef, serverId, objectId: SID, sessionId: SID });
    expect([...f.body]).toEqual([...body]);
    expect(out[10]).toBe(0xcc); // nothing written outside the frame
    expect(out[11 + n]).toBe(0xcc);
  });

  test("the 33-byte form carries the session's trace ID in wire order, or all zeros without one", () => {
    const out = new Uint8Array(1000);
    const dv = new DataView(out.buffer);
    const traceBytes = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    const trace = TraceId.fromBytes(traceBytes);
    const spans = new SpanIdSource();
    const n = writeTransWithTrace(out, dv, 0, chunk, 5, client.length, HI, LO, trace, spans);
    expect(n).toBe(SERVER_HEADER_SIZE + GATE_HEADER_TRACE_SIZE + body.length);
    expect(readServerLength(out, 0)).toBe(GATE_HEADER_TRACE_SIZE + body.length);
    const f = decodeBackendFrame(out, 0, true);
    expect([...f.traceId!]).toEqual([...traceBytes]);
    expect(trace.toHex()).toBe(Buffer.from(traceBytes).toString("hex"));
    expect(f.spanId!.some((b) => b !== 0)).toBe(true);
    expect([...f.body]).toEqual([...body]);

    writeTransWithTrace(out, dv, 0, chunk, 5, client.length, HI, LO, TraceId.INVALID, spans);
    const g = decodeBackendFrame(out, 0, true);
    expect([...g.traceId!]).toEqual(new Array(16).fill(0));
    expect([...g.spanId!]).not.toEqual([...f.spanId!]); // a fresh span per message
  });

  test("the 33-byte form carries the session's span ID, the same bytes its hex names (what an exported span is found by)", () => {
    const out = new Uint8Array(1000);
    const dv = new DataView(out.buffer);
    const spanId = SpanId.random();
    writeTransWithTrace(out, dv, 0, chunk, 5, client.length, HI, LO, TraceId.random(), spanId);
    const f = decodeBackendFrame(out, 0, true);
    expect(Buffer.from(f.spanId!).toString("hex")).toBe(spanId.toHex());
    expect(spanId.toHex()).toMatch(/^[0-9a-f]{16}$/);
    expect(spanId.toHex()).not.toBe("0".repeat(16));
    writeTransWithTrace(out, dv, 0, chunk, 5, client.length, HI, LO, TraceId.random(), spanId);
    expect(Buffer.from(decodeBackendFrame(out, 0, true).spanId!).toString("hex")).toBe(spanId.toHex()); // the same on every frame
  });

  test("random trace IDs are never all zero and do not repeat", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(TraceId.random().toHex());
    expect(seen.size).toBe(1000);
    expect(seen.has("0".repeat(32))).toBe(false);
  });
});

describe("frame layouts", () => {
  test("client: length from the u16, refused past max_message_size", () => {
    const layout = new ClientFrameLayout(100);
    const h = new Uint8Array([100, 0, 0, 0, 0, 0, 0, 0]);
    expect(layout.frameLength(h, 0)).toBe(108);
    h[0] = 101;
    expect(layout.frameLength(h, 0)).toBe(-1);
    expect(layout.violation(h, 0)).toBe("client_body_too_large");
    expect(new ClientFrameLayout(0xffff).frameLength(new Uint8Array([0xff, 0xff, 0, 0, 0, 0, 0, 0]), 0)).toBe(8 + 0xffff);
  });

  test("backend: negative, below the gate header and over the limit are framing violations", () => {
    const layout = new BackendFrameLayout(1000);
    const h = new Uint8Array(20);
    const dv = new DataView(h.buffer);
    const cases: [number, number | string][] = [
      [9, 29],
      [1000, 1020],
      [-1, "length_negative"],
      [-2147483648, "length_negative"],
      [0, "length_below_gate_header"],
      [8, "length_below_gate_header"],
      [1001, "length_over_limit"],
      [2147483647, "length_over_limit"],
    ];
    for (const [len, want] of cases) {
      dv.setInt32(0, len, true);
      if (typeof want === "number") expect(layout.frameLength(h, 0)).toBe(want);
      else {
        expect(layout.frameLength(h, 0)).toBe(-1);
        expect(layout.violation(h, 0)).toBe(want as never);
      }
    }
  });
});
