import type { Server } from "bun";
import { timingSafeEqual } from "node:crypto";
import type { GatewayMetrics } from "./metrics.ts";
import { STATUS_PAGE_HTML } from "./status-page.ts";

// The admin HTTP endpoint (server.health_check_port):
//   /health        the process is alive
//   /ready         200 once routes are loaded and while not draining (the body gives, per route, how
//                  many of its endpoints are reachable); 503 with the reason otherwise
//   /metrics       Prometheus text
//   /              the live status page (polls /api/status)
//   /api/status    the numbers the status page shows
//   /debug/stats   full JSON snapshot      } only when admin.debug_token is set, and then only
//   /debug/heap    V8 heap snapshot        } with "Authorization: Bearer <token>" or ?token=<token>

/** What the admin server reads from the gateway. */
export interface AdminSource {
  readonly metrics: GatewayMetrics;
  readonly config: { readonly admin: { readonly debug_token: string } };
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
  private server: Server<undefined> | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly source: AdminSource,
  ) {}

  get boundPort(): number {
    return this.server?.port ?? 0;
  }

  start(): void {
    const src = this.source;
    const guarded = (handler: () => Response) => (req: Request) => {
      const token = src.config.admin.debug_token;
      if (token === "") return new Response("debug endpoints are off (set admin.debug_token)\n", { status: 404 });
      if (!tokenMatches(token, req)) return new Response("missing or wrong debug token\n", { status: 401 });
      return handler();
    };
    this.server = Bun.serve({
      hostname: this.host,
      port: this.port,
      routes: {
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
      },
      fetch: () => new Response("not found\n", { status: 404 }),
    });
  }

  async stop(): Promise<void> {
    await this.server?.stop(true);
    this.server = null;
  }
}
