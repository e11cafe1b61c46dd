// The admin port's /debug/pprof paths, where the performance guide sends operators:
//   go tool pprof 'http://host:9090/debug/pprof/profile?seconds=30&token=...'
// (behind the same admin.debug_token gate as /debug/stats and /debug/heap).

import { CpuProfiler, PROFILE_SECONDS } from "./cpu-profiler.ts";

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

/** Go's heap profile has no Bun counterpart; say where the nearest thing is rather than 404. */
export function heapProfileRoute(): Response {
  return new Response(
    "no pprof heap profile: Bun's JavaScriptCore has no sampled allocation profiler.\n" +
      "GET /debug/heap instead (same token): a V8 heap snapshot, opened by Chrome DevTools (Memory > Load).\n",
    { status: 501 },
  );
}
