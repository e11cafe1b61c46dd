import pkg from "../../package.json" with { type: "json" };

// The OpenTelemetry resource every log line and access record carries, as the reference gateway
// writes it: which service, in which namespace (env POD_NAMESPACE, "" outside Kubernetes), at
// which version. Read once, when a logger is built.

export interface ServiceResource {
  readonly "service.name": string;
  readonly "service.namespace": string;
  readonly "service.version": string;
}

export const SERVICE_NAME = "game-gateway";

export function serviceResource(env: Record<string, string | undefined> = process.env): ServiceResource {
  return { "service.name": SERVICE_NAME, "service.namespace": env.POD_NAMESPACE ?? "", "service.version": pkg.version };
}
