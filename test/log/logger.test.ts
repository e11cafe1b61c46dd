// Application log lines in the reference gateway's OpenTelemetry keys.
import { describe, expect, test } from "bun:test";
import pkg from "../../package.json" with { type: "json" };
import { Logger } from "../../src/log/logger.ts";
import { serviceResource } from "../../src/log/resource.ts";

function capture(level: "debug" | "info" | "warn" | "error" = "debug", base = {}) {
  const raw: string[] = [];
  const log = new Logger(level, { write: (l) => raw.push(l) }, base);
  return { log, raw, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("Logger", () => {
  test("one JSON line per event: timestamp, severity, body, caller, the service resource, base and event fields", () => {
    const { log, raw, lines } = capture("debug", { gateway: "gw-1" });
    log.debug("d");
    log.info("i", { session: 2n ** 63n - 1n, n: 1 }); // this line's number is the caller below
    const infoLine = Number(new Error().stack!.split("\n")[1]!.match(/:(\d+):\d+\)?$/)![1]) - 1;
    log.warn("w");
    log.error("e", { error: "boom" });
    expect(raw.every((l) => l.endsWith("}\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
    const [d, i, w, e] = lines();
    expect([d, i, w, e].map((l) => [l!.severity_text, l!.severity_number, l!.body])).toEqual([
      ["DEBUG", 5, "d"],
      ["INFO", 9, "i"],
      ["WARN", 13, "w"],
      ["ERROR", 17, "e"],
    ]);
    expect(i).toMatchObject({
      caller: `test/log/logger.test.ts:${infoLine}`,
      "service.name": "game-gateway",
      "service.version": pkg.version,
      gateway: "gw-1",
      session: "9223372036854775807", // 64-bit IDs as decimal strings: exact in any reader
      n: 1,
    });
    expect(Object.keys(i!).slice(0, 5)).toEqual(["timestamp", "severity_text", "severity_number", "body", "caller"]);
    // A stack trace on ERROR only, starting at the call site.
    expect(i).not.toHaveProperty("stacktrace");
    expect(String(e!.stacktrace)).toContain("test/log/logger.test.ts");
    expect(e).toMatchObject({ error: "boom" });
  });

  test("the level filters before anything is built", () => {
    const { log, lines } = capture("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    expect(log.enabled("info")).toBe(false);
    expect(lines().map((l) => l.body)).toEqual(["w"]);
  });

  test("service.namespace is env POD_NAMESPACE, empty outside Kubernetes", () => {
    expect(serviceResource({ POD_NAMESPACE: "games" })["service.namespace"]).toBe("games");
    expect(serviceResource({})["service.namespace"]).toBe("");
  });

  // Python's json keeps integers exact, as Go's and Vector's readers do: a JSON parser that is not
  // ours reads the timestamp as a 64-bit integer count of nanoseconds, not a float or a string.
  test.skipIf(Bun.which("python3") === null)("timestamp is unix nanoseconds as a JSON integer, exact past 2^53", () => {
    const { log, raw } = capture("info");
    const before = BigInt(Date.now()) * 1_000_000n;
    log.info("now");
    const after = BigInt(Date.now()) * 1_000_000n;
    const py = Bun.spawnSync(["python3", "-c", "import json,sys; t=json.loads(sys.stdin.read())['timestamp']; print(type(t).__name__, t)"], {
      stdin: Buffer.from(raw[0]!),
    });
    const [type, value] = py.stdout.toString().trim().split(" ");
    expect(type).toBe("int");
    expect(BigInt(value!)).toBeGreaterThanOrEqual(before);
    expect(BigInt(value!)).toBeLessThanOrEqual(after);
    expect(BigInt(value!) > 2n ** 53n).toBe(true);
  });
});
