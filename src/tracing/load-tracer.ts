import type { Logger } from "../log/logger.ts";
import type { ConnectionTracer } from "../session/connection-tracer.ts";
import { otlpSettingsFromEnv } from "./otlp-settings.ts";

// The one door to span export. The SDK (and gRPC under it) is imported only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, so a gateway without it starts and runs as before.
//
// The specifier is computed, not a literal, so the bundler does not inline otlp-tracer.ts (and
// the SDK) into the main bundle, where Bun would parse it at every start (measured on the
// binary: about 25 ms more CPU per start and 0.7 MB more RSS, export off). scripts/build.ts compiles it as an entry point of its own, which a compiled binary
// embeds at its path under the entries' common root (as the config loader's worker).
const OTLP_TRACER_URL = import.meta.url.startsWith("file:///$bunfs/")
  ? "/$bunfs/root/tracing/otlp-tracer.js"
  : new URL("./otlp-tracer.ts", import.meta.url).href;

/** null when OTEL_EXPORTER_OTLP_ENDPOINT is unset; throws OtlpSettingsError for a bad OTEL_* value. */
export async function tracerFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  serviceVersion: string,
  log: Logger,
): Promise<ConnectionTracer | null> {
  const settings = otlpSettingsFromEnv(env, serviceVersion);
  if (settings === null) return null;
  const { OtlpConnectionTracer } = (await import(OTLP_TRACER_URL)) as typeof import("./otlp-tracer.ts");
  return new OtlpConnectionTracer(settings, log);
}
