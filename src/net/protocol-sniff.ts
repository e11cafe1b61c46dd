// How the reference tells what arrives on its client port (../shared/reference/reference-gateway.md, "WebSocket on the
// client port"): the first 4 bytes "GET ", "POST", "PUT ", "HEAD" or "HTTP" mean HTTP; an HTTP
// request whose header names both "upgrade" and "websocket" (any case) is a WebSocket handshake,
// on any path; anything else is a game client. Unlike the reference, nothing waits a fixed time:
// the decision is made as soon as the bytes that decide it are there.

/** Largest HTTP request header accepted on the client port; past it the client gets 426, or 431 if it is a handshake. */
export const MAX_HTTP_HEADER = 8 * 1024;

const HTTP_STARTS: readonly Uint8Array[] = ["GET ", "POST", "PUT ", "HEAD", "HTTP"].map((s) => new TextEncoder().encode(s));
const SNIFF_BYTES = 4;

export type FirstBytes = "game" | "http" | "undecided";

/** What the first bytes of a connection are; "undecided" while fewer than 4 could still start HTTP. */
export function classifyFirstBytes(b: Uint8Array): FirstBytes {
  const n = Math.min(b.length, SNIFF_BYTES);
  for (const start of HTTP_STARTS) {
    let i = 0;
    while (i < n && b[i] === start[i]) i++;
    if (i === n) return n === SNIFF_BYTES ? "http" : "undecided";
  }
  return "game";
}

/** a then b in one new array (only while a connection's first bytes cannot decide). */
export function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The offset just past the header's blank line, or -1 while it has not arrived. */
export function httpHeaderEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i] === 0x0a && b[i - 1] === 0x0d && b[i - 2] === 0x0a && b[i - 3] === 0x0d) return i + 1;
  }
  return -1;
}

/** The reference's test: the header mentions both "upgrade" and "websocket", in any case. */
export function isWebSocketHandshake(header: Uint8Array): boolean {
  const text = new TextDecoder("latin1").decode(header).toLowerCase();
  return text.includes("upgrade") && text.includes("websocket");
}

const BODY_426 = "this port speaks the game protocol and WebSocket; send a WebSocket upgrade\n";
/** The answer to plain HTTP on the client port, as the reference gives it. */
export const UPGRADE_REQUIRED_RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: close\r\nContent-Type: text/plain\r\n" +
    `Content-Length: ${BODY_426.length}\r\n\r\n${BODY_426}`,
);

const BODY_431 = `HTTP request header larger than ${MAX_HTTP_HEADER} bytes\n`;
export const HEADER_TOO_LARGE_RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\n" +
    `Content-Length: ${BODY_431.length}\r\n\r\n${BODY_431}`,
);
