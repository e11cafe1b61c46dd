// Client <-> gateway framing (docs/protocol.md, "Client <-> gateway"):
//   [u16 Length][u16 MessageID][u32 ServerID] body...   all little-endian.
// Readers take (bytes, offset) pairs so frames are parsed in place, without views or objects.

export const CLIENT_HEADER_SIZE = 8;
/** Where MessageID and ServerID sit in the client header (for readers with a DataView). */
export const CLIENT_MESSAGE_ID_OFFSET = 2;
export const CLIENT_SERVER_ID_OFFSET = 4;
/** Length is a u16: no client body can be larger. */
export const MAX_CLIENT_BODY = 0xffff;
export const MAX_CLIENT_FRAME = CLIENT_HEADER_SIZE + MAX_CLIENT_BODY;

export const MAX_WORLD_ID = 0x7fff;

export function readClientBodyLength(b: Uint8Array, off: number): number {
  return b[off]! | (b[off + 1]! << 8);
}

export function readClientMessageId(b: Uint8Array, off: number): number {
  return b[off + 2]! | (b[off + 3]! << 8);
}

/** The ServerID as an unsigned 32-bit number. */
export function readClientServerId(b: Uint8Array, off: number): number {
  return (b[off + 4]! | (b[off + 5]! << 8) | (b[off + 6]! << 16) | (b[off + 7]! << 24)) >>> 0;
}

/** Writes an 8-byte client header at off. */
export function writeClientHeader(
  b: Uint8Array,
  off: number,
  bodyLength: number,
  messageId: number,
  serverId: number,
): void {
  b[off] = bodyLength;
  b[off + 1] = bodyLength >>> 8;
  b[off + 2] = messageId;
  b[off + 3] = messageId >>> 8;
  b[off + 4] = serverId;
  b[off + 5] = serverId >>> 8;
  b[off + 6] = serverId >>> 16;
  b[off + 7] = serverId >>> 24;
}

// ServerID bit fields: bit 31 isZip, bits 16-30 worldID, bits 8-15 serverType, bits 0-7 instID.

export function serverIdIsZip(serverId: number): boolean {
  return (serverId >>> 31) === 1;
}

export function serverIdWorld(serverId: number): number {
  return (serverId >>> 16) & MAX_WORLD_ID;
}

export function serverIdType(serverId: number): number {
  return (serverId >>> 8) & 0xff;
}

export function serverIdInst(serverId: number): number {
  return serverId & 0xff;
}

export interface ServerAddress {
  readonly isZip: boolean;
  readonly worldId: number;
  readonly serverType: number;
  readonly instId: number;
}

/** Builds a ServerID; throws RangeError on an out-of-range field (used by tools and tests, not per frame). */
export function makeServerId(a: ServerAddress): number {
  if (!Number.isInteger(a.worldId) || a.worldId < 0 || a.worldId > MAX_WORLD_ID) {
    throw new RangeError(`worldId ${a.worldId} is outside 0..${MAX_WORLD_ID}`);
  }
  if (!Number.isInteger(a.serverType) || a.serverType < 0 || a.serverType > 0xff) {
    throw new RangeError(`serverType ${a.serverType} is outside 0..255`);
  }
  if (!Number.isInteger(a.instId) || a.instId < 0 || a.instId > 0xff) {
    throw new RangeError(`instId ${a.instId} is outside 0..255`);
  }
  return ((a.isZip ? 0x80000000 : 0) | (a.worldId << 16) | (a.serverType << 8) | a.instId) >>> 0;
}

export function parseServerId(serverId: number): ServerAddress {
  return {
    isZip: serverIdIsZip(serverId),
    worldId: serverIdWorld(serverId),
    serverType: serverIdType(serverId),
    instId: serverIdInst(serverId),
  };
}

/** Allocates one whole client frame; for tools, tests and the demo backend, not the gateway's hot path. */
export function encodeClientFrame(messageId: number, serverId: number, body: Uint8Array): Uint8Array {
  if (body.length > MAX_CLIENT_BODY) throw new RangeError(`client body of ${body.length} bytes exceeds ${MAX_CLIENT_BODY}`);
  const out = new Uint8Array(CLIENT_HEADER_SIZE + body.length);
  writeClientHeader(out, 0, body.length, messageId, serverId);
  out.set(body, CLIENT_HEADER_SIZE);
  return out;
}
