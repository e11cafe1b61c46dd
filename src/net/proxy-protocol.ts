// The PROXY protocol header a load balancer puts before the client's bytes (v1 text, v2 binary),
// so the gateway sees the player's address rather than the balancer's.
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
// Addresses are checked strictly: what a header carries is handed to backends as the player's IP.

import { parseIp } from "./cidr.ts";

/** security.proxy_protocol: off, never parsed; optional, trusted peers may send one; required, trusted peers must. */
export type ProxyProtocolMode = "off" | "optional" | "required";

export type ProxyParse =
  /** Not enough bytes yet to decide. */
  | { readonly kind: "incomplete" }
  /** The stream does not start with a PROXY header. */
  | { readonly kind: "absent" }
  /** A header of `length` bytes; address null for LOCAL / UNKNOWN (use the socket's peer). */
  | { readonly kind: "header"; readonly length: number; readonly address: string | null }
  | { readonly kind: "invalid"; readonly reason: string };

const V2_SIGNATURE = Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Uint8Array.from([0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]); // "PROXY "
const V1_MAX = 107;
/** The longest header accepted (v2 with TLVs), however its bytes arrive. */
export const MAX_PROXY_HEADER = 1024;

function startsWith(b: Uint8Array, prefix: Uint8Array): "yes" | "no" | "maybe" {
  const n = Math.min(b.length, prefix.length);
  for (let i = 0; i < n; i++) if (b[i] !== prefix[i]) return "no";
  return n === prefix.length ? "yes" : "maybe";
}

export function parseProxyHeader(b: Uint8Array): ProxyParse {
  const v2 = startsWith(b, V2_SIGNATURE);
  if (v2 === "yes") return parseV2(b);
  const v1 = startsWith(b, V1_PREFIX);
  if (v1 === "yes") return parseV1(b);
  return v2 === "maybe" || v1 === "maybe" ? { kind: "incomplete" } : { kind: "absent" };
}

function parseV1(b: Uint8Array): ProxyParse {
  let end = -1;
  for (let i = 0; i < Math.min(b.length, V1_MAX) - 1; i++) {
    if (b[i] === 0x0d && b[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) return b.length >= V1_MAX ? { kind: "invalid", reason: "v1 header longer than 107 bytes" } : { kind: "incomplete" };
  const line = new TextDecoder().decode(b.subarray(0, end));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "header", length: end + 2, address: null };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) return { kind: "invalid", reason: `bad v1 header "${line.slice(0, 60)}"` };
  const family = parts[1];
  const src = parts[2]!;
  if (!isAddress(src, family) || !isAddress(parts[3]!, family) || !isPort(parts[4]!) || !isPort(parts[5]!)) {
    return { kind: "invalid", reason: `bad v1 address "${line.slice(0, 60)}"` };
  }
  return { kind: "header", length: end + 2, address: src };
}

/** A literal address of the family: dotted quad for TCP4, colon form for TCP6. */
function isAddress(text: string, family: "TCP4" | "TCP6"): boolean {
  if (text.includes(":") !== (family === "TCP6")) return false;
  return parseIp(text) !== undefined;
}

/** Decimal 0..65535, as the spec writes it (no sign, no spaces, no leading zeros). */
function isPort(text: string): boolean {
  return /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535;
}

function parseV2(b: Uint8Array): ProxyParse {
  if (b.length < 16) return { kind: "incomplete" };
  const verCmd = b[12]!;
  if (verCmd >> 4 !== 2) return { kind: "invalid", reason: `v2 version ${verCmd >> 4}` };
  const length = 16 + ((b[14]! << 8) | b[15]!);
  // Decided from the length field, so a long header is refused whether it arrives whole or in parts.
  if (length > MAX_PROXY_HEADER) return { kind: "invalid", reason: `v2 header of ${length} bytes (at most ${MAX_PROXY_HEADER})` };
  if (b.length < length) return { kind: "incomplete" };
  const command = verCmd & 0x0f;
  if (command === 0) return { kind: "header", length, address: null }; // LOCAL: health check from the balancer
  if (command !== 1) return { kind: "invalid", reason: `v2 command ${command}` };
  const family = b[13]! >> 4;
  if (family === 1 && length >= 16 + 12) return { kind: "header", length, address: `${b[16]}.${b[17]}.${b[18]}.${b[19]}` };
  if (family === 2 && length >= 16 + 36) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(((b[16 + i * 2]! << 8) | b[17 + i * 2]!).toString(16));
    return { kind: "header", length, address: groups.join(":") };
  }
  if (family === 0 || family === 3) return { kind: "header", length, address: null }; // UNSPEC / UNIX
  return { kind: "invalid", reason: `v2 family ${family} with ${length - 16} address bytes` };
}
