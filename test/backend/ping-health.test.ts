// When a backend connection Pings, and when an unanswered Ping closes it: explicit clock values.
import { describe, expect, test } from "bun:test";
import { PingHealth } from "../../src/backend/ping-health.ts";

const INTERVAL = 1_000;
const TIMEOUT = 3_000;

describe("PingHealth", () => {
  test("a connection silent for ping_interval is Pinged; one whose Ping goes unanswered for ping_timeout times out", () => {
    const h = new PingHealth(10_000);
    expect(h.check(10_999, INTERVAL, TIMEOUT)).toBe("nothing");
    expect(h.check(11_000, INTERVAL, TIMEOUT)).toBe("ping");
    h.onPingSent(11_000, 0);
    expect(h.check(13_999, INTERVAL, TIMEOUT)).toBe("nothing");
    expect(h.check(14_000, INTERVAL, TIMEOUT)).toBe("timeout");
  });

  test("data arriving puts the next Ping off", () => {
    const h = new PingHealth(10_000);
    h.onReceived(10_800);
    expect(h.check(11_500, INTERVAL, TIMEOUT)).toBe("nothing");
    expect(h.check(11_800, INTERVAL, TIMEOUT)).toBe("ping");
  });

  test("a Pong answers the Ping with its round trip; an unsolicited Pong times nothing", () => {
    const h = new PingHealth(0);
    expect(h.onPong(50)).toBe(-1);
    h.onPingSent(5_000, 100);
    expect(h.onPong(125)).toBeCloseTo(0.025, 9);
    expect(h.check(5_000 + TIMEOUT, INTERVAL, TIMEOUT)).toBe("ping"); // answered: no timeout, just silent
    expect(h.onPong(200)).toBe(-1);
  });

  test("any valid frame answers the connect Ping: a backend that never answers Ping is not closed for it", () => {
    const h = new PingHealth(0);
    h.onPingSent(1, 0);
    h.onValidFrame();
    h.onReceived(2);
    expect(h.check(2 + TIMEOUT, INTERVAL, TIMEOUT)).toBe("ping");
  });
});
