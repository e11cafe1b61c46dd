// The hand-written GamePacket codec against protobufjs (what proto-loader and the reference's
// backends' libraries encode): the same bytes decode to the same fields, both ways.
import { describe, expect, test } from "bun:test";
import protobuf from "protobufjs";
import { decodePacket, encodeMetadata, encodePacket, encodeSessionIdField } from "../../src/backend/grpc/game-packet-codec.ts";
import { GAME_GATEWAY_PROTO } from "../support/grpc-game-server.ts";

const GamePacket = new protobuf.Root().loadSync(GAME_GATEWAY_PROTO, { keepCase: true }).lookupType("gateway.GamePacket");
const hiOf = (id: bigint) => Number(BigInt.asIntN(32, id >> 32n));
const loOf = (id: bigint) => Number(BigInt.asUintN(32, id));
const IDS = [0n, 1n, 127n, 128n, 300n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 1234567890123456789n, 0x7fffffffffffffffn, -1n, -9876543210n];

describe("GamePacket codec", () => {
  test("what it encodes, protobufjs decodes: session_id, msg_id, payload, metadata", () => {
    for (const id of IDS) {
      for (const msgId of [0, 1, 200, 65535, -5]) {
        const body = new Uint8Array([9, 8, 7, 6, 5, 4]);
        const metadata = { packet_type: "connect", client_ip: "10.1.2.3", "ünï": "cödé" };
        const bytes = encodePacket(encodeSessionIdField(loOf(id), hiOf(id)), msgId, body, 1, 4, encodeMetadata(metadata));
        const m = GamePacket.toObject(GamePacket.decode(bytes), { longs: String, defaults: true }) as Record<string, unknown>;
        expect(m).toEqual({ session_id: id.toString(), msg_id: msgId, payload: Buffer.from([8, 7, 6, 5]), metadata, target_session_ids: [] });
      }
    }
  });

  test("what protobufjs encodes, it decodes: targets (packed), kick reason, unknown fields skipped", () => {
    for (const id of IDS) {
      const msg = GamePacket.fromObject({
        session_id: id.toString(),
        msg_id: 513,
        payload: Buffer.from("hello"),
        metadata: { packet_type: "server_disconnect", reason: "banned", other: "x" },
        target_session_ids: IDS.map(String),
      });
      const p = decodePacket(GamePacket.encode(msg).finish());
      expect([p.sessionHi, p.sessionLo, p.msgId, Buffer.from(p.payload).toString(), p.packetType, p.reason]).toEqual([hiOf(id), loOf(id), 513, "hello", "server_disconnect", "banned"]);
      expect(p.targets).toEqual(IDS.flatMap((t) => [hiOf(t), loOf(t)]));
    }
    const empty = decodePacket(GamePacket.encode(GamePacket.fromObject({})).finish());
    expect([empty.sessionHi, empty.sessionLo, empty.msgId, empty.payload.length, empty.packetType, empty.targets.length]).toEqual([0, 0, 0, 0, "", 0]);
  });

  test("a truncated packet is refused, not misread", () => {
    const bytes = GamePacket.encode(GamePacket.fromObject({ session_id: "5", payload: Buffer.from("abcdef") })).finish();
    expect(() => decodePacket(bytes.subarray(0, bytes.length - 2))).toThrow("truncated");
  });
});
