// The group's one admin port (admin.listen_addr, else server.health_check_port), served by the
// supervisor. Each worker serves its own admin on loopback (an ephemeral port it reported when it
// became ready); this server asks every worker there, at most WORKER_ANSWER_TIMEOUT_MS each, and
// answers for the group:
//   /health       200 while every worker runs and answers its /health; 503 naming the ones that do not
//   /ready        200 when every worker is ready; 503 with each one's reason otherwise
//   /metrics      the workers' expositions merged (src/admin/merge-exposition.ts) and the supervisor's
//                 own series (worker_restarts_total, workers, worker_up: a worker that did not answer
//                 shows worker_up 0, its gauges are left out and its counters carried; see counter-carry.ts),
//                 and the supervisor's own process families labelled worker="supervisor"
//   /api/status   the numbers of the status page, every worker's merged (group-status.ts), with one row per worker
//   /             the status page
//   /debug/*      passed to one worker (?worker=N, default 0); its token check applies

import { AdminHttpServer } from "../admin/admin-http.ts";
import { CounterCarry } from "../admin/counter-carry.ts";
import { GroupMetrics } from "../admin/group-metrics.ts";
import { mergeExpositions, type WorkerExposition } from "../admin/merge-exposition.ts";
import { STATUS_PAGE_HTML } from "../admin/status-page.ts";
import { mergeWorkerStatus } from "./group-status.ts";
import type { Binder } from "../net/binder.ts";
import type { Supervisor, WorkerInfo } from "./supervisor.ts";

/** How long the group's admin waits for one worker's answer before leaving it out. */
export const WORKER_ANSWER_TIMEOUT_MS = 2_000;

export interface GroupAdminSettings {
  readonly max_connections: number;
  readonly idle_timeout: number;
}

interface Answer {
  readonly worker: WorkerInfo;
  /** null: not running, refused, or no answer within the bound. */
  readonly status: number | null;
  readonly body: string;
}

async function ask(w: WorkerInfo, path: string): Promise<Answer> {
  if (w.adminPort === null) return { worker: w, status: null, body: "" };
  try {
    const res = await fetch(`http://127.0.0.1:${w.adminPort}${path}`, { signal: AbortSignal.timeout(WORKER_ANSWER_TIMEOUT_MS) });
    return { worker: w, status: res.status, body: await res.text() };
  } catch {
    return { worker: w, status: null, body: "" };
  }
}

function whyNot(a: Answer): string {
  if (a.worker.state !== "running") return `worker ${a.worker.index} ${a.worker.state === "waiting" ? "is waiting to be restarted" : a.worker.state}`;
  if (a.status === null) return `worker ${a.worker.index} did not answer within ${WORKER_ANSWER_TIMEOUT_MS} ms`;
  let reason = `HTTP ${a.status}`;
  try {
    reason = String((JSON.parse(a.body) as { reason?: unknown }).reason ?? reason);
  } catch {
    // not JSON: the status says enough
  }
  return `worker ${a.worker.index}: ${reason}`;
}

