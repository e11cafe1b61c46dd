// "host:port" as Go's net.SplitHostPort reads it, used for listen addresses and endpoints alike.

const BRACKETED = /^\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?)\]:(\d{1,5})$/;
const PLAIN = /^([A-Za-z0-9._-]*):(\d{1,5})$/;

/**
 * Splits "host:port", "[ipv6]:port" or ":port" (all interfaces, host "0.0.0.0"). The port is
 * 0..65535; callers that dial must reject 0 themselves. An unbracketed IPv6 address is ambiguous
 * and rejected, as Go does.
 */
export function parseHostPort(addr: string): { host: string; port: number } | undefined {
  const m = BRACKETED.exec(addr) ?? PLAIN.exec(addr);
  if (m === null) return undefined;
  const [, host = "", portText = ""] = m;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/** An address a connection can be dialled to: explicit host, port 1..65535. */
export function isDialableEndpoint(addr: string): boolean {
  const hp = parseHostPort(addr);
  return hp !== undefined && !addr.startsWith(":") && hp.port > 0;
}
