import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { registerGoProcessExtras } from "./process-metrics.ts";

// The supervisor's own series, appended to the workers' merged exposition on the group's /metrics
// (src/supervisor/group-admin.ts): how many workers there are, which answered this scrape, and how
// often each was restarted. Read from the supervisor when scraped.
// The supervisor's own process families (process_*, nodejs_* and their game_gateway_ copies, as a
// worker exports them) are a separate registry: merged beside the workers' as the part of
// worker="supervisor" (group-admin.ts), so the process that does every scrape merge and every
// per-IP admission of the machine has its event-loop lag and memory in view.

const P = "game_gateway_";

/** What the series are read from at scrape time. */
export interface GroupMetricsSource {
  /** Per worker: its index and the restarts after an unexpected death since the supervisor started. */
  workerRestarts(): readonly { readonly index: number; readonly restarts: number }[];
}

export class GroupMetrics {
  readonly registry = new Registry();
  /** Per worker: 1 when its /metrics answered within the scrape's bound, 0 when it is left out of this one. */
  private readonly up: Gauge<"worker">;

  /** The supervisor process's own families, labelled worker="supervisor" by the merge. */
  readonly processRegistry = new Registry();

  constructor(source: GroupMetricsSource) {
    collectDefaultMetrics({ register: this.processRegistry });
    registerGoProcessExtras(this.processRegistry);
    collectDefaultMetrics({ register: this.processRegistry, prefix: P });
    const registers = [this.registry];
    new Counter({
      name: `${P}worker_restarts_total`,
      help: "Worker processes restarted by the supervisor after an unexpected exit, per worker.",
      labelNames: ["worker"],
      registers,
      collect() {
        this.reset();
        for (const w of source.workerRestarts()) this.inc({ worker: String(w.index) }, w.restarts);
      },
    });
    new Gauge({
      name: `${P}workers`,
      help: "Worker processes the supervisor runs (server.workers).",
      registers,
      collect() {
        this.set(source.workerRestarts().length);
      },
    });
    this.up = new Gauge({
      name: `${P}worker_up`,
      help: "1 when the worker's series are in this scrape; 0 when it did not answer in time (left out, so sums lack it).",
      labelNames: ["worker"],
      registers,
    });
  }

  /** The supervisor's series, given which workers answered this scrape. */
  async text(answered: readonly { readonly index: number; readonly up: boolean }[]): Promise<string> {
    this.up.reset();
    for (const w of answered) this.up.set({ worker: String(w.index) }, w.up ? 1 : 0);
    return this.registry.metrics();
  }

  /** The supervisor process's own families (to merge as the part of worker="supervisor"). */
  processText(): Promise<string> {
    return this.processRegistry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
