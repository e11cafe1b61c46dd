// How the routes in force are made from their sources (docs/fleet.md, "Which rules win").

import type { RouteRule } from "../config/types.ts";

/** A Consul world's passing instances, "host:port" each, in the agent's order. */
export type ConsulWorlds = ReadonlyMap<number, readonly string[]>;

/**
 * The rules in force: the file's and Redis', a Redis rule replacing the file's rule for the same
 * (server_type, world_id). The file holds a fleet's fallbacks; Redis the routes operators change.
 */
export function combineRules(fileRules: readonly RouteRule[], redisRules: readonly RouteRule[]): RouteRule[] {
  const fromRedis = new Set(redisRules.map(ruleKey));
  return [...fileRules.filter((r) => !fromRedis.has(ruleKey(r))), ...redisRules];
}

/**
 * The reference's merge of Redis rules and Consul endpoints, exactly: a Redis rule keeps its
 * server_type, service_name, strategy and hash_key, its endpoints are ignored; for each world W
 * with instances, every rule whose world_id is W (or 0 when W > 0) and whose service_name is
 * empty or `serviceName` becomes a rule for (its server_type, W) with W's endpoints; a world no
 * rule matched gets server_type 200, round_robin, with those endpoints.
 */
export function mergeConsul(redisRules: readonly RouteRule[], worlds: ConsulWorlds, serviceName: string): RouteRule[] {
  const out = new Map<number, RouteRule>();
  for (const [world, endpoints] of worlds) {
    if (endpoints.length === 0) continue;
    let matched = false;
    for (const r of redisRules) {
      const worldMatches = r.world_id === world || (r.world_id === 0 && world > 0);
      if (!worldMatches || (r.service_name !== "" && r.service_name !== serviceName)) continue;
      matched = true;
      const merged: RouteRule = { ...r, world_id: world, endpoints };
      const key = ruleKey(merged);
      // An exact-world rule wins over the wildcard rule for the same server type, whatever their order.
      if (!out.has(key) || r.world_id === world) out.set(key, merged);
    }
    if (!matched) {
      const fallback: RouteRule = { server_type: DEFAULT_SERVER_TYPE, world_id: world, service_name: serviceName, strategy: "round_robin", endpoints };
      out.set(ruleKey(fallback), fallback);
    }
  }
  return [...out.values()];
}

/** The reference's server type for a Consul world that no Redis rule covers. */
export const DEFAULT_SERVER_TYPE = 200;

function ruleKey(r: RouteRule): number {
  return r.server_type * 0x8000 + r.world_id;
}
