import type { Server } from "bun";
import type { GatewayMetrics } from "./metrics.ts";

// The admin HTTP endpoint (server.health_check_port): /health (process alive), /ready (routes
// loaded and not draining), /metrics (Prometheus text).

export interface Readiness {
  /** null when ready; otherwise why not, shown in the 503 body. */
  notReadyReason(): string | null;
}

export class AdminServer {
  private server: Server<undefined> | null = null;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly metrics: GatewayMetrics,
    private readonly readiness: Readiness,
  ) {}

  get boundPort(): number {
    return this.server?.port ?? 0;
  }

  start(): void {
    this.server = Bun.serve({
      hostname: this.host,
      port: this.port,
      routes: {
        "/health": () => Response.json({ status: "ok" }),
        "/ready": () => {
          const reason = this.readiness.notReadyReason();
          return reason === null
            ? Response.json({ status: "ready" })
            : Response.json({ status: "not_ready", reason }, { status: 503 });
        },
        "/metrics": async () =>
          new Response(await this.metrics.text(), {
            headers: { "content-type": this.metrics.registry.contentType },
          }),
      },
      fetch: () => new Response("not found\n", { status: 404 }),
    });
  }

  async stop(): Promise<void> {
    await this.server?.stop(true);
    this.server = null;
  }
}
