import type { RouteRule, RouteStrategy } from "../config/types.ts";
import { CRC32_INIT, crc32Ascii, crc32Decimal, crc32Final } from "./crc32.ts";
import { endpointSeed, mix32, rendezvousPick } from "./rendezvous.ts";

// Maps a session's first ServerID to a backend endpoint. Lookup is exact (serverType, worldID)
// first, then the serverType's wildcard rule (world_id 0). The choice is made once per session:
// a session stays on its endpoint for life.
//
// The reference gateway's strategies, computed exactly as it does (n = the rule's endpoints), so
// an old and a new gateway behind one load balancer send a player to the same server:
//   round_robin          endpoint counter++ mod n, one counter per rule (server_type, world_id)
//   consistent_hash      crc32(decimal instID) mod n when instID > 0, else round robin
//   realm_based          the realm map's address for worldID when the map lists it (Redis
//                        {key_prefix}realm:mapping, as the reference's docs promise and its code never
//                        did); else crc32("world:{worldID}:inst:{instID}") mod n when both > 0; else round robin
// Ours, which move fewer players when a pool is resized (docs/architecture.md, "Routing"):
//   rendezvous_instance  rendezvous hash of instID, or of the session ID when instID is 0
//   rendezvous_world     rendezvous hash of worldID: every player of a world lands on one endpoint
// An endpoint whose circuit breaker is open is skipped, which the reference never does: round
// robin moves on to the next counter value, the crc32 strategies to the next index after the
// chosen one (so a healthy pool still agrees with the reference), rendezvous to its runner-up.

export interface RoutePick {
  readonly rule: CompiledRule;
  readonly endpoint: string;
}

/** Realm (world) ID -> the "host:port" its realm_based sessions go to. */
export type RealmMap = ReadonlyMap<number, string>;

const NO_REALMS: RealmMap = new Map();

export class CompiledRule {
  readonly serverType: number;
  readonly worldId: number;
  readonly serviceName: string;
  readonly strategy: RouteStrategy;
  readonly endpoints: readonly string[];
  private readonly seeds: readonly number[];
  private readonly realms: RealmMap;
  /** round_robin's counter (and the crc32 strategies' fallback's): sessions routed by turn so far. */
  private turns = 0;

  constructor(rule: RouteRule, realms: RealmMap = NO_REALMS) {
    this.realms = rule.strategy === "realm_based" ? realms : NO_REALMS;
    this.serverType = rule.server_type;
    this.worldId = rule.world_id;
    this.serviceName = rule.service_name;
    this.strategy = rule.strategy;
    this.endpoints = [...rule.endpoints];
    this.seeds = rule.strategy === "rendezvous_instance" || rule.strategy === "rendezvous_world" ? this.endpoints.map(endpointSeed) : [];
  }

  /**
   * The endpoint for a new session, or null when `usable` refuses every endpoint (all down).
   * sessionKey: any 32-bit mix of the session ID, used by rendezvous_instance when instID is 0.
   */
  pick(worldId: number, instId: number, sessionKey: number, usable?: (endpoint: string) => boolean): string | null {
    switch (this.strategy) {
      case "round_robin":
        return this.byTurn(usable);
      case "consistent_hash":
        return instId > 0 ? this.fromIndex(INST_HASH[instId & 0xff]! % this.endpoints.length, usable) : this.byTurn(usable);
      case "realm_based":
        if (this.realms.size > 0) {
          // A mapped realm whose address is down falls back to the hash (when usable says so).
          const mapped = this.realms.get(worldId);
          if (mapped !== undefined && (usable === undefined || usable(mapped))) return mapped;
        }
        return worldId > 0 && instId > 0 ? this.fromIndex(realmHash(worldId, instId) % this.endpoints.length, usable) : this.byTurn(usable);
      case "rendezvous_instance":
        return this.rendezvous(instId !== 0 ? instId : mix32(sessionKey), usable);
      case "rendezvous_world":
        return this.rendezvous(worldId, usable);
    }
  }

  /** Carries the round robin counter over from the rule this one replaces (a config reload). */
  continueFrom(previous: CompiledRule): void {
    this.turns = previous.turns;
  }

