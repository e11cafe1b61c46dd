import { CidrList, parseIp } from "./cidr.ts";

// What a WebSocket upgrade request decides beyond the handshake, on both ways in (the dedicated
// listener and the TCP port's sniffed handshakes), so both decide alike:
//   - whether its Origin may connect (security.allowed_origins);
//   - the client's address: X-Forwarded-For, read only from a peer in security.trusted_proxies;
//   - (with trace-context.ts) the trace its session continues (traceparent).
// Once per handshake, never per message: plain string work is fine here.

/** What an upgrade request is checked against (config: security.allowed_origins, trusted_proxies). */
export interface UpgradePolicy {
  readonly origins: OriginAllowList;
  /** Peers whose X-Forwarded-For names the client (security.trusted_proxies). */
  readonly trustedProxies: CidrList;
}

/**
 * security.allowed_origins: the Origins a browser page may open a WebSocket from. Empty allows
 * every origin, as the reference does (it never looks at Origin). An entry is an exact origin,
 * "scheme://host[:port]", compared without regard to case; "scheme://*.domain[:port]" allows every
 * subdomain of domain (any depth) but not domain itself; "null" allows the opaque origin browsers
 * send from file:// pages and sandboxed iframes; "*" allows all.
 * The header is read strictly as an RFC 6454 serialized origin (scheme "://" host [":" port], no
 * path, query, fragment, userinfo, spaces or empty labels): anything else, such as two Origin
 * headers joined with ", ", is refused unless the list holds "*". Browsers omit a scheme's default
 * port, so entries naming one are refused by the config check (they could never match).
 * A request without an Origin header is not a browser's (browsers always send one on a WebSocket
 * upgrade), so the list, which exists to stop other sites' pages, does not apply to it: a native
 * client could write any Origin it liked anyway.
 */
export class OriginAllowList {
  private readonly exact: ReadonlySet<string>;
  /** [scheme, "." + domain, port ("" when none)] of each wildcard entry. */
  private readonly wildcards: readonly (readonly [string, string, string])[];
  private readonly any: boolean;

  constructor(entries: readonly string[]) {
    const exact = new Set<string>();
    const wildcards: [string, string, string][] = [];
    let any = entries.length === 0;
    for (const raw of entries) {
      const e = raw.trim().toLowerCase();
      if (e === "*") any = true;
      const m = WILDCARD_ORIGIN.exec(e);
      if (m !== null) wildcards.push([m[1]!, `.${m[2]}`, m[3] ?? ""]);
      else exact.add(e);
    }
    this.exact = exact;
    this.wildcards = wildcards;
    this.any = any;
  }

  /** origin: the request's Origin header (undefined or null when it sent none). */
  allows(origin: string | null | undefined): boolean {
    if (this.any || origin == null) return true;
    const o = origin.trim().toLowerCase();
    // Exact entries are origins (or "null") themselves: equal text is an allowed origin.
    if (this.exact.has(o)) return true;
    if (this.wildcards.length === 0) return false;
    const m = SERIALIZED_ORIGIN.exec(o);
    if (m === null) return false;
    const [, scheme, host, port = ""] = m;
    for (const [s, domain, p] of this.wildcards) {
      if (s === scheme && p === port && host!.endsWith(domain) && host!.length > domain.length) return true;
    }
    return false;
  }
}

