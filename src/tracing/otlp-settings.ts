// Span export settings from the environment, as the reference reads them (OTEL_EXPORTER_OTLP_ENDPOINT
// switches export on; POD_NAME, POD_NAMESPACE, NODE_NAME become resource attributes) plus the
// standard OTEL_BSP_* batch bounds. No SDK here: this is read whether or not export is on.

import { MAX_TIMER_MS } from "../config/duration.ts";

export interface OtlpSettings {
  /** Where spans go, as a URL (a bare "host:port" becomes http://host:port: insecure, as the reference). */
  readonly url: string;
  /** Resource attributes: service.name/version and the Kubernetes names from the environment. */
  readonly resource: Readonly<Record<string, string>>;
  /** Spans waiting for or in an export at most; past it a finished span is dropped and counted. */
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  /** How long a finished span waits for a batch to fill before it is exported anyway. */
  readonly scheduledDelayMs: number;
  /** One export attempt (retries included) gives up after this. */
  readonly exportTimeoutMs: number;
  /** What was asked for but is not done (e.g. OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf); logged at start. */
  readonly warnings: readonly string[];
}

export class OtlpSettingsError extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

/** The environment's Kubernetes names and the OpenTelemetry resource keys they become. */
const K8S_RESOURCE: readonly (readonly [env: string, key: string])[] = [
  ["POD_NAME", "k8s.pod.name"],
  ["POD_NAMESPACE", "k8s.namespace.name"],
  ["NODE_NAME", "k8s.node.name"],
];

/** The OpenTelemetry SDK's defaults (and the Go SDK's): what a studio's collector already sees. */
const DEFAULTS = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 5000, exportTimeoutMs: 30_000 };

function positiveInt(env: Env, name: string, fallback: number, max?: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || (max !== undefined && n > max)) {
    const what = max === undefined ? "an integer >= 1" : `an integer 1..${max} (milliseconds: the most a timer holds)`;
    throw new OtlpSettingsError(`${name}: expected ${what}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** null when OTEL_EXPORTER_OTLP_ENDPOINT is unset or empty: no export, the SDK is never loaded. */
export function otlpSettingsFromEnv(env: Env, serviceVersion: string): OtlpSettings | null {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ?? "";
  if (endpoint === "") return null;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  try {
    new URL(url);
  } catch {
    throw new OtlpSettingsError(`OTEL_EXPORTER_OTLP_ENDPOINT: expected host:port or a URL such as http://collector:4317, got ${JSON.stringify(endpoint)}`);
  }
  const warnings: string[] = [];
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol !== undefined && protocol !== "" && protocol !== "grpc") {
    warnings.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported; spans are exported over OTLP/gRPC, as the reference gateway does`);
  }
  const resource: Record<string, string> = { "service.name": "game-gateway", "service.version": serviceVersion };
  for (const [name, key] of K8S_RESOURCE) {
    const v = env[name];
    if (v !== undefined && v !== "") resource[key] = v;
  }
  const maxQueueSize = positiveInt(env, "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULTS.maxQueueSize);
  return {
    url,
    resource,
    maxQueueSize,
    // A batch larger than the queue could never fill; the SDK clamps it the same way.
    maxExportBatchSize: Math.min(maxQueueSize, positiveInt(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULTS.maxExportBatchSize)),
    // Both become the SDK's timers, which turn a longer delay into 1 ms.
    scheduledDelayMs: positiveInt(env, "OTEL_BSP_SCHEDULE_DELAY", DEFAULTS.scheduledDelayMs, MAX_TIMER_MS),
    exportTimeoutMs: positiveInt(env, "OTEL_BSP_EXPORT_TIMEOUT", DEFAULTS.exportTimeoutMs, MAX_TIMER_MS),
    warnings,
  };
}
