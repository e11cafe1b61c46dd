import { describe, expect, test } from "bun:test";
import {
  CLIENT_HEADER_SIZE,
  MAX_CLIENT_BODY,
  encodeClientFrame,
  makeServerId,
  parseServerId,
  readClientBodyLength,
  readClientMessageId,
  readClientServerId,
  serverIdInst,
  serverIdIsZip,
  serverIdType,
  serverIdWorld,
  writeClientHeader,
} from "../../src/protocol/client-frame.ts";

describe("client header", () => {
  test("every field round-trips little-endian at an offset", () => {
    const b = new Uint8Array(3 + CLIENT_HEADER_SIZE);
    writeClientHeader(b, 3, 0x1234, 0xbeef, 0x89abcdef);
    expect([...b.subarray(3)]).toEqual([0x34, 0x12, 0xef, 0xbe, 0xef, 0xcd, 0xab, 0x89]);
    expect(readClientBodyLength(b, 3)).toBe(0x1234);
    expect(readClientMessageId(b, 3)).toBe(0xbeef);
    expect(readClientServerId(b, 3)).toBe(0x89abcdef);
  });

  test("body lengths 0 and 65535", () => {
    for (const n of [0, 1, MAX_CLIENT_BODY]) {
      const f = encodeClientFrame(7, 0, new Uint8Array(n).fill(0xaa));
      expect(f.length).toBe(CLIENT_HEADER_SIZE + n);
      expect(readClientBodyLength(f, 0)).toBe(n);
    }
    expect(() => encodeClientFrame(7, 0, new Uint8Array(MAX_CLIENT_BODY + 1))).toThrow(RangeError);
  });

  test("message IDs 0 and 65535", () => {
    const b = new Uint8Array(8);
    writeClientHeader(b, 0, 0, 0xffff, 0);
    expect(readClientMessageId(b, 0)).toBe(0xffff);
    writeClientHeader(b, 0, 0, 0, 0);
    expect(readClientMessageId(b, 0)).toBe(0);
  });
});

describe("ServerID bit fields", () => {
  test("isZip is bit 31 and survives the u32 round trip", () => {
    const id = makeServerId({ isZip: true, worldId: 0, serverType: 0, instId: 0 });
    expect(id).toBe(0x80000000);
    expect(serverIdIsZip(id)).toBe(true);
    expect(serverIdIsZip(0x7fffffff)).toBe(false);
    const b = new Uint8Array(8);
    writeClientHeader(b, 0, 0, 0, id);
    expect(readClientServerId(b, 0)).toBe(0x80000000);
  });

  test("worldID spans 0..32767 without touching other fields", () => {
    for (const worldId of [0, 1, 255, 256, 12345, 32767]) {
      const id = makeServerId({ isZip: false, worldId, serverType: 0xff, instId: 0xff });
      expect(serverIdWorld(id)).toBe(worldId);
      expect(serverIdType(id)).toBe(0xff);
      expect(serverIdInst(id)).toBe(0xff);
      expect(serverIdIsZip(id)).toBe(false);
    }
    expect(() => makeServerId({ isZip: false, worldId: 32768, serverType: 0, instId: 0 })).toThrow(RangeError);
    expect(() => makeServerId({ isZip: false, worldId: -1, serverType: 0, instId: 0 })).toThrow(RangeError);
  });

  test("serverType and instID are bytes 1 and 0", () => {
    const id = makeServerId({ isZip: true, worldId: 32767, serverType: 200, instId: 7 });
    expect(id).toBe((0x80000000 | (32767 << 16) | (200 << 8) | 7) >>> 0);
    expect(parseServerId(id)).toEqual({ isZip: true, worldId: 32767, serverType: 200, instId: 7 });
    expect(() => makeServerId({ isZip: false, worldId: 0, serverType: 256, instId: 0 })).toThrow(RangeError);
    expect(() => makeServerId({ isZip: false, worldId: 0, serverType: 0, instId: 256 })).toThrow(RangeError);
  });

  test("every single bit lands in exactly one field", () => {
    for (let bit = 0; bit < 32; bit++) {
      const id = (1 << bit) >>> 0;
      const a = parseServerId(id);
      const set = [a.isZip ? 1 : 0, a.worldId ? 1 : 0, a.serverType ? 1 : 0, a.instId ? 1 : 0];
      expect(set.reduce((x, y) => x + y, 0)).toBe(1);
      expect(makeServerId(a)).toBe(id);
    }
  });
});
