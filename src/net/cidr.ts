// IP addresses and CIDR blocks (IPv4, IPv6, and IPv4-mapped IPv6 as IPv4), for the PROXY
// protocol's trusted_proxies list.

/** 16 bytes for IPv6, 4 for IPv4; undefined when text is not an address. */
export function parseIp(text: string): Uint8Array | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) return parseIp(mapped[1]!);
  if (text.includes(".") && !text.includes(":")) {
    const parts = text.split(".");
    if (parts.length !== 4) return undefined;
    const out = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      // No leading zeros: "010" is octal to inet_aton and decimal to others (Go rejects it too).
      if (!/^(0|[1-9]\d{0,2})$/.test(parts[i]!)) return undefined;
      const n = Number(parts[i]);
      if (n > 255) return undefined;
      out[i] = n;
    }
    return out;
  }
  if (!text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >>> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

export class CidrBlock {
  private constructor(
    private readonly network: Uint8Array,
    private readonly prefix: number,
  ) {}

  /** "10.0.0.0/8", "::1/128", or a bare address (a single-host block); undefined if invalid. */
  static parse(text: string): CidrBlock | undefined {
    const [addr, bits, extra] = text.trim().split("/");
    if (extra !== undefined || addr === undefined) return undefined;
    const ip = parseIp(addr);
    if (ip === undefined) return undefined;
    const max = ip.length * 8;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
    if (!(prefix >= 0 && prefix <= max)) return undefined;
    return new CidrBlock(ip, prefix);
  }

  contains(ip: Uint8Array): boolean {
    if (ip.length !== this.network.length) return false;
    let bits = this.prefix;
    for (let i = 0; bits > 0; i++, bits -= 8) {
      const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if ((ip[i]! & mask) !== (this.network[i]! & mask)) return false;
    }
    return true;
  }
}

export class CidrList {
  constructor(private readonly blocks: readonly CidrBlock[]) {}

  get empty(): boolean {
    return this.blocks.length === 0;
  }

  contains(address: string): boolean {
    const ip = parseIp(address);
    return ip !== undefined && this.blocks.some((b) => b.contains(ip));
  }
}
