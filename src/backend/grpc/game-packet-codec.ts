// GamePacket's protobuf encoding (src/backend/grpc/game_gateway.proto), written by hand for the
// per-message path: a game message is encoded straight from the client's frame into the one
// Buffer the stream sends (no message object, no Long, no copy of the body first), and a backend
// packet is read into a small record with the session ID as two 32-bit halves, its payload a view
// of the received bytes. protobufjs (through proto-loader) is the reference the tests hold it to:
// the test servers decode and encode with it.
//
// proto3 wire format: each field is a varint key (number << 3 | wire type) and a value; int64 and
// int32 are varints (negative ones ten bytes long), bytes and strings and map entries and packed
// repeated fields are length-delimited. Fields at their default (0, empty) are not written.

const TAG_SESSION_ID = (1 << 3) | 0;
const TAG_MSG_ID = (2 << 3) | 0;
const TAG_PAYLOAD = (3 << 3) | 2;
const TAG_METADATA = (4 << 3) | 2;
const TAG_ENTRY_KEY = (1 << 3) | 2;
const TAG_ENTRY_VALUE = (2 << 3) | 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function varintSize(n: number): number {
  n >>>= 0;
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeVarint(b: Uint8Array, at: number, n: number): number {
  n >>>= 0;
  while (n > 0x7f) {
    b[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[at++] = n;
  return at;
}

/** A 64-bit varint from two 32-bit halves (hi signed or not: the bits are what count). */
function writeVarint64(b: Uint8Array, at: number, lo: number, hi: number): number {
  lo >>>= 0;
  hi >>>= 0;
  while (hi !== 0) {
    b[at++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  return writeVarint(b, at, lo);
}

function varint64Size(lo: number, hi: number): number {
  hi >>>= 0;
  if (hi === 0) return varintSize(lo);
  let n = 5; // the low 35 bits
  hi >>>= 3;
  while (hi !== 0) {
    n++;
    hi >>>= 7;
  }
  return n;
}

/** Encodes the metadata map's entries (field 4), in the object's key order. */
export function encodeMetadata(metadata: Readonly<Record<string, string>>): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(metadata)) {
    const key = encoder.encode(k);
    const value = encoder.encode(v);
    const entry = 1 + varintSize(key.length) + key.length + 1 + varintSize(value.length) + value.length;
    const out = new Uint8Array(1 + varintSize(entry) + entry);
    let at = writeVarint(out, 0, TAG_METADATA);
    at = writeVarint(out, at, entry);
    at = writeVarint(out, at, TAG_ENTRY_KEY);
    at = writeVarint(out, at, key.length);
    out.set(key, at);
    at += key.length;
    at = writeVarint(out, at, TAG_ENTRY_VALUE);
    at = writeVarint(out, at, value.length);
    out.set(value, at);
    parts.push(out);
    size += out.length;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Field 1 (session_id), encoded once per session: every packet of the session starts with it. */
export function encodeSessionIdField(lo: number, hi: number): Uint8Array {
  if ((lo | hi) === 0) return new Uint8Array(0);
  const out = new Uint8Array(1 + varint64Size(lo, hi));
  writeVarint64(out, writeVarint(out, 0, TAG_SESSION_ID), lo, hi);
  return out;
}

/**
 * One GamePacket: the session's encoded ID field, msg_id, payload = body[off, off+len), and the
 * already encoded metadata entries. One allocation: the Buffer the stream sends.
 */
export function encodePacket(sessionField: Uint8Array, msgId: number, body: Uint8Array, off: number, len: number, metadata: Uint8Array): Buffer {
  const msgIdSize = msgId === 0 ? 0 : 1 + (msgId < 0 ? 10 : varintSize(msgId));
  const payloadSize = len === 0 ? 0 : 1 + varintSize(len) + len;
  const out = Buffer.allocUnsafe(sessionField.length + msgIdSize + payloadSize + metadata.length);
  out.set(sessionField, 0);
  let at = sessionField.length;
  if (msgId !== 0) {
    out[at++] = TAG_MSG_ID;
    at = msgId < 0 ? writeVarint64(out, at, msgId, -1) : writeVarint(out, at, msgId);
  }
  if (len !== 0) {
    out[at++] = TAG_PAYLOAD;
    at = writeVarint(out, at, len);
    out.set(body.subarray(off, off + len), at);
    at += len;
  }
  out.set(metadata, at);
  return out;
}

/** A backend's packet as the gateway reads it; the metadata keys it acts on, the rest skipped. */
export interface ReceivedPacket {
  readonly sessionHi: number;
  /** Unsigned. */
  readonly sessionLo: number;
  readonly msgId: number;
  /** A view of the received message's bytes. */
  readonly payload: Uint8Array;
  /** metadata["packet_type"], "" when absent. */
  readonly packetType: string;
  /** metadata["reason"], "" when absent. */
  readonly reason: string;
  /** target_session_ids as (hi, lo) pairs; empty when none; TOO_MANY_TARGETS past MAX_MULTICAST_TARGETS. */
  readonly targets: readonly number[];
}

const NO_TARGETS: readonly number[] = [];

/**
 * The most target_session_ids one packet may list: what a TCP Multicast's u16 count can say.
 * Past it the packet is not delivered (multicast_malformed), so one packet's work stays bounded.
 */
export const MAX_MULTICAST_TARGETS = 0xffff;

/** The targets of a packet listing more than MAX_MULTICAST_TARGETS (identity-compared). */
export const TOO_MANY_TARGETS: readonly number[] = Object.freeze([]);
const MAX_TARGET_WORDS = 2 * MAX_MULTICAST_TARGETS;
const EMPTY: Uint8Array = new Uint8Array(0);

export class MalformedPacket extends Error {}

/** Reads varints off one buffer; lo/hi hold the last 64-bit one read. */
class Reader {
  pos = 0;
  lo = 0;
  hi = 0;
  constructor(readonly b: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.b.length) throw new MalformedPacket("truncated");
    return this.b[this.pos++]!;
  }

  /** A varint's low 32 bits (what an int32 or a length is). */
  varint32(): number {
    this.varint64();
    return this.lo;
  }

  varint64(): void {
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let i = 0; i < 4; i++) {
      b = this.byte();
      lo = (lo | ((b & 0x7f) << (i * 7))) >>> 0;
      if (b < 0x80) return this.set(lo, hi);
    }
    b = this.byte();
    lo = (lo | ((b & 0x7f) << 28)) >>> 0;
    hi = (b & 0x7f) >>> 4;
    if (b < 0x80) return this.set(lo, hi);
    for (let i = 0; i < 5; i++) {
      b = this.byte();
      hi = (hi | ((b & 0x7f) << (i * 7 + 3))) >>> 0;
      if (b < 0x80) return this.set(lo, hi);
    }
    throw new MalformedPacket("varint longer than 10 bytes");
  }

  private set(lo: number, hi: number): void {
    this.lo = lo;
    this.hi = hi;
  }

  bytes(): Uint8Array {
    const len = this.varint32();
    const end = this.pos + len;
    if (end > this.b.length) throw new MalformedPacket("truncated");
    const v = this.b.subarray(this.pos, end);
    this.pos = end;
    return v;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint64();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 5) this.pos += 4;
    else throw new MalformedPacket(`wire type ${wireType}`);
    if (this.pos > this.b.length) throw new MalformedPacket("truncated");
  }
}

export function decodePacket(b: Uint8Array): ReceivedPacket {
  const r = new Reader(b);
  let sessionHi = 0;
  let sessionLo = 0;
  let msgId = 0;
  let payload = EMPTY;
  let packetType = "";
  let reason = "";
  let targets: number[] | null = null;
  while (r.pos < b.length) {
    const key = r.varint32();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === 0) {
      r.varint64();
      sessionLo = r.lo;
      sessionHi = r.hi | 0;
    } else if (field === 2 && wire === 0) {
      msgId = r.varint32() | 0;
    } else if (field === 3 && wire === 2) {
      payload = r.bytes();
    } else if (field === 4 && wire === 2) {
      const entry = readEntry(r.bytes());
      if (entry.key === "packet_type") packetType = entry.value;
      else if (entry.key === "reason") reason = entry.value;
    } else if (field === 5 && wire === 2) {
      const packed = new Reader(r.bytes());
      targets ??= [];
      while (packed.pos < packed.b.length && targets.length <= MAX_TARGET_WORDS) {
        packed.varint64();
        targets.push(packed.hi | 0, packed.lo);
      }
    } else if (field === 5 && wire === 0) {
      r.varint64();
      if ((targets ??= []).length <= MAX_TARGET_WORDS) targets.push(r.hi | 0, r.lo);
    } else {
      r.skip(wire);
    }
  }
  if (targets !== null && targets.length > MAX_TARGET_WORDS) targets = TOO_MANY_TARGETS as number[];
  return { sessionHi, sessionLo, msgId, payload, packetType, reason, targets: targets ?? NO_TARGETS };
}

function readEntry(b: Uint8Array): { key: string; value: string } {
  const r = new Reader(b);
  let key = "";
  let value = "";
  while (r.pos < b.length) {
    const tag = r.varint32();
    if (tag === TAG_ENTRY_KEY) key = decoder.decode(r.bytes());
    else if (tag === TAG_ENTRY_VALUE) value = decoder.decode(r.bytes());
    else r.skip(tag & 7);
  }
  return { key, value };
}
