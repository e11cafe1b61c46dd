import { copyBytes } from "../bytes/copy-bytes.ts";
import { CLIENT_HEADER_SIZE, CLIENT_MESSAGE_ID_OFFSET, CLIENT_SERVER_ID_OFFSET } from "./client-frame.ts";
import { type SpanIdWriter, TRACE_ID_SIZE, type TraceId } from "./trace-context.ts";

// Gateway <-> backend framing (docs/protocol.md, "Gateway <-> backend"):
//   20-byte server header [i32 Length][i32 Type][u32 ServerID][i64 ObjectID]
//   gate header           [u8 OpCode][i64 SessionID] (+ [16 TraceID][8 SpanID] in the extended form)
//   body
// Length counts the gate header and body, not the 20-byte server header.
// Session IDs travel as i64 but are always positive; the hot path carries them as two u32
// halves (hi, lo) so no BigInt is allocated per frame.

export const SERVER_HEADER_SIZE = 20;
export const GATE_HEADER_SIZE = 9;
export const GATE_HEADER_TRACE_SIZE = 33;
/** Server header + short gate header: where the body starts in every backend->gateway frame. */
export const BACKEND_FRAME_PREFIX = SERVER_HEADER_SIZE + GATE_HEADER_SIZE;
export const SPAN_ID_SIZE = 8;
export const PING_BODY_SIZE = 8;

export const OpCode = {
  Trans: 1,
  Connect: 2,
  Disconnect: 3,
  Kick: 4,
  Multicast: 5,
  Broadcast: 6,
  Ping: 7,
  Pong: 8,
} as const;
export type OpCode = (typeof OpCode)[keyof typeof OpCode];

export function isOpCode(n: number): n is OpCode {
  return n >= OpCode.Trans && n <= OpCode.Pong;
}

// Field offsets from the start of a frame.
const OFF_TYPE = 4;
const OFF_SERVER_ID = 8;
const OFF_OBJECT_ID = 12;
const OFF_OPCODE = 20;
const OFF_SESSION_ID = 21;
const OFF_TRACE_ID = 29;
const OFF_SPAN_ID = 45;

function readI32(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
}

/** The Length field (signed: a negative value is a protocol violation the caller must catch). */
export function readServerLength(b: Uint8Array, off: number): number {
  return readI32(b, off);
}

/** Type as a signed i32: the gateway forwards it as a u16 MessageID, so callers range-check it. */
export function readServerType(b: Uint8Array, off: number): number {
  return readI32(b, off + OFF_TYPE);
}

export function readServerServerId(b: Uint8Array, off: number): number {
  return readI32(b, off + OFF_SERVER_ID) >>> 0;
}

export function readOpCode(b: Uint8Array, off: number): number {
  return b[off + OFF_OPCODE]!;
}

/** High 32 bits of the gate header's SessionID, as a signed i32 (negative means an invalid ID). */
export function readSessionIdHi(b: Uint8Array, off: number): number {
  return readI32(b, off + OFF_SESSION_ID + 4);
}

export function readSessionIdLo(b: Uint8Array, off: number): number {
  return readI32(b, off + OFF_SESSION_ID) >>> 0;
}

/** Reads a session ID of a Multicast target list (8 bytes LE at off) as hi/lo; same conventions. */
export function readI64Hi(b: Uint8Array, off: number): number {
  return readI32(b, off + 4);
}

export function readI64Lo(b: Uint8Array, off: number): number {
  return readI32(b, off) >>> 0;
}

/**
 * Writes the server header and the 9-byte gate header at off: ObjectID and SessionID both carry the
 * session. gateLength is the Length field (gate header size + body size). Takes a DataView over
 * the output buffer: eight DataView stores cost a quarter of 29 single-byte stores.
 */
