import { timingSafeEqual } from "node:crypto";
import { AdminHttpServer, type AdminHandler } from "./admin-http.ts";
import { CpuProfiler } from "./cpu-profiler.ts";
import { cpuProfileRoute, heapProfileRoute } from "./profile-route.ts";
import { type Binder, directBinder } from "../net/binder.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { STATUS_PAGE_HTML } from "./status-page.ts";

// The admin HTTP endpoint (admin.listen_addr, else server.health_check_port), at most
// admin.max_connections connections at once, each closed after admin.idle_timeout without a request:
//   /health        the process is alive
//   /ready         200 once routes are loaded and while not draining (the body gives, per route, how
//                  many of its endpoints are reachable); 503 with the reason otherwise
//   /metrics       Prometheus text
//   /              the live status page (polls /api/status)
//   /api/status    the numbers the status page shows
//   /debug/stats            full JSON snapshot       } only when admin.debug_token is set, and then
//   /debug/heap             V8 heap snapshot         } only with "Authorization: Bearer <token>" or
//   /debug/pprof/profile    CPU profile (pprof)      } ?token=<token>
//   /debug/pprof/heap       501: says to use /debug/heap }

/** What the admin server reads from the gateway. */
export interface AdminSource {
  readonly metrics: GatewayMetrics;
  readonly config: { readonly admin: { readonly debug_token: string; readonly max_connections: number; readonly idle_timeout: number } };
  notReadyReason(): string | null;
  /** Per route: its endpoints and how many of them answered since they last failed to. */
  routeReachability(): readonly object[];
  status(): object;
}

function tokenMatches(expected: string, req: Request): boolean {
  if (expected === "") return false;
  const header = req.headers.get("authorization") ?? "";
  const given = header.startsWith("Bearer ") ? header.slice(7) : (new URL(req.url).searchParams.get("token") ?? "");
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class AdminServer {
  private server: AdminHttpServer | null = null;
  private readonly profiler = new CpuProfiler([`game-gateway on bun ${Bun.version}: JavaScriptCore sampling profiler, 100 Hz`]);

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly source: AdminSource,
  ) {}

  get boundPort(): number {
    return this.server?.boundPort ?? 0;
  }

  /** Admin connections refused since start because admin.max_connections were open. */
  get refusedConnections(): number {
    return this.server?.refused ?? 0;
  }

  /** Binds the admin port; throws ListenError naming `key` when the address cannot be had. */
  start(key: string, binder: Binder = directBinder): void {
    const src = this.source;
    const guarded = (handler: AdminHandler) => (req: Request) => {
      const token = src.config.admin.debug_token;
      if (token === "") return new Response("debug endpoints are off (set admin.debug_token)\n", { status: 404 });
      if (!tokenMatches(token, req)) return new Response("missing or wrong debug token\n", { status: 401 });
      return handler(req);
    };
    const routes: Record<string, AdminHandler> = {
      "/": () => new Response(STATUS_PAGE_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
      "/health": () => Response.json({ status: "ok" }),
      "/ready": () => {
        const reason = src.notReadyReason();
        return reason === null
          ? Response.json({ status: "ready", routes: src.routeReachability() })
          : Response.json({ status: "not_ready", reason }, { status: 503 });
      },
      "/metrics": async () =>
        new Response(await src.metrics.text(), { headers: { "content-type": src.metrics.registry.contentType } }),
      "/api/status": () => Response.json(src.status(), { headers: { "cache-control": "no-store" } }),
      "/debug/stats": guarded(() => Response.json(src.status())),
      "/debug/heap": guarded(
        () =>
          new Response(Bun.generateHeapSnapshot("v8", "arraybuffer"), {
            headers: {
              "content-type": "application/json",
              "content-disposition": `attachment; filename="game-gateway-${Date.now()}.heapsnapshot"`,
            },
          }),
      ),
      "/debug/pprof/profile": guarded(cpuProfileRoute(this.profiler)),
      "/debug/pprof/heap": guarded(heapProfileRoute),
    };
    const notFound = (): Response => new Response("not found\n", { status: 404 });
    this.server = new AdminHttpServer(
      this.host,
      this.port,
      () => ({ maxConnections: src.config.admin.max_connections, idleTimeoutMs: src.config.admin.idle_timeout }),
      (req) => (routes[new URL(req.url).pathname] ?? notFound)(req),
    );
    this.server.start(key, binder);
  }

  /** Dev hot reload: newer code has reloaded the server with its routes; leave it open. */
  handOver(): void {
    this.server?.handOver();
    this.server = null;
  }

  async stop(): Promise<void> {
    this.profiler.stopAll();
    this.server?.stop();
    this.server = null;
  }
}
