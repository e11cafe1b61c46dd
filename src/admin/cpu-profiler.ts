// CPU profiles of the running process for GET /debug/pprof/profile, taken in-process with
// JavaScriptCore's sampling profiler (bun:jsc `profile`): it samples the JavaScript thread, so the
// profile covers everything the gateway runs meanwhile, not only the request that asked for it.
// One profile at a time: the sampler is process-wide, and two would each hold the other's samples.

import { profile } from "bun:jsc";
import { gzipSync } from "node:zlib";
import { encodePprofCpuProfile } from "./pprof-encode.ts";

/** 100 Hz, the rate Go's CPU profiler samples at: 30,000 stacks held at most for a 300 s profile. */
const SAMPLE_INTERVAL_US = 10_000;

export const PROFILE_SECONDS = { default: 30, min: 1, max: 300 } as const;

/**
 * Bun's whole-run profiler (`--cpu-prof`, `--cpu-prof-md`, also through BUN_OPTIONS) uses the same
 * sampler: a profile taken meanwhile stops it, and the file written at exit is left nearly empty.
 */
export const UNDER_WHOLE_RUN_PROFILER = process.execArgv.some((a) => a === "--cpu-prof" || a === "--cpu-prof-md");

export type ProfileOutcome =
  | { readonly kind: "profile"; readonly pprofGzip: Uint8Array; readonly samples: number; readonly startedAtMs: number }
  | { readonly kind: "busy"; readonly sinceMs: number; readonly seconds: number }
  | { readonly kind: "whole-run-profiler" };

export class CpuProfiler {
  private running: { readonly sinceMs: number; readonly seconds: number; readonly stop: () => void } | null = null;

  constructor(
    private readonly comments: readonly string[],
    private readonly underWholeRunProfiler = UNDER_WHOLE_RUN_PROFILER,
  ) {}

  /**
   * Samples for `seconds`, or until `abort` fires (the client went away) or stopAll() is called,
   * then returns the gzipped pprof profile. Answers "busy" at once while another profile runs, and
   * "whole-run-profiler" when the process runs under --cpu-prof, whose profile this would destroy.
   */
  async capture(seconds: number, abort?: AbortSignal): Promise<ProfileOutcome> {
    if (this.underWholeRunProfiler) return { kind: "whole-run-profiler" };
    if (this.running !== null) return { kind: "busy", sinceMs: this.running.sinceMs, seconds: this.running.seconds };
    const startedAtMs = Date.now();
    const t0 = performance.now();
    let stop = (): void => {};
    const elapsed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      stop = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    abort?.addEventListener("abort", stop, { once: true });
    this.running = { sinceMs: startedAtMs, seconds, stop };
    try {
      const result = await profile(() => elapsed, SAMPLE_INTERVAL_US);
      const trace = result.stackTraces;
      const pprof = encodePprofCpuProfile(trace, { startedAtMs, durationMs: performance.now() - t0, comments: this.comments, program: "game-gateway" });
      return { kind: "profile", pprofGzip: gzipSync(pprof), samples: trace.traces.length, startedAtMs };
    } finally {
      abort?.removeEventListener("abort", stop);
      this.running = null;
    }
  }

  /** Ends a running profile early (the admin port is closing); its caller still gets what was sampled. */
  stopAll(): void {
    this.running?.stop();
  }
}
