// Which config keys a running gateway cannot change, and the config a reload leaves in force
// when some of them changed: shared by a gateway's own reload and a group's supervisor, which
// must hand a worker it (re)starts the same config its running siblings have.

import type { GatewayConfig } from "./types.ts";

/**
 * Config keys a running gateway cannot change (sockets, identity, backend connection settings):
 * a reload that changes one logs it and keeps the old value.
 */
export const RESTART_ONLY: readonly string[] = [
  "server.listen_addr",
  "server.ws_listen_addr",
  "server.ws_path",
  "server.ws_max_payload_length",
  "server.ws_idle_timeout",
  "server.ws_send_pings",
  "server.health_check_port",
  "admin.listen_addr",
  "server.gateway_name",
  "backend",
  "circuit_breaker",
  "connection_pool.dial_timeout",
  "connection_pool.retry_delay",
  "connection_pool.read_timeout",
  // The idle life of a backend connection is a pool setting, fixed when the pools are built.
  "connection_pool.idle_timeout",
  "connection_pool.max_retries",
  "session.sweep_interval",
  // The gRPC streams' settings are fixed when the transport is built.
  "grpc",
  "tracing",
  "log.access_log",
  // The Redis and Consul sources are built once, at start.
  "redis",
  "consul",
  "routing.refresh_interval",
  "routing.realm_refresh_interval",
  "routing.use_realm_mapping",
];

function at(config: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
}

export function withOld(next: GatewayConfig, old: GatewayConfig, path: string): GatewayConfig {
  const [section, key] = path.split(".") as [keyof GatewayConfig, string | undefined];
  if (key === undefined) return { ...next, [section]: old[section] };
  return { ...next, [section]: { ...(next[section] as object), [key]: at(old, path) } };
}

/** The restart-only keys whose values differ between `next` and `old`. */
export function restartOnlyChanges(next: GatewayConfig, old: GatewayConfig): string[] {
  return RESTART_ONLY.filter((p) => JSON.stringify(at(next, p)) !== JSON.stringify(at(old, p)));
}

/** `next` with the old value of every key in `paths` (the ones a reload cannot change): the config in force after it. */
export function keepOldValues(next: GatewayConfig, old: GatewayConfig, paths: readonly string[]): GatewayConfig {
  return paths.reduce((c, p) => withOld(c, old, p), next);
}
