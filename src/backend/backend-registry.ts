import { parseHostPort } from "../config/host-port.ts";
import type { BackendPool, GrpcPoolFactory } from "./backend-pool.ts";
import { EndpointPool, type PoolDeps } from "./endpoint-pool.ts";
import { waitUntil } from "../time/clock.ts";

// All endpoint pools of the process, by "host:port". Pools are created for every endpoint the
// routes name (so connections are warm before the first player arrives) and on first use.
// When a reload drops an endpoint from the routes, its pool is retired: it keeps serving the
// sessions already bound to it and closes once the last of them ends.
// An endpoint whose routes name the gRPC transport (server.use_grpc, a rule's transport) gets a
// pool from the gRPC factory, loaded on demand so a TCP-only gateway never loads @grpc/grpc-js.
// An endpoint keeps the transport its pool was made with until the pool is retired.

/** Which endpoints speak gRPC, and what makes their pools (null: the transport is not loaded). */
export interface GrpcRouting {
  readonly endpoints: ReadonlySet<string>;
  readonly factory: GrpcPoolFactory | null;
}

export class BackendRegistry {
  private readonly pools = new Map<string, BackendPool>();
  private readonly retired = new Set<BackendPool>();
  private grpc: GrpcRouting = { endpoints: new Set(), factory: null };

  constructor(private readonly deps: PoolDeps) {}

  /** The endpoints that speak gRPC from now on (at start and on each reload). */
  routeGrpc(grpc: GrpcRouting): void {
    checkGrpcLoaded(grpc.endpoints, grpc.factory !== null);
    this.grpc = grpc;
  }

  /** The pool for an endpoint, created and started on first use. */
  pool(endpoint: string): BackendPool {
    let p = this.pools.get(endpoint);
    if (p === undefined) {
      const addr = parseHostPort(endpoint);
      if (addr === undefined) throw new Error(`invalid backend endpoint "${endpoint}"`); // config validation prevents this
      const grpc = this.grpc.factory;
      p = grpc !== null && this.grpc.endpoints.has(endpoint) ? grpc(endpoint) : new EndpointPool(endpoint, addr.host, addr.port, this.deps);
      this.pools.set(endpoint, p);
      p.start();
    }
    return p;
  }

  /** The routes now name exactly these endpoints: start new pools, retire the rest. */
  retain(endpoints: readonly string[]): void {
    const wanted = new Set(endpoints);
    for (const e of wanted) this.pool(e);
    for (const [e, p] of this.pools) {
      if (wanted.has(e)) continue;
      this.pools.delete(e);
      this.retired.add(p);
      p.retire();
    }
    this.reapRetired();
  }

  /** Closes retired pools whose last session has ended (called from the sweep). */
  reapRetired(): void {
    for (const p of this.retired) {
      if (p.sessions > 0) continue;
      p.close();
      this.retired.delete(p);
    }
  }

  /** How many of these endpoints answered since they last failed to (no pool is created). */
  reachableCount(endpoints: readonly string[]): number {
    let n = 0;
    for (const e of endpoints) if (this.pools.get(e)?.reachable) n++;
    return n;
  }

  /** Whether a new session may go to this endpoint now (its breaker lets it through). */
  admits(endpoint: string): boolean {
    return this.pool(endpoint).admits();
  }

  healthCheck(now = Date.now()): void {
    for (const p of this.pools.values()) p.healthCheck(now);
    for (const p of this.retired) p.healthCheck(now);
  }

  all(): BackendPool[] {
    return [...this.pools.values(), ...this.retired];
  }

  /**
   * Closes every pool after its queued frames are written; resolves when all are closed or after
   * maxWaitMs on the pools' clock.
   */
  async close(maxWaitMs: number): Promise<void> {
    const pools = this.all();
    for (const p of pools) p.close();
    this.pools.clear();
    this.retired.clear();
    await waitUntil(this.deps.clock, () => pools.every((p) => p.finished), maxWaitMs);
  }
}

/** Throws when routes name gRPC backends and the transport was not loaded (before anything starts). */
export function checkGrpcLoaded(grpcEndpoints: ReadonlySet<string>, loaded: boolean): void {
  if (grpcEndpoints.size > 0 && !loaded) {
    throw new Error("routes name gRPC backends (server.use_grpc or a rule's transport: grpc) but the gateway started without the gRPC transport: restart it with these routes");
  }
}
