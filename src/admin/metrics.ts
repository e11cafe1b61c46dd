import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from "prom-client";
import type { ConnectionRefusal } from "../net/tcp-listener.ts";
import { GatewayCounters } from "../telemetry/counters.ts";
import { registerGoProcessExtras } from "./process-metrics.ts";
import { LatencyHistogram } from "../telemetry/latency-histogram.ts";

// Every metric the gateway exports, in one registry per gateway instance (so tests can run
// several gateways in one process). Names, label names, label values and histogram buckets are
// the reference gateway's (docs/metrics.md lists them), prefixed game_gateway_, with its standard
// unprefixed process_* metrics; where ours knows more, the detail is in additional label values
// or additional metrics, never in place of a reference value.
// Per-message counts live in GatewayCounters (src/telemetry, no dependencies), which this class
// extends so the data path can be handed the same object typed as the counters alone; they are
// folded into prom-client only when /metrics is scraped.

const P = "game_gateway_";

/** connection_rejected_total{reason}: the reference's values. */
export type RejectionReason = "ip_rate_limit" | "global_rate_limit" | "pool_closed_or_full" | "pool_and_queue_full";
const REFERENCE_REJECTION_REASONS: readonly RejectionReason[] = ["ip_rate_limit", "global_rate_limit", "pool_closed_or_full", "pool_and_queue_full"];

/**
 * The reference's reason for each of our refusals that it also makes; ours it never makes
 * (PROXY protocol, no peer address) keep their own name as an additional value. The exact
 * refusal is in connection_refusals_total{refusal} and the access log.
 */
const REJECTION_REASON_OF: Readonly<Partial<Record<ConnectionRefusal, RejectionReason>>> = {
  per_ip_limit: "ip_rate_limit",
  rate_limited: "ip_rate_limit",
  max_connections: "global_rate_limit",
};

/** config_type of config_refresh_*_total: the reference's values. A config file reload carries the routing rules. */
/** The reference's two, and ours: consul_endpoints, each load of the Consul health query (docs/fleet.md). */
export type ConfigType = "routing_rules" | "realm_mapping" | "consul_endpoints";
const CONFIG_TYPES: readonly ConfigType[] = ["routing_rules", "realm_mapping", "consul_endpoints"];

/** Buckets of 1 ms doubling, `n` of them (the reference's latency histograms). */
function doublingFromMs(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 0.001 * 2 ** i);
}

export class GatewayMetrics extends GatewayCounters {
  readonly registry = new Registry();

  readonly connectionsActive: Gauge;
  readonly connectionsTotal: Counter;
  readonly sessionsActive: Gauge;
  private readonly connectionRejected: Counter<"reason">;
  private readonly connectionRefusals: Counter<"refusal">;
  readonly circuitBreakerState: Gauge<"backend">;
  readonly backendConnectionsActive: Gauge<"backend">;
  readonly backendConnectionSetupLatency: Histogram<"backend">;
  /** The time a session waited for an open backend connection (0 when one was open already). */
  readonly backendConnectionLatency: Histogram<"backend">;
  /** Beyond the reference: Ping/Pong round trip on backend connections. */
  readonly backendPingRtt: Histogram<"backend">;
  readonly backendErrors: Counter<"backend" | "error_type">;
  readonly backendTimeouts: Counter<"backend">;
  readonly backendRetries: Counter<"backend">;
  readonly backendPoolActive: Gauge<"backend">;
  readonly backendPoolIdle: Gauge<"backend">;
  readonly connectionSetupLatency: Histogram<"service_type">;
  private readonly configRefreshErrors: Counter<"config_type">;
  private readonly configRefreshSuccess: Counter<"config_type">;
  private readonly configReloads: Counter<"source" | "result">;
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
    if (options.defaultMetrics ?? true) {
      // The reference's standard unprefixed process_* (and nodejs_*) metrics, and the same under
      // game_gateway_ as this gateway exported them before, for dashboards built on those.
      collectDefaultMetrics({ register: this.registry });
      registerGoProcessExtras(this.registry);
      collectDefaultMetrics({ register: this.registry, prefix: P });
    }

