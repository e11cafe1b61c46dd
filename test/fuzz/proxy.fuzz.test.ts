// Seeded fuzzing of the PROXY protocol parser: valid v1 and v2 headers with random addresses,
// v1 lines with address-like tokens of known validity, oversize v2 headers, their mutations, and
// random bytes. Invariants: the parser never throws; a header it accepts is no longer than the
// bytes and MAX_PROXY_HEADER and carries either no address or a real one; a header is decided the
// same at every cut (incomplete before its end, the same header after); valid headers give back
// exactly their source address; invalid addresses and oversize headers are never accepted.
import { expect, test } from "bun:test";
import { parseIp } from "../../src/net/cidr.ts";
import { MAX_PROXY_HEADER, parseProxyHeader, type ProxyParse } from "../../src/net/proxy-protocol.ts";
import { Prng } from "./prng.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const CASES = Number(process.env.FUZZ_CASES ?? 120_000);
const rng = new Prng(SEED);
const enc = (s: string) => new TextEncoder().encode(s);

interface Case {
  readonly bytes: Uint8Array;
  /** What a correct parser must say about the whole bytes; undefined when anything sound goes. */
  readonly expect?: ProxyParse["kind"];
  readonly address?: string | null;
}

function v4(): { text: string; valid: boolean } {
  const parts = Array.from({ length: 4 }, () => (rng.next() < 0.9 ? rng.int(256) : rng.int(1000)));
  return { text: parts.join("."), valid: parts.every((p) => p <= 255) };
}

function v6(): { text: string; valid: boolean } {
  const groups = Array.from({ length: 8 }, () => rng.int(65536).toString(16));
  const r = rng.next();
  if (r < 0.6) return { text: groups.join(":"), valid: true };
  if (r < 0.75) return { text: `${groups.slice(0, 3).join(":")}::${groups.slice(6).join(":")}`, valid: true };
  if (r < 0.85) return { text: [...groups, "1"].join(":"), valid: false };
  if (r < 0.95) return { text: groups.join(":").replace(/.$/, "g"), valid: false };
  return { text: rng.next() < 0.5 ? v4().text : "not-an-address", valid: false };
}

function v1Case(): Case {
  const family = rng.next() < 0.5 ? "TCP4" : "TCP6";
  const src = family === "TCP4" ? v4() : v6();
  const dst = family === "TCP4" ? v4() : v6();
  const sp = rng.next() < 0.95 ? rng.int(65536) : 65536 + rng.int(100000);
  const dp = rng.int(65536);
  const line = `PROXY ${family} ${src.text} ${dst.text} ${sp} ${dp}\r\n`;
  const valid = src.valid && dst.valid && sp <= 65535;
  if (line.length > 107) return { bytes: enc(line), expect: "invalid" };
  return { bytes: enc(line), expect: valid ? "header" : "invalid", address: valid ? src.text : undefined };
}

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2Case(): Case {
  const ipv6 = rng.next() < 0.4;
  const addrLen = ipv6 ? 36 : 12;
  // Mostly small TLV tails; sometimes past the cap (which must be refused however it arrives).
  const tlvs = rng.next() < 0.8 ? rng.int(64) : rng.int(1200);
  const length = 16 + addrLen + tlvs;
  const out = new Uint8Array(length);
  out.set(SIGNATURE);
  out[12] = 0x21;
  out[13] = ipv6 ? 0x21 : 0x11;
  out[14] = (addrLen + tlvs) >> 8;
  out[15] = (addrLen + tlvs) & 0xff;
  out.set(rng.bytes(addrLen + tlvs), 16);
  let address: string;
  if (ipv6) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(((out[16 + i * 2]! << 8) | out[17 + i * 2]!).toString(16));
    address = groups.join(":");
  } else {
    address = `${out[16]}.${out[17]}.${out[18]}.${out[19]}`;
  }
  if (length > MAX_PROXY_HEADER) return { bytes: out, expect: "invalid" };
  return { bytes: out, expect: "header", address };
}

function nextCase(): Case {
  const r = rng.next();
  if (r < 0.3) return v1Case();
  if (r < 0.55) return v2Case();
  if (r < 0.9) {
    const base = rng.next() < 0.5 ? v1Case() : v2Case();
    return { bytes: rng.mutate(base.bytes) };
  }
  return { bytes: rng.bytes(rng.size(200)) };
}

function checkSound(bytes: Uint8Array, p: ProxyParse): void {
  if (p.kind !== "header") return;
  expect(p.length).toBeGreaterThan(0);
  expect(p.length).toBeLessThanOrEqual(Math.min(bytes.length, MAX_PROXY_HEADER));
  if (p.address !== null) expect(parseIp(p.address)).toBeDefined();
}

test(`PROXY parser: ${CASES} seeded cases (seed ${SEED})`, () => {
  const kinds: Record<string, number> = { incomplete: 0, absent: 0, header: 0, invalid: 0 };
  for (let i = 0; i < CASES; i++) {
    const c = nextCase();
    // A client's game bytes may follow the header; they must not change the decision.
    const tail = rng.next() < 0.5 ? rng.bytes(1 + rng.int(16)) : new Uint8Array(0);
    const bytes = new Uint8Array(c.bytes.length + tail.length);
    bytes.set(c.bytes);
    bytes.set(tail, c.bytes.length);
    const whole = parseProxyHeader(bytes);
    kinds[whole.kind]!++;
    checkSound(bytes, whole);
    if (c.expect !== undefined) {
      if (whole.kind !== c.expect) throw new Error(`case ${i}: expected ${c.expect}, got ${JSON.stringify(whole)} for ${JSON.stringify(new TextDecoder().decode(c.bytes.subarray(0, 120)))}`);
      if (c.address !== undefined && whole.kind === "header") expect(whole.address).toBe(c.address);
    }
    // The same decision at a random cut: before a header's end it is incomplete (or already refused).
    const cut = rng.int(bytes.length + 1);
    const part = parseProxyHeader(bytes.subarray(0, cut));
    checkSound(bytes.subarray(0, cut), part);
    if (whole.kind === "header") {
      if (cut >= whole.length) expect(part).toEqual(whole);
      else expect(part.kind).toBe("incomplete");
    }
    if (part.kind === "invalid" || part.kind === "absent") expect(whole.kind).toBe(part.kind);
  }
  // Every outcome was exercised, so the invariants above were not checked vacuously.
  for (const k of Object.keys(kinds)) expect(kinds[k]).toBeGreaterThan(CASES / 100);
}, 60_000);

test("addresses are checked strictly, and the v2 length cap holds however the bytes arrive", () => {
  for (const bad of [
    "PROXY TCP4 999.999.999.999 10.0.0.1 1 2\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.300 1 2\r\n",
    "PROXY TCP6 anything-at-all 2001:db8::2 1 2\r\n",
    "PROXY TCP6 1.2.3.4 2001:db8::2 1 2\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.1 65536 2\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.1  2\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.1 -1 2\r\n",
  ]) {
    expect(parseProxyHeader(enc(bad)).kind).toBe("invalid");
  }
  const long = new Uint8Array(16 + 1100);
  long.set(SIGNATURE);
  long[12] = 0x21;
  long[13] = 0x11;
  long[14] = 1100 >> 8;
  long[15] = 1100 & 0xff;
  expect(parseProxyHeader(long).kind).toBe("invalid");
  expect(parseProxyHeader(long.subarray(0, 16)).kind).toBe("invalid");
});