  /** counter++ mod n, moving on past unusable endpoints (each refusal takes a counter value). */
  private byTurn(usable: ((endpoint: string) => boolean) | undefined): string | null {
    const eps = this.endpoints;
    for (let tries = 0; tries < eps.length; tries++) {
      const ep = eps[this.turns++ % eps.length]!;
      if (usable === undefined || usable(ep)) return ep;
    }
    return null;
  }

  /** The chosen index, else the next usable one after it: deterministic, so a player's fallback is stable. */
  private fromIndex(chosen: number, usable: ((endpoint: string) => boolean) | undefined): string | null {
    const eps = this.endpoints;
    for (let k = 0; k < eps.length; k++) {
      const ep = eps[(chosen + k) % eps.length]!;
      if (usable === undefined || usable(ep)) return ep;
    }
    return null;
  }

  private rendezvous(key: number, usable: ((endpoint: string) => boolean) | undefined): string | null {
    const eps = this.endpoints;
    const accept = usable === undefined ? undefined : (i: number): boolean => usable(eps[i]!);
    return eps[rendezvousPick(this.seeds, key, accept)] ?? null;
  }
}

/** crc32 of the decimal instID, for every u8 instID: the ServerID field is 8 bits. */
const INST_HASH = Uint32Array.from({ length: 256 }, (_, inst) => crc32Final(crc32Decimal(CRC32_INIT, inst)));

/** The register after "world:", the realm key's constant start. */
const WORLD_PREFIX = crc32Ascii(CRC32_INIT, "world:");

/** crc32("world:{worldId}:inst:{instId}"), the reference's realm_based key, without building it. */
function realmHash(worldId: number, instId: number): number {
  const c = crc32Ascii(crc32Decimal(WORLD_PREFIX, worldId), ":inst:");
  return crc32Final(crc32Decimal(c, instId));
}

/** Every endpoint a rule names, and the realm map's addresses when a realm_based rule can use them. */
function endpointsOf(compiled: readonly CompiledRule[], realms: RealmMap): string[] {
  const all = new Set<string>();
  for (const r of compiled) for (const e of r.endpoints) all.add(e);
  if (realms.size > 0 && compiled.some((r) => r.strategy === "realm_based")) for (const e of realms.values()) all.add(e);
  return [...all];
}

function tableKey(serverType: number, worldId: number): number {
  return serverType * 0x8000 + worldId;
}

export class Router {
  private readonly table = new Map<number, CompiledRule>();
  readonly rules: readonly CompiledRule[];

  private readonly endpointList: readonly string[];

  constructor(
    rules: readonly RouteRule[],
    realms: RealmMap = NO_REALMS,
    compiled: readonly CompiledRule[] = rules.map((r) => new CompiledRule(r, realms)),
    endpoints: readonly string[] = endpointsOf(compiled, realms),
  ) {
    this.rules = compiled;
    this.endpointList = endpoints;
    for (const r of this.rules) this.table.set(tableKey(r.serverType, r.worldId), r);
  }

  /**
   * The same Router, compiled `perTurn` rules per event-loop turn: a reload of thousands of rules
   * (each hashes its endpoints) must not hold up client traffic while it compiles.
   */
  static async compileInSlices(rules: readonly RouteRule[], realms: RealmMap = NO_REALMS, perTurn = 200): Promise<Router> {
    const compiled: CompiledRule[] = [];
    for (let i = 0; i < rules.length; i++) {
      if (i > 0 && i % perTurn === 0) await new Promise((resolve) => setImmediate(resolve));
      compiled.push(new CompiledRule(rules[i]!, realms));
    }
    return new Router(rules, realms, compiled, endpointsOf(compiled, realms));
  }

  /** The rule for this address: exact world, then wildcard; undefined when none. */
  ruleFor(serverType: number, worldId: number): CompiledRule | undefined {
    return this.table.get(tableKey(serverType, worldId)) ?? this.table.get(tableKey(serverType, 0));
  }

  /**
   * Keeps each rule key's round robin counter across a reload, as the reference keeps one counter
   * per (server_type, world_id) for the life of the process: reloading does not restart every
   * round robin at its first endpoint.
   */
  continueCountersFrom(previous: Router): void {
    for (const [key, rule] of this.table) {
      const before = previous.table.get(key);
      if (before !== undefined) rule.continueFrom(before);
    }
  }

  /** Every endpoint any rule names, each once. */
  endpoints(): string[] {
    return [...this.endpointList];
  }
}
