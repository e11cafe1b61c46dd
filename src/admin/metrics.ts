import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from "prom-client";
import { GatewayCounters } from "../telemetry/counters.ts";
import { LatencyHistogram } from "../telemetry/latency-histogram.ts";

// Every metric the gateway exports, in one registry per gateway instance (so tests can run
// several gateways in one process). Names are the reference gateway's, prefixed game_gateway_.
// Per-message counts live in GatewayCounters (src/telemetry, no dependencies), which this class
// extends so the data path can be handed the same object typed as the counters alone; they are
// folded into prom-client only when /metrics is scraped.

const P = "game_gateway_";

export class GatewayMetrics extends GatewayCounters {
  readonly registry = new Registry();

  readonly connectionsActive: Gauge;
  readonly connectionsTotal: Counter;
  readonly sessionsActive: Gauge;
  readonly routingErrors: Counter<"error_type">;
  readonly connectionRejected: Counter<"reason">;
  readonly circuitBreakerState: Gauge<"backend">;
  readonly backendConnectionsActive: Gauge<"backend">;
  readonly backendConnectionSetupLatency: Histogram<"backend">;
  readonly backendConnectionLatency: Histogram<"backend">;
  readonly backendErrors: Counter<"backend" | "error_type">;
  readonly backendTimeouts: Counter<"backend">;
  readonly backendRetries: Counter<"backend">;
  readonly backendPoolActive: Gauge<"backend">;
  readonly backendPoolIdle: Gauge<"backend">;
  readonly connectionSetupLatency: Histogram<"service_type">;
  readonly configRefreshErrors: Counter<"config_type">;
  readonly configRefreshSuccess: Counter<"config_type">;
  /** From a frame's arrival to its write toward the other side. Series: see LatencyDirection. */
  readonly requestLatency: LatencyHistogram<"upstream" | "downstream">;
  readonly accessLogDropped: Counter;
  readonly configVersion: Gauge;
  /** Beyond the reference: why clients were closed, and protocol violations by side and reason. */
  readonly clientCloses: Counter<"reason">;
  readonly protocolViolations: Counter<"side" | "reason">;
  readonly framesDropped: Counter<"reason">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    super();
    const registers = [this.registry];
    const tallies = this.backendTallies;
    const messagesIn = this.messagesIn;
    const messagesOut = this.messagesOut;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: P });

    this.connectionsActive = new Gauge({ name: `${P}connections_active`, help: "Open client connections", registers });
    this.connectionsTotal = new Counter({ name: `${P}connections_total`, help: "Client connections accepted", registers });
    this.sessionsActive = new Gauge({ name: `${P}sessions_active`, help: "Live sessions", registers });
    this.routingErrors = new Counter({
      name: `${P}routing_errors_total`,
      help: "Sessions that could not be routed, by error type",
      labelNames: ["error_type"],
      registers,
    });
    this.connectionRejected = new Counter({
      name: `${P}connection_rejected_total`,
      help: "Client connections refused at admission, by reason",
      labelNames: ["reason"],
      registers,
    });
    const self = this;
    new Counter({
      name: `${P}rate_limit_rejected_total`,
      help: "Rate-limit rejections (new connections over the per-IP rate, frames over the per-session rate)",
      registers,
      collect() {
        this.reset();
        this.inc(self.rateLimitRejections);
      },
    });
    this.circuitBreakerState = new Gauge({
      name: `${P}circuit_breaker_state`,
      help: "Breaker per backend: 0 closed, 1 open, 2 half-open",
      labelNames: ["backend"],
      registers,
    });
    this.backendConnectionsActive = new Gauge({
      name: `${P}backend_connections_active`,
      help: "Open backend connections per endpoint",
      labelNames: ["backend"],
      registers,
    });
    new Counter({
      name: `${P}backend_requests_total`,
      help: "Frames sent to backends",
      labelNames: ["backend", "status"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) this.inc({ backend, status: "ok" }, t.framesOut);
      },
    });
    new Counter({
      name: `${P}backend_bytes_transmitted_total`,
      help: "Bytes exchanged with backends",
      labelNames: ["backend", "direction"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) {
          this.inc({ backend, direction: "out" }, t.bytesOut);
          this.inc({ backend, direction: "in" }, t.bytesIn);
        }
      },
    });
    new Counter({
      name: `${P}messages_processed_total`,
      help: "Client frames relayed, by direction and serverType",
      labelNames: ["direction", "service_type"],
      registers,
      collect() {
        this.reset();
        for (let t = 0; t < 256; t++) {
          if (messagesIn[t]! > 0) this.inc({ direction: "in", service_type: String(t) }, messagesIn[t]!);
          if (messagesOut[t]! > 0) this.inc({ direction: "out", service_type: String(t) }, messagesOut[t]!);
        }
      },
    });
    new Counter({
      name: `${P}backend_backpressure_pauses_total`,
      help: "Clients paused because their backend connection's queue passed high water",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) this.inc({ backend }, t.pauses);
      },
    });
    new Counter({
      name: `${P}backend_queue_limit_rejections_total`,
      help: "Client frames refused (the client closed, backend_congested) at a queue bound: one connection's (limit=connection) or all backends' together (limit=total)",
      labelNames: ["backend", "limit"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) {
          this.inc({ backend, limit: "connection" }, t.connectionLimitRejections);
          this.inc({ backend, limit: "total" }, t.totalLimitRejections);
        }
      },
    });
    new Counter({
      name: `${P}backend_queue_dropped_bytes_total`,
      help: "Bytes queued toward a backend that were never written: their connection closed first (backend lost, or a dedicated session ended while its backend lagged)",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) this.inc({ backend }, t.queueDroppedBytes);
      },
    });
    const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
    this.backendConnectionSetupLatency = new Histogram({
      name: `${P}backend_connection_setup_latency_seconds`,
      help: "Time to dial a backend connection",
      labelNames: ["backend"],
      buckets: latencyBuckets,
      registers,
    });
    this.backendConnectionLatency = new Histogram({
      name: `${P}backend_connection_latency_seconds`,
      help: "Ping/Pong round trip on backend connections",
      labelNames: ["backend"],
      buckets: latencyBuckets,
      registers,
    });
    this.backendErrors = new Counter({
      name: `${P}backend_errors_total`,
      help: "Backend connection errors and protocol violations, by type",
      labelNames: ["backend", "error_type"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) for (const [error_type, n] of t.errors) this.inc({ backend, error_type }, n);
      },
    });
    this.backendTimeouts = new Counter({ name: `${P}backend_timeouts_total`, help: "Backend dial/read timeouts", labelNames: ["backend"], registers });
    this.backendRetries = new Counter({ name: `${P}backend_retries_total`, help: "Backend re-dials", labelNames: ["backend"], registers });
    this.backendPoolActive = new Gauge({
      name: `${P}backend_pool_active`,
      help: "Backend connections carrying at least one session",
      labelNames: ["backend"],
      registers,
    });
    this.backendPoolIdle = new Gauge({
      name: `${P}backend_pool_idle`,
      help: "Open backend connections carrying no session",
      labelNames: ["backend"],
      registers,
    });
    this.connectionSetupLatency = new Histogram({
      name: `${P}connection_setup_latency_seconds`,
      help: "From client accept to its session being bound to a backend",
      labelNames: ["service_type"],
      buckets: latencyBuckets,
      registers,
    });
    this.configRefreshErrors = new Counter({
      name: `${P}config_refresh_errors_total`,
      help: "Config reloads refused",
      labelNames: ["config_type"],
      registers,
    });
    this.configRefreshSuccess = new Counter({
      name: `${P}config_refresh_success_total`,
      help: "Config reloads applied",
      labelNames: ["config_type"],
      registers,
    });
    this.requestLatency = new LatencyHistogram(
      `${P}request_latency_seconds`,
      "From a frame's arrival to its write toward the other side (upstream: client to backend)",
      "direction",
      ["upstream", "downstream"],
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.2],
    );
    this.registry.registerMetric(this.requestLatency as unknown as Metric);
    this.accessLogDropped = new Counter({
      name: `${P}access_log_dropped_total`,
      help: "Access-log records dropped because the batch queue was full",
      registers,
    });
    this.configVersion = new Gauge({
      name: `${P}config_version`,
      help: "Config version in force (1 at start, +1 per applied reload)",
      registers,
    });
    this.clientCloses = new Counter({
      name: `${P}client_closes_total`,
      help: "Client connections closed, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.protocolViolations = new Counter({
      name: `${P}protocol_violations_total`,
      help: "Frames that broke the wire contract, by side (client/backend) and reason",
      labelNames: ["side", "reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of self.clientViolations) this.inc({ side: "client", reason }, n);
        for (const [reason, n] of self.backendViolations) this.inc({ side: "backend", reason }, n);
      },
    });
    this.framesDropped = new Counter({
      name: `${P}frames_dropped_total`,
      help: "Frames not delivered, by reason",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of self.drops) this.inc({ reason }, n);
      },
    });
  }

  /**
   * Queue depths, read when scraped: bytes waiting toward each backend endpoint, and bytes of
   * pooled buffers in use (client output queues and partial input frames).
   */
  trackQueues(source: { backendQueues(): Iterable<{ endpoint: string; queuedBytes: number }>; pooledBytesInUse(): number }): void {
    const registers = [this.registry];
    new Gauge({
      name: `${P}backend_queued_bytes`,
      help: "Bytes queued toward a backend endpoint, not yet taken by its sockets",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const q of source.backendQueues()) this.set({ backend: q.endpoint }, q.queuedBytes);
      },
    });
    new Gauge({
      name: `${P}buffer_pool_in_use_bytes`,
      help: "Pooled buffer bytes in use: client output queues and partial input frames",
      registers,
      collect() {
        this.set(source.pooledBytesInUse());
      },
    });
  }

  /**
   * Span export's counts (registered only when spans are exported), read at scrape: a collector
   * that is down shows as failed and dropped spans, and the queue as pending.
   */
  trackSpanExport(stats: () => { pending: number; exported: number; failed: number; dropped: number }): void {
    const registers = [this.registry];
    new Counter({
      name: `${P}trace_spans_total`,
      help: "Finished spans by outcome: exported, failed (the export failed) or dropped (the export queue was full)",
      labelNames: ["outcome"],
      registers,
      collect() {
        const s = stats();
        this.reset();
        this.inc({ outcome: "exported" }, s.exported);
        this.inc({ outcome: "failed" }, s.failed);
        this.inc({ outcome: "dropped" }, s.dropped);
      },
    });
    new Gauge({
      name: `${P}trace_spans_pending`,
      help: "Finished spans waiting for or in an export (bounded by OTEL_BSP_MAX_QUEUE_SIZE)",
      registers,
      collect() {
        this.set(stats().pending);
      },
    });
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The value of one series (sum over label sets matching `labels`). Only tests call it. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.registry.getSingleMetric(name.startsWith(P) ? name : P + name);
    if (metric === undefined) throw new Error(`no metric ${name}`);
    const data = await metric.get();
    let sum = 0;
    for (const v of data.values as { value: number; labels: Record<string, unknown>; metricName?: string }[]) {
      // Histograms: count observations (the _count series), not buckets or sums.
      if (v.metricName !== undefined && v.metricName !== data.name && v.metricName !== `${data.name}_count`) continue;
      if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
    }
    return sum;
  }
}
