// PROXY protocol headers as a load balancer sends them (v1 text, v2 binary), for tests that play
// the balancer. The gateway only parses them (src/net/proxy-protocol.ts).

const V2_SIGNATURE = Uint8Array.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v1 header: "PROXY TCP4|TCP6 src dst srcPort dstPort\r\n". */
export function proxyV1(src: string, dst: string, srcPort: number, dstPort: number): Uint8Array {
  const family = src.includes(":") ? "TCP6" : "TCP4";
  return new TextEncoder().encode(`PROXY ${family} ${src} ${dst} ${srcPort} ${dstPort}\r\n`);
}

/** A v2 PROXY header for IPv4 over TCP. */
export function proxyV2(src: string, dst: string, srcPort: number, dstPort: number): Uint8Array {
  const out = new Uint8Array(28);
  out.set(V2_SIGNATURE, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = 0x11; // INET, STREAM
  out[15] = 12;
  src.split(".").forEach((p, i) => (out[16 + i] = Number(p)));
  dst.split(".").forEach((p, i) => (out[20 + i] = Number(p)));
  out[24] = srcPort >> 8;
  out[25] = srcPort & 0xff;
  out[26] = dstPort >> 8;
  out[27] = dstPort & 0xff;
  return out;
}
