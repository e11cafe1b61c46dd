import type { Logger } from "../log/logger.ts";
import type { ConnectionTracer } from "../session/connection-tracer.ts";
import { otlpSettingsFromEnv } from "./otlp-settings.ts";

// The one door to span export. The SDK (and gRPC under it) is imported only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, so a gateway without it starts and runs as before.

/** null when OTEL_EXPORTER_OTLP_ENDPOINT is unset; throws OtlpSettingsError for a bad OTEL_* value. */
export async function tracerFromEnv(
  env: Readonly<Record<string, string | undefined>>,
  serviceVersion: string,
  log: Logger,
): Promise<ConnectionTracer | null> {
  const settings = otlpSettingsFromEnv(env, serviceVersion);
  if (settings === null) return null;
  const { OtlpConnectionTracer } = await import("./otlp-tracer.ts");
  return new OtlpConnectionTracer(settings, log);
}
