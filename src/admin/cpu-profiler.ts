// CPU profiles of the running process for GET /debug/pprof/profile, taken in-process with
// JavaScriptCore's sampling profiler (bun:jsc `profile`): it samples the JavaScript thread, so the
// profile covers everything the gateway runs meanwhile, not only the request that asked for it.
// One profile at a time in the process: the sampler is process-wide, and starting a second one
// empties the first (checked: the first came back with 0 samples).

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

interface RunningProfile {
  readonly owner: CpuProfiler;
  readonly sinceMs: number;
  readonly seconds: number;
  readonly stop: () => void;
}

/**
 * The one profile running in this process, whichever gateway's admin port asked for it. Kept on
 * globalThis so that after a dev code reload (bun --hot) the new module sees the old one's profile.
 */
const SLOT_KEY: unique symbol = Symbol.for("game-gateway.cpu-profile");
const slot: { running: RunningProfile | null } = ((globalThis as { [SLOT_KEY]?: { running: RunningProfile | null } })[SLOT_KEY] ??= { running: null });

export class CpuProfiler {

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
    const other = slot.running;
    if (other !== null) return { kind: "busy", sinceMs: other.sinceMs, seconds: other.seconds };
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
    slot.running = { owner: this, sinceMs: startedAtMs, seconds, stop };
    try {
      const result = await profile(() => elapsed, SAMPLE_INTERVAL_US);
      const trace = result.stackTraces;
      const pprof = encodePprofCpuProfile(trace, { startedAtMs, durationMs: performance.now() - t0, comments: this.comments, program: "game-gateway" });
      return { kind: "profile", pprofGzip: gzipSync(pprof), samples: trace.traces.length, startedAtMs };
    } finally {
      abort?.removeEventListener("abort", stop);
      slot.running = null;
    }
  }

  /** Ends a running profile early (the admin port is closing); its caller still gets what was sampled. */
  stopAll(): void {
    if (slot.running?.owner === this) slot.running.stop();
  }
}
