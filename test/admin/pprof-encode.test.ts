// The pprof encoder on stacks whose shape is known: what a viewer reads back from each kind of frame
// JavaScriptCore reports (named, anonymous, native, unknown position), and identical stacks counted once.
import { describe, expect, test } from "bun:test";
import type { SamplingProfileStackFrame, SamplingProfileStackTraces } from "bun:jsc";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { encodePprofCpuProfile } from "../../src/admin/pprof-encode.ts";
import { decodePprof } from "../support/pprof.ts";

const UNKNOWN = 4294967295;
const js = (name: string, sourceURL: string, line: number): SamplingProfileStackFrame => ({
  sourceID: 2, name, location: "#x:DFG:bc#1", sourceURL, line, column: 7, category: "DFG", flags: 0,
});
const native = (name: string): SamplingProfileStackFrame => ({
  sourceID: UNKNOWN, name, location: "#<nil>:None:<nil>", line: UNKNOWN, column: UNKNOWN, category: "Unknown Executable", flags: 0,
});

const decode = (trace: SamplingProfileStackTraces) =>
  decodePprof(gzipSync(encodePprofCpuProfile(trace, { startedAtMs: 1_790_000_000_000, durationMs: 2000, comments: ["a comment"], program: "game-gateway" })));

describe("encodePprofCpuProfile", () => {
  test("stacks innermost first, identical ones counted together, each sample worth one interval of CPU", () => {
    const data = js("data", "src/net/tcp-listener.ts", 532);
    const write = native("write");
    const anon = js("", "src/session/relay.ts", 40);
    const trace: SamplingProfileStackTraces = {
      interval: 0.01,
      sources: [],
      traces: [
        { timestamp: 1, frames: [write, data] },
        { timestamp: 2, frames: [anon, data] },
        { timestamp: 3, frames: [write, data] },
        { timestamp: 4, frames: [] }, // nothing on the stack: not a CPU sample
        { timestamp: 5, frames: [write, data] },
      ],
    };
    const p = decode(trace);
    expect(p.sampleTypes).toEqual(["samples/count", "cpu/nanoseconds"]);
    expect(p.periodType).toBe("cpu/nanoseconds");
    expect(p.period).toBe(10_000_000);
    expect(p.durationNanos).toBe(2_000_000_000);
    expect(p.comments).toEqual(["a comment"]);
    expect(p.samples).toEqual([
      { stack: ["write (native):0", "data src/net/tcp-listener.ts:532"], values: [3, 30_000_000] },
      { stack: ["(anonymous) src/session/relay.ts:40", "data src/net/tcp-listener.ts:532"], values: [1, 10_000_000] },
    ]);
  });

  test("no samples is still a profile a viewer opens", () => {
    const p = decode({ interval: 0.01, sources: [], traces: [] });
    expect(p.samples).toEqual([]);
    expect(p.sampleTypes).toEqual(["samples/count", "cpu/nanoseconds"]);
  });

  test("the same function sampled at two lines is one function at two locations", () => {
    const p = decode({
      interval: 0.001,
      sources: [],
      traces: [
        { timestamp: 1, frames: [js("feed", "src/net/frame-reader.ts", 10)] },
        { timestamp: 2, frames: [js("feed", "src/net/frame-reader.ts", 12)] },
      ],
    });
    expect(p.samples.map((s) => s.stack)).toEqual([["feed src/net/frame-reader.ts:10"], ["feed src/net/frame-reader.ts:12"]]);
    expect(p.period).toBe(1_000_000);
  });

  // Go is optional here (CI does not install it); where it exists, let the real viewer judge too.
  const go = Bun.which("go");
  test.skipIf(go === null)("go tool pprof reads it: header, stacks, names, files and lines (when Go is installed)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-pprof-"));
    const file = join(dir, "cpu.pb.gz");
    const data = js("data", "src/net/tcp-listener.ts", 532);
    const trace: SamplingProfileStackTraces = {
      interval: 0.01,
      sources: [],
      traces: [
        { timestamp: 1, frames: [native("write"), data] },
        { timestamp: 2, frames: [native("write"), data] },
        { timestamp: 3, frames: [js("", "src/session/relay.ts", 40), data] },
      ],
    };
    writeFileSync(file, gzipSync(encodePprofCpuProfile(trace, { startedAtMs: 1_790_000_000_000, durationMs: 2000, comments: ["a comment"], program: "game-gateway" })));
    const r = Bun.spawnSync([go!, "tool", "pprof", "-traces", "-lines", file], {
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "", HOME: dir, GOCACHE: join(dir, "cache") },
    });
    const out = r.stdout.toString();
    expect({ exitCode: r.exitCode, stderr: r.exitCode === 0 ? "" : r.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });
    expect(out).toContain("File: game-gateway\na comment\nType: cpu\n");
    expect(out).toContain("Duration: 2s, Total samples = 30ms");
    expect(out).toMatch(/20ms\s+write \(native\)\n\s+data src\/net\/tcp-listener\.ts:532\n/);
    expect(out).toMatch(/10ms\s+\(anonymous\) src\/session\/relay\.ts:40\n\s+data src\/net\/tcp-listener\.ts:532\n/);
  });
});