export function writeBackendFrameHeader(
  dv: DataView,
  off: number,
  gateLength: number,
  type: number,
  serverId: number,
  opcode: OpCode,
  sessionHi: number,
  sessionLo: number,
): void {
  dv.setInt32(off, gateLength, true);
  dv.setInt32(off + OFF_TYPE, type, true);
  dv.setUint32(off + OFF_SERVER_ID, serverId, true);
  dv.setUint32(off + OFF_OBJECT_ID, sessionLo, true);
  dv.setUint32(off + OFF_OBJECT_ID + 4, sessionHi, true);
  dv.setUint8(off + OFF_OPCODE, opcode);
  dv.setUint32(off + OFF_SESSION_ID, sessionLo, true);
  dv.setUint32(off + OFF_SESSION_ID + 4, sessionHi, true);
}

/** Zeroes the server header's ServerID of the frame at off (the reference's TCP contract sends 0 both ways). */
export function clearServerId(b: Uint8Array, off: number): void {
  const at = off + OFF_SERVER_ID;
  b[at] = 0;
  b[at + 1] = 0;
  b[at + 2] = 0;
  b[at + 3] = 0;
}

/**
 * Encodes the client frame at b[off, off+len) (8-byte client header, then the body) as a Trans
 * with the 9-byte gate header at out[at]: MessageID becomes Type, ServerID is kept, the session
 * rides in ObjectID and SessionID. dv views out. Returns the frame's size.
 */
export function writeTrans(out: Uint8Array, dv: DataView, at: number, b: Uint8Array, off: number, len: number, hi: number, lo: number): number {
  const client = copyClientFrame(out, at + BACKEND_FRAME_PREFIX, b, off, len);
  writeBackendFrameHeader(dv, at, GATE_HEADER_SIZE + len - CLIENT_HEADER_SIZE, dv.getUint16(client + CLIENT_MESSAGE_ID_OFFSET, true), dv.getUint32(client + CLIENT_SERVER_ID_OFFSET, true), OpCode.Trans, hi, lo);
  return BACKEND_FRAME_PREFIX + len - CLIENT_HEADER_SIZE;
}

/**
 * writeTrans with the 33-byte gate header: the session's trace ID (TraceId.INVALID for a session
 * that began before tracing was switched on) and the span ID `spans` writes (the session's own
 * SpanId; a SpanIdSource, a fresh one per frame, for a session without one).
 */
export function writeTransWithTrace(
  out: Uint8Array,
  dv: DataView,
  at: number,
  b: Uint8Array,
  off: number,
  len: number,
  hi: number,
  lo: number,
  trace: TraceId,
  spans: SpanIdWriter,
): number {
  const prefix = SERVER_HEADER_SIZE + GATE_HEADER_TRACE_SIZE;
  const client = copyClientFrame(out, at + prefix, b, off, len);
  writeBackendFrameHeader(dv, at, GATE_HEADER_TRACE_SIZE + len - CLIENT_HEADER_SIZE, dv.getUint16(client + CLIENT_MESSAGE_ID_OFFSET, true), dv.getUint32(client + CLIENT_SERVER_ID_OFFSET, true), OpCode.Trans, hi, lo);
  trace.write(dv, at + OFF_TRACE_ID);
  spans.write(dv, at + OFF_SPAN_ID);
  return prefix + len - CLIENT_HEADER_SIZE;
}

/**
 * Copies the whole client frame so that its body starts at bodyAt, and returns where its 8-byte
 * header landed: inside the gate header, which the caller reads MessageID and ServerID from (one
 * native copy and two DataView reads, cheaper than a copy of the body alone plus six byte reads
 * of the source) and then overwrites.
 */
function copyClientFrame(out: Uint8Array, bodyAt: number, b: Uint8Array, off: number, len: number): number {
  const headerAt = bodyAt - CLIENT_HEADER_SIZE;
  copyBytes(b, off, out, headerAt, len);
  return headerAt;
}

