import { parseHostPort } from "../config/host-port.ts";
import { EndpointPool, type PoolDeps } from "./endpoint-pool.ts";

// All endpoint pools of the process, by "host:port". Pools are created for every endpoint the
// routes name (so connections are warm before the first player arrives) and on first use.

export class BackendRegistry {
  private readonly pools = new Map<string, EndpointPool>();

  constructor(private readonly deps: PoolDeps) {}

  /** The pool for an endpoint, created and started on first use. */
  pool(endpoint: string): EndpointPool {
    let p = this.pools.get(endpoint);
    if (p === undefined) {
      const addr = parseHostPort(endpoint);
      if (addr === undefined) throw new Error(`invalid backend endpoint "${endpoint}"`); // config validation prevents this
      p = new EndpointPool(endpoint, addr.host, addr.port, this.deps);
      this.pools.set(endpoint, p);
      p.start();
    }
    return p;
  }

  /** Starts pools for these endpoints (routes loaded or reloaded). */
  warm(endpoints: Iterable<string>): void {
    for (const e of endpoints) this.pool(e);
  }

  all(): IterableIterator<EndpointPool> {
    return this.pools.values();
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}