/** A DNS label: letters, digits and inner hyphens (no empty labels, so no "a..b" nor a trailing "."). */
const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";
const HOSTNAME = `${LABEL}(?:\\.${LABEL})*`;
const SCHEME = "[a-z][a-z0-9+.-]*";
/** RFC 6454 section 6.1's serialization, lower-cased: [scheme, host, port]. */
const SERIALIZED_ORIGIN = new RegExp(`^(${SCHEME}):\\/\\/(${HOSTNAME}|\\[[0-9a-f:.]+\\])(?::(\\d{1,5}))?$`);
/** "scheme://*.domain[:port]": [scheme, domain, port]. */
const WILDCARD_ORIGIN = new RegExp(`^(${SCHEME}):\\/\\/\\*\\.(${HOSTNAME})(?::(\\d{1,5}))?$`);
/** The port a browser leaves out of the origins of each scheme. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: "80", https: "443", ws: "80", wss: "443" };

/** Why an allowed_origins entry is not one (config validation), or null when it is. */
export function originEntryProblem(entry: string): string | null {
  const e = entry.trim().toLowerCase();
  if (e === "*" || e === "null") return null;
  const wildcard = WILDCARD_ORIGIN.exec(e);
  const m = wildcard ?? SERIALIZED_ORIGIN.exec(e);
  if (m === null) {
    return 'an origin "scheme://host[:port]" (no path, no trailing slash), "scheme://*.domain[:port]" for every subdomain, "null" (file:// pages, sandboxed iframes), or "*"';
  }
  const [, scheme, host, port] = m;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return "a port from 1 to 65535";
  if (port !== undefined && DEFAULT_PORTS[scheme!] === port) {
    return `the origin without its default port (browsers send "${scheme}://${wildcard === null ? host : `*.${host}`}", never ":${port}", so this entry could never match)`;
  }
  if (wildcard !== null && !host!.includes(".")) {
    return `a wildcard under a domain of two labels or more ("${scheme}://*.${host}" would allow every site under the public suffix ".${host}")`;
  }
  return null;
}

/** The client address an upgrade request stands for, and whether its X-Forwarded-For was unusable. */
export interface ForwardedAddress {
  readonly address: string;
  /** The peer is trusted and sent X-Forwarded-For, but it held something that is not an address. */
  readonly malformed: boolean;
}

/**
 * The client's address behind trusted proxies, as nginx's real_ip_recursive finds it: from a peer
 * in `trusted`, X-Forwarded-For is walked from the right, skipping addresses that are themselves
 * trusted proxies; the first one that is not is the client (all trusted: the left-most). From any
 * other peer the header is ignored (anyone can write it). An entry that is not an IP address
 * (optionally with a port) makes the whole header unusable: the peer's address is used.
 */
export function forwardedClientAddress(peer: string, forwardedFor: string | null | undefined, trusted: CidrList): ForwardedAddress {
  if (forwardedFor == null || trusted.empty || !trusted.contains(peer)) return { address: peer, malformed: false };
  const hops = forwardedFor.split(",");
  let address = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = bareAddress(hops[i]!.trim());
    if (hop === null) return { address: peer, malformed: true };
    address = hop;
    if (!trusted.contains(hop)) break;
  }
  return { address, malformed: false };
}

/** "1.2.3.4", "1.2.3.4:5678", "::1", "[::1]" or "[::1]:80" as the bare address; null if not one. */
function bareAddress(hop: string): string | null {
  let text = hop;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || (close + 1 < text.length && !/^:\d{1,5}$/.test(text.slice(close + 1)))) return null;
    text = text.slice(1, close);
  } else if (/^[\d.]+:\d{1,5}$/.test(text)) {
    text = text.slice(0, text.indexOf(":"));
  }
  return parseIp(text) === undefined ? null : text;
}

/**
 * The fields of an HTTP request header block (request line first, up to its blank line), by
 * lower-cased name; a field sent more than once is joined with ", " (RFC 9110 5.3), as the Fetch
 * API's Headers.get joins it on the dedicated listener.
 */
export function readHeaderFields(header: Uint8Array): Map<string, string> {
  const fields = new Map<string, string>();
  const lines = new TextDecoder("latin1").decode(header).split("\r\n");
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = fields.get(name);
    fields.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return fields;
}

/** Every origin allowed, no proxy believed: the policy of a listener given none (the defaults). */
export const ALLOW_EVERY_UPGRADE: UpgradePolicy = { origins: new OriginAllowList([]), trustedProxies: new CidrList([]) };

const STATUS_TEXT: Readonly<Record<number, string>> = { 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

/**
 * A refused upgrade's answer on the TCP port, as the dedicated listener's Response gives it:
 * `status` and a body naming the refusal.
 */
export function refusalResponse(status: number, refusal: string): Uint8Array {
  const body = `connection refused: ${refusal}\n`;
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Refused"}\r\nConnection: close\r\nContent-Type: text/plain;charset=utf-8\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  );
}
