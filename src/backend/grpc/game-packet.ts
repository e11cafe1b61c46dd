import type { Session } from "../../session/session.ts";
import { encodeMetadata, encodePacket, encodeSessionIdField } from "./game-packet-codec.ts";

// The packets the gateway sends a gRPC backend (docs/protocol.md, "Gateway <-> backend (gRPC)"),
// encoded to the Buffers the stream sends. Lifecycle packets carry metadata.packet_type; game
// messages carry none (only trace_id and span_id when propagation is on).

export const PacketType = {
  Connect: "connect",
  Disconnect: "disconnect",
  ServerConnect: "server_connect",
  ServerDisconnect: "server_disconnect",
} as const;

const EMPTY = new Uint8Array(0);

/**
 * What every packet of a session repeats, encoded once when the session binds: its session_id
 * field and, with trace propagation on, its trace metadata. A game message then costs one Buffer.
 */
export interface SessionPacketFields {
  readonly idField: Uint8Array;
  /** trace_id and span_id, as a Record (lifecycle packets add to it) and encoded (game messages). */
  readonly trace: Readonly<Record<string, string>>;
  readonly traceEncoded: Uint8Array;
}

export function sessionPacketFields(s: Session, traceContext: boolean): SessionPacketFields {
  const traced = traceContext && s.traceId !== null && s.spanId !== null;
  const trace: Record<string, string> = traced ? { trace_id: s.traceId!.toHex(), span_id: s.spanId!.toHex() } : {};
  return { idField: encodeSessionIdField(s.lo, s.hi), trace, traceEncoded: traced ? encodeMetadata(trace) : EMPTY };
}

/** A game message: msg_id = the client's MessageID, payload = its body (b[off, off+len)). */
export function gamePacket(f: SessionPacketFields, msgId: number, b: Uint8Array, off: number, len: number): Buffer {
  return encodePacket(f.idField, msgId, b, off, len, f.traceEncoded);
}

export function connectPacket(f: SessionPacketFields, s: Session): Buffer {
  const metadata = encodeMetadata({
    ...f.trace,
    packet_type: PacketType.Connect,
    client_ip: s.client.remoteAddress,
    protocol: s.client.protocol,
    connect_time: String(s.createdAt),
  });
  return encodePacket(f.idField, 0, EMPTY, 0, 0, metadata);
}

export function disconnectPacket(f: SessionPacketFields, reason: string, now: number): Buffer {
  const metadata = encodeMetadata({ ...f.trace, packet_type: PacketType.Disconnect, reason, disconnect_time: String(now) });
  return encodePacket(f.idField, 0, EMPTY, 0, 0, metadata);
}
