// W3C trace context carried by the extended gate header: one trace ID and one span ID per
// session (from the crypto RNG, at session start). The span ID is the session's
// gateway.forward_connection span, so what a backend reads in the header names a span the
// gateway exports (spans are per connection, never per message). SpanIdSource, a fresh span ID
// per frame from a xorshift generator, is kept only for frames of sessions that have no span ID.

/** Bytes of a W3C trace ID, as the extended gate header carries it. */
export const TRACE_ID_SIZE = 16;

const scratchWords = new Uint32Array(TRACE_ID_SIZE / 4);
const scratchBytes = new Uint8Array(scratchWords.buffer);

/**
 * A 16-byte trace ID held as four 32-bit words: written into a frame with four DataView stores
 * instead of a native 16-byte copy per message, and smaller than a Uint8Array per session.
 * Word k is bytes 4k..4k+3 of the ID, little-endian, as it appears on the wire.
 */
export class TraceId {
  /** All zeros: the W3C "invalid" ID, sent for sessions that began before tracing was on. */
  static readonly INVALID = new TraceId(0, 0, 0, 0);

  private constructor(
    readonly w0: number,
    readonly w1: number,
    readonly w2: number,
    readonly w3: number,
  ) {}

  static random(): TraceId {
    const w = scratchWords;
    do crypto.getRandomValues(w);
    while ((w[0]! | w[1]! | w[2]! | w[3]!) === 0); // all-zero is the W3C "invalid" trace ID
    return new TraceId(w[0]!, w[1]!, w[2]!, w[3]!);
  }

  /** 32 hex digits (a W3C traceparent's trace-id); undefined when not, or when all zeros (W3C: invalid). */
  static fromHex(hex: string): TraceId | undefined {
    if (!/^[0-9a-f]{32}$/.test(hex) || /^0+$/.test(hex)) return undefined;
    return TraceId.fromBytes(Buffer.from(hex, "hex"));
  }

  /** The ID in its wire byte order (16 bytes from the start of b). */
  static fromBytes(b: Uint8Array): TraceId {
    const dv = new DataView(b.buffer, b.byteOffset, TRACE_ID_SIZE);
    return new TraceId(dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true));
  }

  write(dv: DataView, off: number): void {
    dv.setUint32(off, this.w0, true);
    dv.setUint32(off + 4, this.w1, true);
    dv.setUint32(off + 8, this.w2, true);
    dv.setUint32(off + 12, this.w3, true);
  }

  /** 32 lowercase hex digits, bytes in wire order (the form logs and W3C traceparent use). */
  toHex(): string {
    const w = scratchWords;
    w[0] = this.w0;
    w[1] = this.w1;
    w[2] = this.w2;
    w[3] = this.w3;
    return Buffer.from(scratchBytes.buffer).toString("hex");
  }
}

/** Bytes of a W3C span ID. */
const SPAN_ID_BYTES = 8;

/** Writes an 8-byte span ID into an outgoing frame: a session's SpanId, or a SpanIdSource. */
export interface SpanIdWriter {
  write(dv: DataView, off: number): void;
}

/** A session's 8-byte span ID as two 32-bit words (bytes 0..3 and 4..7, little-endian, as on the wire). */
export class SpanId implements SpanIdWriter {
  private constructor(
    readonly w0: number,
    readonly w1: number,
  ) {}

  static random(): SpanId {
    const w = scratchWords;
    do crypto.getRandomValues(w);
    while ((w[0]! | w[1]!) === 0); // all-zero is the W3C "invalid" span ID
    return new SpanId(w[0]!, w[1]!);
  }

  /** 16 hex digits (a W3C traceparent's parent-id); undefined when not, or when all zeros (W3C: invalid). */
  static fromHex(hex: string): SpanId | undefined {
    if (!/^[0-9a-f]{16}$/.test(hex) || /^0+$/.test(hex)) return undefined;
    const dv = new DataView(Buffer.from(hex, "hex").buffer);
    return new SpanId(dv.getUint32(0, true), dv.getUint32(4, true));
  }

  write(dv: DataView, off: number): void {
    dv.setUint32(off, this.w0, true);
    dv.setUint32(off + 4, this.w1, true);
  }

  /** 16 lowercase hex digits, bytes in wire order (W3C traceparent, OTLP). */
  toHex(): string {
    const w = scratchWords;
    w[0] = this.w0;
    w[1] = this.w1;
    return Buffer.from(scratchBytes.buffer, 0, SPAN_ID_BYTES).toString("hex");
  }
}

/** xorshift32 state pairs: two independent 32-bit streams make one 64-bit span ID. */
export class SpanIdSource implements SpanIdWriter {
  private a: number;
  private b: number;

  constructor() {
    const seed = new Uint32Array(2);
    crypto.getRandomValues(seed);
    this.a = seed[0]! | 1;
    this.b = seed[1]! | 1;
  }

  /** Writes an 8-byte span ID at off (never all-zero: xorshift states are never 0). */
  write(dv: DataView, off: number): void {
    let a = this.a;
    a ^= a << 13;
    a ^= a >>> 17;
    a ^= a << 5;
    let b = this.b;
    b ^= b << 13;
    b ^= b >>> 17;
    b ^= b << 5;
    this.a = a;
    this.b = b;
    dv.setUint32(off, a >>> 0, true);
    dv.setUint32(off + 4, b >>> 0, true);
  }
}


/**
 * A W3C trace context a client brought (the traceparent header of a WebSocket upgrade): the trace
 * its session joins, and the caller's span, the parent of the session's root span.
 */
export interface TraceParent {
  readonly traceId: TraceId;
  readonly parentSpanId: SpanId;
  /** The caller's sampled flag (trace-flags bit 0). */
  readonly sampled: boolean;
}

/**
 * A traceparent header value (https://www.w3.org/TR/trace-context/#traceparent-header), or null
 * when it is not a valid one: version "00" exactly as the spec lays it out; a later version is
 * read by its first four fields, as the spec asks of a version-00 parser. Invalid means ignored.
 */
export function parseTraceparent(value: string | null | undefined): TraceParent | null {
  if (value == null) return null;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(value.trim());
  if (m === null) return null;
  const [, version, trace, parent, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  const traceId = TraceId.fromHex(trace!);
  const parentSpanId = SpanId.fromHex(parent!);
  if (traceId === undefined || parentSpanId === undefined) return null;
  return { traceId, parentSpanId, sampled: (parseInt(flags!, 16) & 1) === 1 };
}
