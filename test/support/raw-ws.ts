// WebSocket bytes built and read by hand, from RFC 6455 alone (no WebSocket library), for tests
// that need control over how the bytes meet the wire: a handshake pipelined with frames in one
// write, a handshake split across writes, an unmasked client frame.
import { randomBytes } from "node:crypto";

/** A client handshake for `path` (the RFC's sample key; the server's answer is not checked here). */
export function handshakeRequest(path = "/game", extraHeaders = ""): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`
  );
}

/**
 * One frame (opcode 2: binary) as a client sends it: masked, unless `masked` is false; the last
 * of its message unless `final` is false (a fragment that continuation frames, opcode 0, follow).
 */
export function clientFrame(payload: Uint8Array, masked = true, opcode = 2, final = true): Uint8Array {
  const extended = payload.length < 126 ? 0 : 2;
  const headerLength = 2 + extended + (masked ? 4 : 0);
  const out = new Uint8Array(headerLength + payload.length);
  out[0] = (final ? 0x80 : 0) | opcode;
  if (extended === 0) out[1] = payload.length;
  else {
    out[1] = 126;
    out[2] = payload.length >> 8;
    out[3] = payload.length & 0xff;
  }
  if (masked) out[1]! |= 0x80;
  const key = masked ? randomBytes(4) : null;
  if (key !== null) out.set(key, 2 + extended);
  for (let i = 0; i < payload.length; i++) out[headerLength + i] = key === null ? payload[i]! : payload[i]! ^ key[i & 3]!;
  return out;
}

export interface ServerAnswer {
  /** The HTTP status line, e.g. "HTTP/1.1 101 Switching Protocols" ("" until the header is complete). */
  readonly statusLine: string;
  /** Header lines, lower-cased names. */
  readonly headers: ReadonlyMap<string, string>;
  /** Binary message payloads, in order. */
  readonly binary: Uint8Array[];
  /** The close frame's code, or null when none came (yet). */
  readonly closeCode: number | null;
  /** The close frame's reason text ("" when none came). */
  readonly closeReason: string;
  /** Ping frames received. */
  readonly pings: number;
}

/** Reads what a server sent: its HTTP answer, then its (unmasked) frames, as far as they are complete. */
export function readServerAnswer(bytes: Uint8Array): ServerAnswer {
  const text = new TextDecoder("latin1").decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { statusLine: "", headers: new Map(), binary: [], closeCode: null, closeReason: "", pings: 0 };
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as const));
  const binary: Uint8Array[] = [];
  let closeCode: number | null = null;
  let closeReason = "";
  let pings = 0;
  let off = end + 4;
  while (off + 2 <= bytes.length) {
    const opcode = bytes[off]! & 0x0f;
    let length = bytes[off + 1]! & 0x7f;
    let at = off + 2;
    if (length === 126) {
      if (at + 2 > bytes.length) break;
      length = (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
    } else if (length === 127) throw new Error("frames over 64 KiB are not expected here");
    if (at + length > bytes.length) break;
    const payload = bytes.subarray(at, at + length);
    if (opcode === 2) binary.push(payload);
    if (opcode === 8 && length >= 2) {
      closeCode = (payload[0]! << 8) | payload[1]!;
      closeReason = new TextDecoder().decode(payload.subarray(2));
    }
    if (opcode === 9) pings++;
    off = at + length;
  }
  return { statusLine: statusLine ?? "", headers, binary, closeCode, closeReason, pings };
}
