// The admin port's /debug/pprof paths, where the performance guide (../shared/reference/performance-guide.md) sends operators:
//   go tool pprof 'http://host:9090/debug/pprof/profile?seconds=30&token=...'
// (behind the same admin.debug_token gate as /debug/stats and /debug/heap).

import { type CpuProfiler, PROFILE_SECONDS } from "./cpu-profiler.ts";

/** `seconds` as Go's net/http/pprof reads it (a whole number, 30 when absent), but bounded. */
function profileSeconds(url: URL): number | string {
  const raw = url.searchParams.get("seconds");
  if (raw === null || raw === "") return PROFILE_SECONDS.default;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= PROFILE_SECONDS.min && n <= PROFILE_SECONDS.max)) {
    return `seconds: expected a whole number of seconds from ${PROFILE_SECONDS.min} to ${PROFILE_SECONDS.max}, got ${JSON.stringify(raw)}`;
  }
  return n;
}

export function cpuProfileRoute(profiler: CpuProfiler): (req: Request) => Promise<Response> {
  return async (req) => {
    const seconds = profileSeconds(new URL(req.url));
    if (typeof seconds === "string") return new Response(`${seconds}\n`, { status: 400 });
    const outcome = await profiler.capture(seconds, req.signal);
    if (outcome.kind === "whole-run-profiler") {
      return new Response(
        "this process runs under bun --cpu-prof, which uses the same sampler: a profile now would stop it and empty the .cpuprofile it writes at exit; " +
          "take the whole-run profile, or restart without --cpu-prof (check BUN_OPTIONS) to profile on demand\n",
        { status: 409 },
      );
    }
    if (outcome.kind === "busy") {
      const since = new Date(outcome.sinceMs).toISOString();
      return new Response(
        `a CPU profile is already running (${outcome.seconds} s, started ${since}); one runs at a time, retry when it ends\n`,
        { status: 409, headers: { "retry-after": String(Math.max(1, Math.ceil((outcome.sinceMs + outcome.seconds * 1000 - Date.now()) / 1000))) } },
      );
    }
    const stamp = new Date(outcome.startedAtMs).toISOString().replace(/[:.]/g, "-");
    return new Response(outcome.pprofGzip, {
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": `attachment; filename="game-gateway-cpu-${stamp}.pb.gz"`,
        "x-content-type-options": "nosniff",
      },
    });
  };
}

/**
 * Go's heap profile has no in-process counterpart in Bun (its sampled heap profile, --heap-prof, is
 * written only at exit); say where the nearest things are rather than 404.
 */
export function heapProfileRoute(): Response {
  return new Response(
    "no pprof heap profile: Bun offers no sampled heap profile of a running process.\n" +
      "GET /debug/heap instead (same token): a V8 heap snapshot, opened by Chrome DevTools (Memory > Load).\n" +
      "For allocations over a whole run, start the gateway with BUN_OPTIONS=--heap-prof: a .heapprofile is written at exit.\n",
    { status: 501 },
  );
}
