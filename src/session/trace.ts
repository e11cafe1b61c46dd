import { SPAN_ID_SIZE, TRACE_ID_SIZE } from "../protocol/server-frame.ts";

// W3C trace context for trace propagation: one trace ID per session (from the crypto RNG, at
// session start) and a fresh span ID per message (from a xorshift generator writing straight
// into the outgoing frame: no allocation, no syscall per message).

export function newTraceId(): Uint8Array {
  const id = new Uint8Array(TRACE_ID_SIZE);
  do crypto.getRandomValues(id);
  while (id.every((b) => b === 0)); // all-zero is the W3C "invalid" trace ID
  return id;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** xorshift32 state pairs: two independent 32-bit streams make one 64-bit span ID. */
export class SpanIdSource {
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

export const SPAN_BYTES = SPAN_ID_SIZE;
