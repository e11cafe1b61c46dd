import type { Session } from "../../session/session.ts";

// GamePacket as @grpc/proto-loader encodes and decodes it (keepCase, defaults, int64 as Long).
// Lifecycle packets carry metadata.packet_type; game messages carry none (docs/protocol.md,
// "gRPC backends").

/** An int64 as protobufjs reads and writes it: two signed 32-bit halves. */
export interface Int64 {
  readonly low: number;
  readonly high: number;
  readonly unsigned?: boolean;
}

export interface GamePacket {
  readonly session_id: Int64;
  readonly msg_id: number;
  readonly payload: Uint8Array;
  readonly metadata: Readonly<Record<string, string>>;
  readonly target_session_ids: readonly Int64[];
}

export const PacketType = {
  Connect: "connect",
  Disconnect: "disconnect",
  ServerConnect: "server_connect",
  ServerDisconnect: "server_disconnect",
} as const;

const EMPTY = new Uint8Array(0);
const NO_TARGETS: readonly Int64[] = [];
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

/** The session's ID as the packets carry it; made once per session (see SessionPacketFields). */
export function sessionInt64(s: Session): Int64 {
  return { low: s.lo | 0, high: s.hi | 0, unsigned: false };
}

/**
 * What every packet of a session repeats: its ID, and the trace metadata when propagation is on.
 * Built once when the session binds, so a game message costs one object and a payload copy.
 */
export interface SessionPacketFields {
  readonly id: Int64;
  readonly gameMetadata: Readonly<Record<string, string>>;
}

export function sessionPacketFields(s: Session, traceContext: boolean): SessionPacketFields {
  const traced = traceContext && s.traceId !== null && s.spanId !== null;
  return {
    id: sessionInt64(s),
    gameMetadata: traced ? Object.freeze({ trace_id: s.traceId!.toHex(), span_id: s.spanId!.toHex() }) : NO_METADATA,
  };
}

export function gamePacket(f: SessionPacketFields, msgId: number, payload: Uint8Array): GamePacket {
  return { session_id: f.id, msg_id: msgId, payload, metadata: f.gameMetadata, target_session_ids: NO_TARGETS };
}

export function connectPacket(f: SessionPacketFields, s: Session): GamePacket {
  const metadata: Record<string, string> = {
    ...f.gameMetadata,
    packet_type: PacketType.Connect,
    client_ip: s.client.remoteAddress,
    protocol: s.client.protocol,
    connect_time: String(s.createdAt),
  };
  return { session_id: f.id, msg_id: 0, payload: EMPTY, metadata, target_session_ids: NO_TARGETS };
}

export function disconnectPacket(f: SessionPacketFields, reason: string, now: number): GamePacket {
  const metadata: Record<string, string> = {
    ...f.gameMetadata,
    packet_type: PacketType.Disconnect,
    reason,
    disconnect_time: String(now),
  };
  return { session_id: f.id, msg_id: 0, payload: EMPTY, metadata, target_session_ids: NO_TARGETS };
}

/** Bytes a packet is held to count for in the queue bounds: its payload and a fixed allowance for the rest. */
export const PACKET_OVERHEAD = 32;
