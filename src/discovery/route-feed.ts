// The routes that come from outside the config file: Redis rules and realm map, Consul endpoints.
// Holds the last good value of each, says what is missing, and tells the gateway when the routes
// in force change; the gateway compiles and swaps its Router (off the data path, as a reload).

import type { ConsulConfig, RedisConfig, RouteRule, RoutingConfig } from "../config/types.ts";
import type { RealmMap } from "../routing/router.ts";
import { combineRules, mergeConsul, type ConsulWorlds } from "./combine.ts";
import { ConsulSource, consulAddress } from "./consul.ts";
import { RedisRouteSource, type RedisValueKind } from "./redis-routes.ts";

export type FeedEvent =
  /** `ignored`: parts of the value ignored as the reference ignores them (said in a warning). */
  | { readonly kind: RedisValueKind; readonly ok: true; readonly changed: boolean; readonly ignored?: readonly string[] }
  | { readonly kind: RedisValueKind | "consul"; readonly ok: false; readonly error: string }
  | { readonly kind: "consul"; readonly ok: true; readonly changed: boolean; readonly ignored?: undefined };

export interface RouteFeedOptions {
  readonly redis: RedisConfig;
  readonly consul: ConsulConfig;
  readonly routing: RoutingConfig;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** This gateway's identity in session IDs: claimed in Redis so two gateways never share a node hash. */
  readonly node: { readonly name: string; readonly hash: number };
  /** Every load's outcome, changed or not (metrics, log); `changed` ones ask for a new Router. */
  readonly onEvent: (e: FeedEvent) => void;
}

const NO_REALMS: RealmMap = new Map();
/** A node claim outlives a gateway by this much; renewed every third of it. */
const NODE_CLAIM_TTL_MS = 60_000;

/** Whether this config takes routes from Redis or Consul at all. */
export function usesRouteFeed(c: { redis: RedisConfig; consul: ConsulConfig }): boolean {
  return c.redis.addr !== "" || c.consul.enabled;
}

export class RouteFeed {
  readonly redis: RedisRouteSource | null;
  readonly consul: ConsulSource | null;
  private redisRules: readonly RouteRule[] | null = null;
  private realmMap: RealmMap = NO_REALMS;
  private worlds: ConsulWorlds | null = null;
  private lastRulesError: string | null = null;
  /** The last rules load found no key (a failure: the last good rules, if any, stay). */
  private rulesKeyMissing = false;
  private lastConsulError: string | null = null;
  /** Another gateway's name when it holds this gateway's node hash. */
  private nodeClash: string | null = null;
  private claimTimer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: RouteFeedOptions) {
    const { redis, consul, routing, onEvent } = options;
    this.redis =
      redis.addr === ""
        ? null
        : new RedisRouteSource(redis, { rulesRefreshMs: routing.refresh_interval, realmRefreshMs: routing.realm_refresh_interval }, {
            rules: (rules, changed, ignored) => {
              this.redisRules = rules;
              this.lastRulesError = null;
              this.rulesKeyMissing = false;
              onEvent({ kind: "routing_rules", ok: true, changed, ignored });
            },
            realms: (map, changed) => {
              this.realmMap = map;
              onEvent({ kind: "realm_mapping", ok: true, changed });
            },
            failed: (kind, error, missing) => {
              if (kind === "routing_rules") {
                this.lastRulesError = error;
                this.rulesKeyMissing = missing === true;
              }
              onEvent({ kind, ok: false, error });
            },
          });
    this.consul = !consul.enabled
      ? null
      : new ConsulSource(
          {
            address: consulAddress(consul.address, options.env),
            serviceName: consul.service_name,
            namespace: consul.namespace,
            refreshMs: consul.refresh_interval,
            timeoutMs: Math.max(consul.refresh_interval, 1_000),
          },
          {
            worlds: (worlds, changed) => {
              this.worlds = worlds;
              this.lastConsulError = null;
              onEvent({ kind: "consul", ok: true, changed });
            },
            failed: (error) => {
              this.lastConsulError = error;
              onEvent({ kind: "consul", ok: false, error });
            },
          },
        );
  }

  start(): void {
    this.redis?.start();
    this.consul?.start();
    if (this.redis !== null) {
      void this.claimNode();
      this.claimTimer = setInterval(() => void this.claimNode(), NODE_CLAIM_TTL_MS / 3);
    }
  }

  /** The Redis key naming which gateway holds a session-ID node hash. */
  get nodeKey(): string {
    return `${this.options.redis.key_prefix}gateway:node:${this.options.node.hash}`;
  }

  private async claimNode(): Promise<void> {
    const { name } = this.options.node;
    const holder = await this.redis!.claim(this.nodeKey, name, NODE_CLAIM_TTL_MS);
    if (holder === null) return; // Redis unreachable: the rules' failure already says so
    this.nodeClash = holder === name ? null : holder;
  }

  /** Stops at once; nothing reported after it. */
  stop(): void {
    if (this.claimTimer !== null) clearInterval(this.claimTimer);
    this.redis?.stop();
    this.consul?.stop();
  }

  /**
   * The rules in force given the file's: with Consul on, the reference's merge of the Redis rules
   * (none without Redis) with Consul's endpoints; else the Redis rules; either way combined with
   * the file's rules, a rule from outside replacing the file's for the same (server_type, world_id).
   */
  rules(fileRules: readonly RouteRule[]): readonly RouteRule[] {
    const redisRules = this.redisRules ?? [];
    const outside = this.consul === null ? redisRules : mergeConsul(redisRules, this.worlds ?? new Map(), this.options.consul.service_name);
    return outside.length === 0 ? fileRules : combineRules(fileRules, outside);
  }

  get realms(): RealmMap {
    return this.options.routing.use_realm_mapping ? this.realmMap : NO_REALMS;
  }

  /**
   * Why the gateway is not ready yet: a source never loaded once (null when all did). A rules key
   * that never existed holds readiness only when the file has no rules either (Redis may be there
   * for the realm map alone).
   */
  notLoadedReason(fileHasRules: boolean): string | null {
    if (this.nodeClash !== null) {
      const { name, hash } = this.options.node;
      return `session ID node hash ${hash} of gateway_name "${name}" is held by gateway "${this.nodeClash}" (${this.nodeKey}): give one of them another server.gateway_name (or POD_NAME)`;
    }
    if (this.redis !== null && this.redisRules === null && !(this.rulesKeyMissing && fileHasRules)) {
      return `routing rules not loaded from Redis ${this.options.redis.addr} (${this.redis.keys.rules}) yet${this.lastRulesError === null ? "" : `: ${this.lastRulesError}`}`;
    }
    if (this.consul !== null && this.worlds === null) {
      return `endpoints not loaded from Consul yet${this.lastConsulError === null ? "" : `: ${this.lastConsulError}`}`;
    }
    return null;
  }
}
