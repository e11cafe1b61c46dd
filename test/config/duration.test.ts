import { describe, expect, test } from "bun:test";
import { formatByteSize, formatDuration, parseByteSize, parseDuration } from "../../src/config/duration.ts";
import { parseHostPort } from "../../src/config/load.ts";

describe("parseDuration", () => {
  test.each([
    ["0", 0],
    ["0s", 0],
    ["100ms", 100],
    ["5s", 5000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    ["1.1s", 1100],
    [".5s", 500],
    ["1.s", 1000],
    ["250us", 0.25],
    ["250µs", 0.25],
    ["250μs", 0.25],
    ["1500ns", 0.0015],
    ["1m30.5s", 90_500],
    ["-2s", -2000],
    ["+2s", 2000],
  ])("%p is %p ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "5", "s", ".s", "5 s", " 5s", "5sec", "5S", "1h30", "5d", "1..5s", "-", "abc"])("%p is rejected", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  // Go's time.ParseDuration says "invalid duration" past int64 nanoseconds; the config then says "too large".
  test.each([["3000000h", Infinity], ["99999999h", Infinity], ["-3000000h", -Infinity]])("%p overflows to %p", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test("formatDuration writes Go's style", () => {
    expect([0, 0.25, 0.0015, 100, 1500, 90_500, 5_400_000].map(formatDuration)).toEqual(["0s", "250µs", "1.5µs", "100ms", "1.5s", "1m30.5s", "1h30m0s"]);
  });
});

describe("parseByteSize", () => {
  test.each([
    [0, 0],
    [4096, 4096],
    ["1024", 1024],
    ["512B", 512],
    ["64KiB", 65536],
    ["4MiB", 4 * 1024 * 1024],
    ["1GiB", 1024 ** 3],
    ["1MB", 1_000_000],
    ["1.1KB", 1100],
    ["1.5KiB", 1536],
    ["64 KiB", 65536],
    ["64kib", 65536],
  ] as const)("%p is %p bytes", (v, n) => {
    expect(parseByteSize(v)).toBe(n);
  });

  test.each([-1, 1.5, Number.NaN, "", "-1", "1.5B", "64KB/s", "ten", "1e3", "KiB", "64 KiB ", "1TB"])("%p is rejected", (v) => {
    expect(parseByteSize(v)).toBeUndefined();
  });

  test("formatByteSize picks the largest exact binary unit", () => {
    expect([1048576, 65536, 589826, 1536].map(formatByteSize)).toEqual(["1MiB", "64KiB", "589826B", "1536B"]);
  });
});

describe("parseHostPort", () => {
  test.each([
    [":8080", "0.0.0.0", 8080],
    ["0.0.0.0:8080", "0.0.0.0", 8080],
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["localhost:6379", "localhost", 6379],
    ["account-w3.svc_1:19711", "account-w3.svc_1", 19711],
    ["[::1]:9000", "::1", 9000],
    ["[::]:80", "::", 80],
    ["[fe80::1%eth0]:80", "fe80::1%eth0", 80],
    ["host:65535", "host", 65535],
  ])("%p", (addr, host, port) => {
    expect(parseHostPort(addr)).toEqual({ host, port });
  });

  test.each(["", "8080", "host", "host:", "host:65536", "host:-1", "host:80x", "::1:80", "[::1]", "[::1]80", "[host]:80", "a b:80", "http://h:80"])(
    "%p is rejected",
    (addr) => {
      expect(parseHostPort(addr)).toBeUndefined();
    },
  );
});
