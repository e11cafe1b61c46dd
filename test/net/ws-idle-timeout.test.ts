// server.ws_idle_timeout as given to Bun (uWebSockets), whose timer fires on a 4 s tick anywhere
// in the last 4 s of the whole ticks it was given: what is passed must put that window at or
// after the setting. The end-to-end check (a silent client still open just before the setting)
// is in test/e2e/websocket-bounds.test.ts.
import { describe, expect, test } from "bun:test";
import { bunIdleTimeoutSeconds } from "../../src/net/ws-idle-timeout.ts";

/** The seconds of silence after which Bun may close, given idleTimeout t: (4*ceil(t/4) - 4, 4*ceil(t/4)]. */
const bunCloseWindow = (t: number): [number, number] => [4 * Math.ceil(t / 4) - 4, 4 * Math.ceil(t / 4)];

describe("bunIdleTimeoutSeconds", () => {
  test("0 stays off", () => {
    expect(bunIdleTimeoutSeconds(0)).toBe(0);
  });

  test("Bun's earliest close is never before the setting, and its latest at most 4 s after the setting rounded up to 4 s", () => {
    for (const ms of [1, 600, 1000, 3999, 4000, 4001, 6000, 7000, 8000, 20_000, 120_000, 955_000, 956_000]) {
      const t = bunIdleTimeoutSeconds(ms);
      expect(Number.isInteger(t), String(ms)).toBe(true);
      const [earliest, latest] = bunCloseWindow(t);
      expect(earliest * 1000, String(ms)).toBeGreaterThanOrEqual(ms);
      expect(latest, String(ms)).toBe(4 * Math.ceil(ms / 4000) + 4);
    }
  });

  test("the examples the docs give: 6 s closes after 8-12 s, 120 s after 120-124 s", () => {
    expect(bunCloseWindow(bunIdleTimeoutSeconds(6000))).toEqual([8, 12]);
    expect(bunCloseWindow(bunIdleTimeoutSeconds(120_000))).toEqual([120, 124]);
  });

  test("capped at Bun's largest, 960 s", () => {
    expect(bunIdleTimeoutSeconds(960_000)).toBe(960);
  });
});
