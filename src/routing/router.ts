import type { RouteRule, RouteStrategy } from "../config/types.ts";
import { endpointSeed, mix32, rendezvousPick } from "./rendezvous.ts";

// Maps a session's first ServerID to a backend endpoint. Lookup is exact (serverType, worldID)
// first, then the serverType's wildcard rule (world_id 0). The choice is made once per session:
// a session stays on its endpoint for life.
//   round_robin      endpoints in turn
//   consistent_hash  rendezvous hash of instID, or of the session ID when instID is 0
//   realm_based      rendezvous hash of worldID: every player of a world lands on one endpoint
// An endpoint whose circuit breaker is open is skipped: round robin moves on, the hashes fall
// back to their runner-up.

export interface RoutePick {
  readonly rule: CompiledRule;
  readonly endpoint: string;
}

export class CompiledRule {
  readonly serverType: number;
  readonly worldId: number;
  readonly serviceName: string;
  readonly strategy: RouteStrategy;
  readonly endpoints: readonly string[];
  private readonly seeds: readonly number[];
  private turn = 0;

  constructor(rule: RouteRule) {
    this.serverType = rule.server_type;
    this.worldId = rule.world_id;
    this.serviceName = rule.service_name;
    this.strategy = rule.strategy;
    this.endpoints = [...rule.endpoints];
    this.seeds = this.endpoints.map(endpointSeed);
  }

  /**
   * The endpoint for a new session, or null when `usable` refuses every endpoint (all down).
   * sessionKey: any 32-bit mix of the session ID, used when instID is 0.
   */
  pick(worldId: number, instId: number, sessionKey: number, usable?: (endpoint: string) => boolean): string | null {
    const eps = this.endpoints;
    const accept = usable === undefined ? undefined : (i: number): boolean => usable(eps[i]!);
    switch (this.strategy) {
      case "round_robin":
        for (let tries = 0; tries < eps.length; tries++) {
          const i = this.turn;
          this.turn = i + 1 >= eps.length ? 0 : i + 1;
          if (accept === undefined || accept(i)) return eps[i]!;
        }
        return null;
      case "consistent_hash":
        return eps[rendezvousPick(this.seeds, instId !== 0 ? instId : mix32(sessionKey), accept)] ?? null;
      case "realm_based":
        return eps[rendezvousPick(this.seeds, worldId, accept)] ?? null;
    }
  }
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
    compiled: readonly CompiledRule[] = rules.map((r) => new CompiledRule(r)),
    endpoints: readonly string[] = [...new Set(compiled.flatMap((r) => r.endpoints))],
  ) {
    this.rules = compiled;
    this.endpointList = endpoints;
    for (const r of this.rules) this.table.set(tableKey(r.serverType, r.worldId), r);
  }

  /**
   * The same Router, compiled `perTurn` rules per event-loop turn: a reload of thousands of rules
   * (each hashes its endpoints) must not hold up client traffic while it compiles.
   */
  static async compileInSlices(rules: readonly RouteRule[], perTurn = 200): Promise<Router> {
    const compiled: CompiledRule[] = [];
    const endpoints = new Set<string>();
    for (let i = 0; i < rules.length; i++) {
      if (i > 0 && i % perTurn === 0) await new Promise((resolve) => setImmediate(resolve));
      const rule = new CompiledRule(rules[i]!);
      compiled.push(rule);
      for (const e of rule.endpoints) endpoints.add(e);
    }
    return new Router(rules, compiled, [...endpoints]);
  }

  /** The rule for this address: exact world, then wildcard; undefined when none. */
  ruleFor(serverType: number, worldId: number): CompiledRule | undefined {
    return this.table.get(tableKey(serverType, worldId)) ?? this.table.get(tableKey(serverType, 0));
  }

  /** Every endpoint any rule names, each once. */
  endpoints(): string[] {
    return [...this.endpointList];
  }
}
