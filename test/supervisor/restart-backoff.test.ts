import { expect, test } from "bun:test";
import { RestartBackoff } from "../../src/supervisor/restart-backoff.ts";
import { parseArgs } from "../../src/cli/args.ts";

const settings = { baseMs: 100, maxMs: 1_000, stableAfterMs: 30_000 };

test("a worker dying at once again and again waits longer each time, up to the cap", () => {
  const b = new RestartBackoff(settings);
  expect([1, 2, 3, 4, 5, 6, 7].map(() => b.delayAfterDeath(50))).toEqual([0, 100, 200, 400, 800, 1_000, 1_000]);
});

test("a worker that stayed up a while is restarted at once, and its back-off starts over", () => {
  const b = new RestartBackoff(settings);
  for (let i = 0; i < 5; i++) b.delayAfterDeath(10);
  expect(b.delayAfterDeath(30_000)).toBe(0);
  expect(b.delayAfterDeath(10)).toBe(100);
});

test("--workers N is read, and a bad N is refused naming what is expected", () => {
  expect(parseArgs(["--config", "gw.yaml", "--workers", "4"])).toEqual({ kind: "run", configPath: "gw.yaml", demo: false, workers: 4 });
  expect(parseArgs(["-workers=0"])).toMatchObject({ workers: 0 });
  expect(parseArgs([])).toMatchObject({ workers: null });
  expect(() => parseArgs(["--workers", "65"])).toThrow('--workers: got "65", expected 0 (one per CPU) or 1..64');
  expect(() => parseArgs(["--workers", "two"])).toThrow('--workers: got "two"');
});