/** Fills the extended gate header's trace context (16-byte trace ID, 8-byte span ID). */
export function writeTraceContext(b: Uint8Array, off: number, traceId: Uint8Array, spanId: Uint8Array): void {
  b.set(traceId.subarray(0, TRACE_ID_SIZE), off + OFF_TRACE_ID);
  b.set(spanId.subarray(0, SPAN_ID_SIZE), off + OFF_SPAN_ID);
}

// ---------------------------------------------------------------------------------------------
// Whole-frame encode/decode with objects: for the demo backend, tools and tests. The gateway's
// data path uses the field readers/writers above instead.

export interface BackendFrame {
  readonly opcode: number;
  readonly type: number;
  readonly serverId: number;
  readonly objectId: bigint;
  readonly sessionId: bigint;
  readonly traceId?: Uint8Array;
  readonly spanId?: Uint8Array;
  readonly body: Uint8Array;
}

export function encodeBackendFrame(f: {
  opcode: number;
  sessionId: bigint;
  body?: Uint8Array;
  type?: number;
  serverId?: number;
  objectId?: bigint;
  traceId?: Uint8Array;
  spanId?: Uint8Array;
}): Uint8Array {
  const body = f.body ?? new Uint8Array(0);
  const gate = f.traceId ? GATE_HEADER_TRACE_SIZE : GATE_HEADER_SIZE;
  const out = new Uint8Array(SERVER_HEADER_SIZE + gate + body.length);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, gate + body.length, true);
  dv.setInt32(OFF_TYPE, f.type ?? 0, true);
  dv.setUint32(OFF_SERVER_ID, f.serverId ?? 0, true);
  dv.setBigInt64(OFF_OBJECT_ID, f.objectId ?? f.sessionId, true);
  dv.setUint8(OFF_OPCODE, f.opcode);
  dv.setBigInt64(OFF_SESSION_ID, f.sessionId, true);
  if (f.traceId) writeTraceContext(out, 0, f.traceId, f.spanId ?? new Uint8Array(SPAN_ID_SIZE));
  out.set(body, SERVER_HEADER_SIZE + gate);
  return out;
}

/** Decodes one complete frame at off (Length already validated by the caller). */
export function decodeBackendFrame(b: Uint8Array, off: number, withTrace = false): BackendFrame {
  const dv = new DataView(b.buffer, b.byteOffset + off);
  const length = dv.getInt32(0, true);
  const gate = withTrace ? GATE_HEADER_TRACE_SIZE : GATE_HEADER_SIZE;
  const bodyStart = off + SERVER_HEADER_SIZE + gate;
  const frame: BackendFrame = {
    opcode: dv.getUint8(OFF_OPCODE),
    type: dv.getInt32(OFF_TYPE, true),
    serverId: dv.getUint32(OFF_SERVER_ID, true),
    objectId: dv.getBigInt64(OFF_OBJECT_ID, true),
    sessionId: dv.getBigInt64(OFF_SESSION_ID, true),
    body: b.slice(bodyStart, off + SERVER_HEADER_SIZE + length),
  };
  if (!withTrace) return frame;
  return {
    ...frame,
    traceId: b.slice(off + OFF_TRACE_ID, off + OFF_TRACE_ID + TRACE_ID_SIZE),
    spanId: b.slice(off + OFF_SPAN_ID, off + OFF_SPAN_ID + SPAN_ID_SIZE),
  };
}

/** Builds a Multicast body: [u16 count][count x i64 session IDs][client body]. */
export function encodeMulticastBody(sessionIds: readonly bigint[], clientBody: Uint8Array): Uint8Array {
  if (sessionIds.length > 0xffff) throw new RangeError(`multicast to ${sessionIds.length} sessions exceeds 65535`);
  const out = new Uint8Array(2 + sessionIds.length * 8 + clientBody.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, sessionIds.length, true);
  sessionIds.forEach((id, i) => dv.setBigInt64(2 + i * 8, id, true));
  out.set(clientBody, 2 + sessionIds.length * 8);
  return out;
}