function parsed(a: Answer): Record<string, unknown> | null {
  if (a.status !== 200) return null;
  try {
    return JSON.parse(a.body) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Which process a worker is: a restart is a new life. */
const lifeOf = (w: WorkerInfo): string => `${w.pid}@${w.startedAt}`;

export class GroupAdmin {
  private server: AdminHttpServer | null = null;
  private readonly metrics: GroupMetrics;
  private readonly carry = new CounterCarry();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly supervisor: Supervisor,
    private readonly settings: () => GroupAdminSettings,
    /** Why the group has this many workers (the start line's workers_reason), shown by /api/status. */
    private readonly workersReason: string,
  ) {
    this.metrics = new GroupMetrics({ workerRestarts: () => supervisor.info() });
  }

  get boundPort(): number {
    return this.server?.boundPort ?? 0;
  }

  private askAll(path: string): Promise<Answer[]> {
    return Promise.all(this.supervisor.info().map((w) => ask(w, path)));
  }

  /** Binds; throws ListenError naming `key`. */
  start(key: string, binder?: Binder): void {
    const routes: Record<string, (req: Request) => Promise<Response> | Response> = {
      "/": () => new Response(STATUS_PAGE_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
      "/health": async () => {
        const answers = await this.askAll("/health");
        const down = answers.filter((a) => a.status !== 200).map(whyNot);
        return down.length === 0 ? Response.json({ status: "ok", workers: answers.length }) : Response.json({ status: "unhealthy", reasons: down }, { status: 503 });
      },
      "/ready": async () => {
        const answers = await this.askAll("/ready");
        const notReady = answers.filter((a) => a.status !== 200).map(whyNot);
        if (notReady.length > 0) return Response.json({ status: "not_ready", reason: notReady.join("; ") }, { status: 503 });
        // Every worker serves the same routes; each one's view of its endpoints is its own.
        return Response.json({ status: "ready", workers: answers.map((a) => ({ worker: a.worker.index, routes: parsed(a)?.routes ?? [] })) });
      },
      "/metrics": async () => {
        const answers = await this.askAll("/metrics");
        const parts: WorkerExposition[] = answers.filter((a) => a.status === 200).map((a) => ({ worker: a.worker.index, text: a.body }));
        // Counters never fall: a silent worker's last values and a restarted one's previous lives are carried.
        parts.push(...this.carry.carry(answers.map((a) => ({ worker: a.worker.index, life: lifeOf(a.worker), text: a.status === 200 ? a.body : null }))));
        // The supervisor's own process (process_*, nodejs_*): one more series per family, worker="supervisor".
        parts.push({ worker: "supervisor", text: await this.metrics.processText() });
        const own = await this.metrics.text(answers.map((a) => ({ index: a.worker.index, up: a.status === 200 })));
        const merged = mergeExpositions(parts);
        const body = merged === "" || merged.endsWith("\n") ? merged + own : `${merged}\n${own}`;
        return new Response(body, { headers: { "content-type": this.metrics.contentType } });
      },
      "/api/status": async () => Response.json(this.status(await this.askAll("/api/status")), { headers: { "cache-control": "no-store" } }),
    };
    const notFound = (): Response => new Response("not found\n", { status: 404 });
    this.server = new AdminHttpServer(
      this.host,
      this.port,
      () => ({ maxConnections: this.settings().max_connections, idleTimeoutMs: this.settings().idle_timeout }),
      (req) => {
        const url = new URL(req.url);
        if (url.pathname.startsWith("/debug/")) return this.passToWorker(req, url);
        return (routes[url.pathname] ?? notFound)(req);
      },
    );
    this.server.start(key, binder);
  }

  /** The status page's numbers for the group: every worker's figures merged (group-status.ts), a row per worker. */
  private status(answers: readonly Answer[]): Record<string, unknown> {
    const bodies = answers.map(parsed);
    const notReady = answers.flatMap((a, i) => {
      const b = bodies[i];
      if (b?.ready === true) return [];
      return [b === null || b === undefined ? whyNot(a) : `worker ${a.worker.index}: ${String(b.not_ready_reason)}`];
    });
    return {
      ...mergeWorkerStatus(bodies),
      ready: notReady.length === 0,
      not_ready_reason: notReady.length === 0 ? null : notReady.join("; "),
      uptime_s: Math.round(process.uptime()),
      workers_reason: this.workersReason,
      workers: answers.map((a, i) => ({
        worker: a.worker.index,
        pid: a.worker.pid,
        state: a.worker.state,
        uptime_s: a.worker.state === "running" ? Math.round((Date.now() - a.worker.startedAt) / 1000) : null,
        restarts: a.worker.restarts,
        answered: bodies[i] !== null,
        ready: bodies[i]?.ready === true,
        connections: bodies[i]?.connections ?? null,
        sessions: bodies[i]?.sessions ?? null,
        config_version: bodies[i]?.config_version ?? null,
        latency: bodies[i]?.latency ?? null,
      })),
    };
  }

  /** /debug/* is per process: one worker's (?worker=N, default 0), through its own admin and token check. */
  private async passToWorker(req: Request, url: URL): Promise<Response> {
    const index = Number(url.searchParams.get("worker") ?? "0");
    const w = this.supervisor.info()[index];
    if (w === undefined || !Number.isInteger(index)) return new Response(`?worker=${url.searchParams.get("worker")}: expected 0..${this.supervisor.workers.length - 1}\n`, { status: 400 });
    if (w.adminPort === null) return new Response(`worker ${index} is not running\n`, { status: 503 });
    try {
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`http://127.0.0.1:${w.adminPort}${url.pathname}${url.search}`, { headers, signal: req.signal });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } catch (e) {
      return new Response(`worker ${index}: ${String(e)}\n`, { status: 502 });
    }
  }

  stop(): void {
    this.server?.stop();
    this.server = null;
  }
}
