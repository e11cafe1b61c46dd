import { describe, expect, test } from "bun:test";
import { CidrBlock, CidrList, parseIp } from "../../src/net/cidr.ts";
import { parseProxyHeader } from "../../src/net/proxy-protocol.ts";
import { proxyV1, proxyV2 } from "../support/proxy-header.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("PROXY protocol header", () => {
  test("v1 TCP4 and TCP6, with the client's bytes after it", () => {
    const h = proxyV1("203.0.113.7", "10.0.0.1", 51000, 8080);
    const withData = new Uint8Array([...h, 1, 2, 3]);
    expect(parseProxyHeader(withData)).toEqual({ kind: "header", length: h.length, address: "203.0.113.7" });
    expect(parseProxyHeader(enc("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"))).toMatchObject({ address: "2001:db8::1" });
    expect(parseProxyHeader(enc("PROXY UNKNOWN\r\n"))).toEqual({ kind: "header", length: 15, address: null });
  });

  test("v2 PROXY over IPv4, and LOCAL", () => {
    const h = proxyV2("198.51.100.9", "10.0.0.1", 40000, 8080);
    expect(parseProxyHeader(h)).toEqual({ kind: "header", length: 28, address: "198.51.100.9" });
    const local = Uint8Array.from(h.subarray(0, 16));
    local[12] = 0x20;
    local[15] = 0;
    expect(parseProxyHeader(local)).toEqual({ kind: "header", length: 16, address: null });
  });

  test("incomplete at every cut, absent for game frames, invalid for nonsense", () => {
    for (const h of [proxyV1("1.2.3.4", "5.6.7.8", 1, 2), proxyV2("1.2.3.4", "5.6.7.8", 1, 2)]) {
      for (let cut = 1; cut < h.length; cut++) expect(parseProxyHeader(h.subarray(0, cut)).kind).toBe("incomplete");
    }
    expect(parseProxyHeader(Uint8Array.of(5, 0, 1, 0, 0, 10, 0, 0)).kind).toBe("absent");
    expect(parseProxyHeader(enc("PROXY TCP4 1.2.3.4\r\n")).kind).toBe("invalid");
    expect(parseProxyHeader(enc("PROXY TCP4 not-an-ip 1.2.3.4 1 2\r\n")).kind).toBe("invalid");
    // Leading zeros are octal to some parsers and decimal to others: neither reading is trusted.
    expect(parseProxyHeader(enc("PROXY TCP4 010.001.001.001 1.2.3.4 1 2\r\n")).kind).toBe("invalid");
    expect(parseProxyHeader(enc("PROXY TCP4 10.1.1.0 1.2.3.4 1 2\r\n")).kind).toBe("header");
    expect(parseProxyHeader(enc(`PROXY ${"x".repeat(120)}`)).kind).toBe("invalid");
    const v2 = proxyV2("1.2.3.4", "5.6.7.8", 1, 2);
    v2[12] = 0x31; // version 3
    expect(parseProxyHeader(v2).kind).toBe("invalid");
  });
});

describe("CIDR", () => {
  test("IPv4, IPv6 and IPv4-mapped IPv6", () => {
    const list = new CidrList(["10.0.0.0/8", "192.168.1.10", "2001:db8::/32", "::1/128"].map((c) => CidrBlock.parse(c)!));
    expect(list.contains("10.200.3.4")).toBe(true);
    expect(list.contains("11.0.0.1")).toBe(false);
    expect(list.contains("192.168.1.10")).toBe(true);
    expect(list.contains("192.168.1.11")).toBe(false);
    expect(list.contains("::ffff:10.1.1.1")).toBe(true);
    expect(list.contains("2001:db8:ffff::1")).toBe(true);
    expect(list.contains("2001:db9::1")).toBe(false);
    expect(list.contains("::1")).toBe(true);
    expect(list.contains("garbage")).toBe(false);
  });

  test("rejects malformed blocks", () => {
    for (const bad of ["10.0.0.0/33", "10.0.0/8", "256.0.0.1", "::1/129", "1::2::3", "10.0.0.0/x", ""]) {
      expect(CidrBlock.parse(bad)).toBeUndefined();
    }
    expect(parseIp("::")).toEqual(new Uint8Array(16));
  });
});
