import { describe, expect, test } from "bun:test";
import { AdmissionControl } from "../../src/net/admission.ts";
import { ManualClock } from "../support/manual-clock.ts";

describe("AdmissionControl", () => {
  test("caps concurrent connections per IP and frees a slot on release", () => {
    const a = new AdmissionControl({ maxPerIp: 2, ratePerSec: 100, maxTrackedIps: 10 });
    expect(a.admit("10.0.0.1", 0)).toBeNull();
    expect(a.admit("10.0.0.1", 0)).toBeNull();
    expect(a.admit("10.0.0.1", 0)).toBe("per_ip_limit");
    expect(a.admit("10.0.0.2", 0)).toBeNull();
    a.release("10.0.0.1");
    expect(a.admit("10.0.0.1", 0)).toBeNull();
  });

  test("new-connection rate is a token bucket per IP", () => {
    const a = new AdmissionControl({ maxPerIp: 1000, ratePerSec: 5, maxTrackedIps: 10 });
    const results = Array.from({ length: 7 }, () => a.admit("1.2.3.4", 1000));
    expect(results).toEqual([null, null, null, null, null, "rate_limited", "rate_limited"]);
    expect(a.admit("1.2.3.4", 1199)).toBe("rate_limited"); // 0.995 tokens after 199 ms
    expect(a.admit("1.2.3.4", 1200)).toBeNull(); // one token back after 200 ms
    expect(a.admit("5.6.7.8", 1200)).toBeNull(); // other IPs are unaffected
  });

  test("reads time from the clock it is given: a token comes back when the clock says 200 ms passed", () => {
    const clock = new ManualClock();
    const a = new AdmissionControl({ maxPerIp: 1000, ratePerSec: 5, maxTrackedIps: 10 }, clock.now);
    const results = Array.from({ length: 6 }, () => a.admit("1.2.3.4"));
    expect(results).toEqual([null, null, null, null, null, "rate_limited"]);
    clock.tick(199);
    expect(a.admit("1.2.3.4")).toBe("rate_limited");
    clock.tick(1);
    expect(a.admit("1.2.3.4")).toBeNull();
  });

  test("1,000,000 distinct addresses never grow its state past the bound", () => {
    const bound = 50_000;
    const a = new AdmissionControl({ maxPerIp: 10, ratePerSec: 5, maxTrackedIps: bound });
    let peak = 0;
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const ip = `${(i >>> 24) & 255}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
      if (a.admit(ip, i) !== null) refused++;
      a.release(ip);
      if (a.trackedIps > peak) peak = a.trackedIps;
    }
    expect(refused).toBe(0);
    expect(peak).toBeLessThanOrEqual(bound);
    expect(peak).toBeGreaterThanOrEqual(bound / 2);
  });

  test("recently seen addresses survive; the least recently seen are forgotten first", () => {
    const a = new AdmissionControl({ maxPerIp: 10, ratePerSec: 1, maxTrackedIps: 4 });
    expect(a.admit("a", 0)).toBeNull(); // a: bucket empty
    expect(a.admit("b", 0)).toBeNull();
    expect(a.admit("c", 0)).toBeNull(); // the young generation (2) was full: a, b are now old
    expect(a.admit("a", 0)).toBe("rate_limited"); // a touched again: back in the young generation
    expect(a.admit("d", 0)).toBeNull(); // young full again: the old generation (only b by now) is dropped
    expect(a.trackedIps).toBeLessThanOrEqual(4);
    expect(a.admit("a", 0)).toBe("rate_limited"); // a was seen recently: still remembered
    expect(a.admit("b", 0)).toBeNull(); // b was least recently seen: forgotten, a full bucket again
  });
});