    this.connectionsActive = new Gauge({ name: `${P}connections_active`, help: "Open client connections", registers });
    this.connectionsTotal = new Counter({ name: `${P}connections_total`, help: "Client connections accepted", registers });
    this.sessionsActive = new Gauge({ name: `${P}sessions_active`, help: "Live sessions", registers });
    const self = this;
    new Counter({
      name: `${P}routing_errors_total`,
      help: "Clients whose session could not be routed or bound, by error type (not_found, circuit_breaker_open, connection_failed, message_too_large; ours: session_limit)",
      labelNames: ["error_type"],
      registers,
      collect() {
        this.reset();
        for (const [error_type, n] of self.routingErrors) this.inc({ error_type }, n);
      },
    });
    this.connectionRejected = new Counter({
      name: `${P}connection_rejected_total`,
      help: "Client connections refused at admission, by the reference's reason (ip_rate_limit: a per-IP limit; global_rate_limit: max_connections); ours beyond it (proxy_*, no_peer_address) by their own name",
      labelNames: ["reason"],
      registers,
    });
    for (const reason of REFERENCE_REJECTION_REASONS) this.connectionRejected.inc({ reason }, 0);
    this.connectionRefusals = new Counter({
      name: `${P}connection_refusals_total`,
      help: "Client connections refused at admission, by exact refusal (per_ip_limit, rate_limited, max_connections, proxy_*, ...): the detail of connection_rejected_total",
      labelNames: ["refusal"],
      registers,
    });
    new Counter({
      name: `${P}pool_cleanup_errors_total`,
      help: "Errors closing idle backend pool connections (the reference's; this gateway's pools have no cleanup step that can fail, so it stays 0)",
      registers,
    });
    new Counter({
      name: `${P}rate_limit_rejected_total`,
      help: "Rate-limit rejections (new connections refused by a per-IP limit, frames over the per-session rate)",
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
      help: "Client sessions routed to a backend: bound to an open connection (success) or not (error); one per session, not per message",
      labelNames: ["backend", "status"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) {
          this.inc({ backend, status: "success" }, t.sessionsBound);
          this.inc({ backend, status: "error" }, t.sessionBindFailures);
        }
      },
    });
    new Counter({
      name: `${P}backend_frames_total`,
      help: "Frames exchanged with backends (request: to the backend, response: from it), control frames included",
      labelNames: ["backend", "direction"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) {
          this.inc({ backend, direction: "request" }, t.framesOut);
          this.inc({ backend, direction: "response" }, t.framesIn);
        }
      },
    });
    new Counter({
      name: `${P}backend_bytes_transmitted_total`,
      help: "Bytes exchanged with backends (request: to the backend, response: from it)",
      labelNames: ["backend", "direction"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) {
          this.inc({ backend, direction: "request" }, t.bytesOut);
          this.inc({ backend, direction: "response" }, t.bytesIn);
        }
      },
    });
    new Counter({
      name: `${P}messages_processed_total`,
      help: "Client frames relayed, by direction (client_to_backend, backend_to_client) and serverType",
      labelNames: ["direction", "service_type"],
      registers,
      collect() {
        this.reset();
        for (let t = 0; t < 256; t++) {
          if (messagesIn[t]! > 0) this.inc({ direction: "client_to_backend", service_type: String(t) }, messagesIn[t]!);
          if (messagesOut[t]! > 0) this.inc({ direction: "backend_to_client", service_type: String(t) }, messagesOut[t]!);
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
    this.backendConnectionSetupLatency = new Histogram({
      name: `${P}backend_connection_setup_latency_seconds`,
      help: "Time to dial a backend connection",
      labelNames: ["backend"],
      buckets: doublingFromMs(12),
      registers,
    });
    this.backendConnectionLatency = new Histogram({
      name: `${P}backend_connection_latency_seconds`,
      help: "Time a session waited for an open backend connection: its dial in dedicated mode, 0 when a shared connection was open",
      labelNames: ["backend"],
      buckets: doublingFromMs(10),
      registers,
    });
    this.backendPingRtt = new Histogram({
      name: `${P}backend_ping_rtt_seconds`,
      help: "Ping/Pong round trip on backend connections",
      labelNames: ["backend"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.backendErrors = new Counter({
      name: `${P}backend_errors_total`,
      help: "Backend errors by type (timeout, connection_failed, circuit_breaker_open, notification_failed; ours: connection_lost and backend protocol violation reasons)",
      labelNames: ["backend", "error_type"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) for (const [error_type, n] of t.errors) this.inc({ backend, error_type }, n);
      },
    });
    new Counter({
      name: `${P}backend_connection_closes_total`,
      help: "Backend connections ended, by cause (dial_failed, dial_timeout, connection_lost, ping_timeout, write_timeout, session_ended, closing, framing violations)",
      labelNames: ["backend", "cause"],
      registers,
      collect() {
        this.reset();
        for (const [backend, t] of tallies) for (const [cause, n] of t.closes) this.inc({ backend, cause }, n);
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
      buckets: doublingFromMs(10),
      registers,
    });
    this.configRefreshErrors = new Counter({
      name: `${P}config_refresh_errors_total`,
      help: "Config reloads refused, by config_type (routing_rules: a config file reload or a Redis rules load; realm_mapping; consul_endpoints, ours: a Consul load)",
      labelNames: ["config_type"],
      registers,
    });
    this.configRefreshSuccess = new Counter({
      name: `${P}config_refresh_success_total`,
      help: "Config reloads applied, by config_type (routing_rules: a config file reload or a Redis rules load; realm_mapping; consul_endpoints, ours: a Consul load)",
      labelNames: ["config_type"],
      registers,
    });
    for (const config_type of CONFIG_TYPES) {
      this.configRefreshErrors.inc({ config_type }, 0);
      this.configRefreshSuccess.inc({ config_type }, 0);
    }
    this.configReloads = new Counter({
      name: `${P}config_reloads_total`,
      help: "Config reloads by what asked for them (file: the file changed, signal: SIGHUP, api) and result (success, error)",
      labelNames: ["source", "result"],
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

  /** A connection refused at admission: counted under the reference's reason and, exactly, as a refusal. */
  connectionRefused(refusal: string): void {
    const reason = REJECTION_REASON_OF[refusal as ConnectionRefusal];
    this.connectionRejected.inc({ reason: reason ?? refusal });
    this.connectionRefusals.inc({ refusal });
    if (reason === "ip_rate_limit") this.rateLimitRejections++;
  }

  /** A config reload applied (ok) or refused, asked for by `source`. */
  configRefreshed(configType: ConfigType, source: string, ok: boolean): void {
    (ok ? this.configRefreshSuccess : this.configRefreshErrors).inc({ config_type: configType });
    this.configReloads.inc({ source, result: ok ? "success" : "error" });
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
