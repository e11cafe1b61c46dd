// Builds dist/game-gateway: one self-contained executable. .env and bunfig.toml autoloading are
// off so a deployed binary behaves the same in every working directory.
import { $ } from "bun";

/**
 * NODE_ENV "production" turns the invariant checks' guards into constant false, so the minifier
 * drops them (src/invariant.ts): they run in tests and development, not in the release binary.
 * Exported for the test that checks the release bundle holds none of them.
 */
export const RELEASE_DEFINE: Record<string, string> = { "process.env.NODE_ENV": '"production"' };

if (import.meta.main) {
  const out = "dist/game-gateway";
  // process.execPath: the Bun running this script, whether or not `bun` is on PATH.
  // The config loader's worker is a second entry point: a compiled binary can start only the workers
  // it embeds, at their path under the entries' common root (src/config/load-off-thread.ts).
  // Span export (src/tracing/otlp-tracer.ts, the OpenTelemetry SDK) is a third, imported only when
  // OTEL_EXPORTER_OTLP_ENDPOINT is set, so a binary without it never parses the SDK (load-tracer.ts).
  // The gRPC backend transport (src/backend/grpc/grpc-transport.ts, @grpc/grpc-js) is a fourth, imported
  // only when some route names a gRPC backend (load-grpc.ts).
  const entries = ["src/cli/main.ts", "src/config/load-worker.ts", "src/tracing/otlp-tracer.ts", "src/backend/grpc/grpc-transport.ts"];
  const define = Object.entries(RELEASE_DEFINE).flatMap(([k, v]) => ["--define", `${k}=${v}`]);
  await $`${process.execPath} build --compile --minify --sourcemap=inline ${define} --no-compile-autoload-dotenv --no-compile-autoload-bunfig ${entries} --outfile ${out}`;
  console.log(`built ${out}`);
}
