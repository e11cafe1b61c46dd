import { keepOldValues, restartOnlyChanges } from "./config/restart-only.ts";
import { AccessLog, DEFAULT_ACCESS_LOG } from "./admin/access-log.ts";
import { AdminServer } from "./admin/admin-server.ts";
import { GatewayMetrics, type ConfigType } from "./admin/metrics.ts";
import { type MessageTotals, RateMeter } from "./admin/rate-meter.ts";
import { BackendRegistry, checkGrpcLoaded } from "./backend/backend-registry.ts";
import type { GrpcPoolFactory } from "./backend/backend-pool.ts";
import type { GrpcTransport } from "./backend/grpc/load-grpc.ts";
import { breakerName } from "./backend/endpoint-pool.ts";
import { ConfigError } from "./config/load.ts";
import { loadConfigFileOffThread } from "./config/load-off-thread.ts";
import {
  adminAddressFromConfig,
  admissionFromConfig,
  bufferPoolFromConfig,
  listenerSettingsFromConfig,
  tlsFilesFromConfig,
  wsListenerFromConfig,
  wsListenerLimitsFromConfig,
  upgradePolicyFromConfig,
  listenerLimitsFromConfig,
  backendFrameLayoutFromConfig,
  grpcEndpointsFromConfig,
  grpcEndpointsOf,
  grpcPoolSettingsFromConfig,
  maxSessionsFromConfig,
  poolSettingsFromConfig,
  proxyProtocolFromConfig,
  sessionSettingsFromConfig,
} from "./config/module-options.ts";
import type { GatewayConfig, RouteRule } from "./config/types.ts";
import { RouteFeed, usesRouteFeed, type FeedEvent } from "./discovery/route-feed.ts";
import { Logger, type LogSink, ThrottledLog } from "./log/logger.ts";
import { type Binder, directBinder } from "./net/binder.ts";
import { BufferPool } from "./net/buffer-pool.ts";
import { TcpListener } from "./net/tcp-listener.ts";
import { WsListener } from "./net/ws-listener.ts";
import { loadTlsMaterial, sameTlsMaterial, TlsFileError, type TlsMaterial } from "./net/tls-material.ts";
import { Router } from "./routing/router.ts";
import { BackendRelay } from "./session/backend-relay.ts";
import { SessionIdGenerator, nodeHash, SINGLE_PROCESS, type WorkerSlot } from "./session/session-id.ts";
import { SessionManager } from "./session/session-manager.ts";
import { SessionService } from "./session/session-service.ts";
import type { ConnectionTracer } from "./session/connection-tracer.ts";
import type { Session } from "./session/session.ts";
import { AdmissionControl } from "./net/admission.ts";
import type { AdmissionGate } from "./net/admission-gate.ts";
import { fdShortfall, openFileLimit } from "./net/fd-limit.ts";
import { SharedQueueTally } from "./net/socket-writer.ts";
import { SpanIdSource } from "./protocol/trace-context.ts";
import { LatencyDirection } from "./telemetry/counters.ts";
import { type Clock, systemClock, waitUntil } from "./time/clock.ts";

// The composition root: builds every part from one config and owns their lifetimes. Each part's
// options come from config/module-options.ts; this file only wires the parts together.
// Listeners -> SessionService -> Router -> BackendRegistry (pools, connections) -> BackendRelay.
// Also the operator's handles: reload (hot config), drain (graceful shutdown) and status.

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Register process-wide default metrics (off for tests that start many gateways). */
  readonly defaultMetrics?: boolean;
  /** Where access-log batches go (default stdout). */
  readonly accessLogSink?: LogSink;
  /** Opens the listening sockets (default: bind afresh; the dev entry point passes a HotBinder). */
  readonly binder?: Binder;
  /**
   * Time for session deadlines, admission buckets, the drain, backend re-dials and breakers, and
   * the shutdown's close wait (default: the system clock).
   */
  readonly clock?: Clock;
  /** Exports each connection's spans (src/tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set); shut down with the gateway. */
  readonly tracer?: ConnectionTracer | null;
  /** Where NODE_IP (the Consul agent's default address) is read (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The gRPC backend transport (loadGrpcTransport()), needed when some route names a gRPC backend
   * (server.use_grpc, a rule's transport): loaded by the caller, asynchronously, before start.
   */
  readonly grpc?: GrpcTransport | null;
  /**
   * This gateway is worker `index` of a group of `count` (src/supervisor): its session IDs carry
   * the index, and its client listeners bind with SO_REUSEPORT beside the other workers'.
   * Default: a single process.
   */
  readonly worker?: WorkerSlot;
  /**
   * Applied to every config a file reload reads, before it is compared and applied: a worker pins
   * what its supervisor decided at start (its admin address, the listeners' bound ports).
   */
  readonly pinConfig?: (config: GatewayConfig) => GatewayConfig;
  /**
   * Where the per-IP limits are decided (default: this process's own AdmissionControl). A worker
   * of a group passes a RemoteAdmission, so the limits hold for the machine (src/net/admission-gate.ts).
   */
  readonly admissionGate?: AdmissionGate;
  /**
   * The config_version to start at (default 1): a worker of a group starts at its supervisor's,
   * so a worker restarted after reloads reports the group's version, not 1.
   */
  readonly initialVersion?: number;
  /**
   * Why the default worker count (server.workers: 0) came to one process ("CPU quota 1.0 of 8
   * CPUs"): the start line says it, as a group's does. Unset: the count was asked for.
   */
  readonly workersReason?: string;
}

/** What asked for a reload: the admin API, a change of the config file, or SIGHUP. */
export type ReloadSource = "api" | "file" | "signal";

/** One route's endpoints and how many answer: the /ready body and the status page. */
export interface RouteReachability {
  readonly server_type: number;
  readonly world_id: number;
  readonly service_name: string;
  readonly endpoints: number;
  readonly reachable: number;
}

export interface ReloadRecord {
  readonly at: string;
  readonly ok: boolean;
  /** Version in force after this attempt. */
  readonly version: number;
  readonly source: ReloadSource;
  readonly error?: string;
  /** Keys that changed in the file but need a restart; their old values stay in force. */
  readonly needsRestart?: readonly string[];
}

/**
 * How long shutdown waits for clients to close (after reason shutdown was queued to them) and then
 * for backends to take their Disconnects: long enough for a slow reader to take a small tail,
 * short enough that a stuck peer cannot hold the process. Counted on the gateway's clock: a test
 * with a manual clock whose client never closes ticks past it.
 */
const CLOSE_WAIT_MS = 5_000;
const RELOADS_KEPT = 20;
/** Drain progress is logged every graceful_shutdown_timeout / 6, within these bounds. */
const DRAIN_PROGRESS_MIN_MS = 250;
const DRAIN_PROGRESS_MAX_MS = 5_000;
const DRAIN_HINT = "signal again to exit now";
/** How often a gateway retired by a code reload checks whether its last client has left. */
const RETIRE_POLL_MS = 1_000;

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly sessions: SessionManager;
  readonly backends: BackendRegistry;
  readonly buffers: BufferPool;
  readonly startedAt = Date.now();
  private current: GatewayConfig;
  private version = 1;
  private readonly reloads: ReloadRecord[] = [];
  private readonly service: SessionService;
  private readonly listener: TcpListener<Session>;
  /** The dedicated WebSocket listener (server.ws_listen_addr); null when off. */
  private readonly wsListener: WsListener<Session> | null;
  /** The certificate the client listeners serve now; null: plain. */
  private tls: TlsMaterial | null;
  private readonly admin: AdminServer | null;
  private readonly accessLog: AccessLog | null;
  private readonly messageRates: RateMeter;
  private readonly clock: Clock;
  private readonly tracer: ConnectionTracer | null;
  /** Makes the pools of gRPC endpoints; null when the transport was not loaded. */
  private readonly grpcPools: GrpcPoolFactory | null;
  readonly admission: AdmissionGate;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private drainReason: string | null = null;
  private drained: Promise<void> | null = null;
  /** The file reload in progress, and at most one more asked for meanwhile (any number of asks join it). */
  private reloading: Promise<ReloadRecord> | null = null;
  private reloadQueued: Promise<ReloadRecord> | null = null;
  /** Routes from Redis and Consul; null when the config names neither. */
  private readonly feed: RouteFeed | null;
  /** The rules in force: the file's, combined with the feed's. */
  private routes: readonly RouteRule[];
  /** Counts Router builds, so a slow build finishing after a newer one is dropped. */
  private routerBuilds = 0;
  /** Counts changed Redis and Consul values, so a file reload compiled meanwhile is rebuilt with them. */
  private feedChanges = 0;
  private readonly throttled: ThrottledLog;
  readonly worker: WorkerSlot;
  private readonly pinConfig: (config: GatewayConfig) => GatewayConfig;

  private constructor(config: GatewayConfig, options: GatewayOptions) {
    // Before anything starts (timers, sockets): a gateway that cannot serve its routes is not built.
    checkGrpcLoaded(grpcEndpointsFromConfig(config), (options.grpc ?? null) !== null);
    this.current = config;
    this.clock = options.clock ?? systemClock;
    this.worker = options.worker ?? SINGLE_PROCESS;
    this.pinConfig = options.pinConfig ?? ((c) => c);
    this.version = options.initialVersion ?? 1;
    this.tracer = options.tracer ?? null;
    this.log = options.logger ?? new Logger(config.log.level, undefined, { gateway: config.server.gateway_name });
    const throttled = new ThrottledLog(this.log);
    this.throttled = throttled;
    this.routes = config.routing.rules;
    this.feed = usesRouteFeed(config)
      ? new RouteFeed({
          redis: config.redis,
          consul: config.consul,
          routing: config.routing,
          env: options.env ?? process.env,
          node: { name: config.server.gateway_name, hash: nodeHash(config.server.gateway_name) },
          onEvent: (e) => this.onFeedEvent(e),
        })
      : null;
    this.metrics = new GatewayMetrics({ defaultMetrics: options.defaultMetrics ?? true });
    this.metrics.configVersion.set(this.version);
    this.buffers = new BufferPool(bufferPoolFromConfig());
    this.sessions = new SessionManager(
      new SessionIdGenerator(config.server.gateway_name, Date.now, this.worker),
      maxSessionsFromConfig(config),
    );
    this.accessLog =
      config.log.access_log === "off"
        ? null
        : new AccessLog(
            options.accessLogSink ?? { write: (s) => process.stdout.write(s) },
            () => this.metrics.accessLogDropped.inc(),
            DEFAULT_ACCESS_LOG,
            // A worker's records name it, as its application log lines do (docs/architecture.md, "Workers").
            options.worker === undefined ? { gateway: config.server.gateway_name } : { gateway: config.server.gateway_name, worker: options.worker.index },
          );
    const relay = new BackendRelay({ sessions: this.sessions, metrics: this.metrics, throttledLog: throttled, logger: this.log });
    const telemetry = { latency: this.metrics.requestLatency, spans: new SpanIdSource(), totalQueued: new SharedQueueTally() };
    this.backends = new BackendRegistry({
      settings: poolSettingsFromConfig(config),
      layout: backendFrameLayoutFromConfig(config),
      buffers: this.buffers,
      frames: relay,
      metrics: this.metrics,
      log: this.log,
      throttledLog: throttled,
      telemetry,
      clock: this.clock,
    });
    const grpc = options.grpc ?? null;
    this.grpcPools =
      grpc === null
        ? null
        : grpc({
            settings: grpcPoolSettingsFromConfig(config),
            handler: relay,
            metrics: this.metrics,
            log: this.log,
            throttledLog: throttled,
            telemetry,
            clock: this.clock,
          });
    this.backends.routeGrpc({ endpoints: grpcEndpointsFromConfig(config), factory: this.grpcPools });
    this.service = new SessionService({
      ...sessionSettingsFromConfig(config),
      sessions: this.sessions,
      router: new Router(config.routing.rules),
      backends: this.backends,
      metrics: this.metrics,
      log: this.log,
      throttledLog: throttled,
      accessLog: this.accessLog,
      tracer: this.tracer,
      now: this.clock.now,
    });
    this.admission = options.admissionGate ?? new AdmissionControl(admissionFromConfig(config), this.clock.now);
    this.listener = new TcpListener({
      ...listenerSettingsFromConfig(config),
      events: this.service,
      buffers: this.buffers,
      metrics: this.metrics,
      admission: this.admission,
      now: this.clock.now,
      otherConnections: () => this.wsListener?.connections ?? 0,
    });
    // Read before anything binds: a bad file refuses the start.
    this.tls = loadTlsMaterial(tlsFilesFromConfig(config));
    const ws = wsListenerFromConfig(config);
    this.wsListener =
      ws === null
        ? null
        : new WsListener({
            options: ws,
            events: this.service,
            buffers: this.buffers,
            metrics: this.metrics,
            admission: this.admission,
            now: this.clock.now,
            otherConnections: () => this.listener.connections,
            upgrade: upgradePolicyFromConfig(config),
            // One pending_input_limit budget for every client, as one max_connections.
            heldInput: this.listener.heldInputTally,
          });
    this.metrics.trackQueues({
      backendQueues: () => this.backends.all().map((p) => ({ endpoint: p.endpoint, queuedBytes: p.queuedBytes })),
      pooledBytesInUse: () => this.buffers.stats().outstandingBytes,
    });
    const tracer = this.tracer;
    if (tracer !== null) this.metrics.trackSpanExport(() => tracer.stats());
    this.messageRates = new RateMeter(() => this.messageTotals());
    const admin = adminAddressFromConfig(config);
    this.admin = admin === null ? null : new AdminServer(admin.host, admin.port, this);
  }

  /**
   * Builds and starts a gateway; throws ListenError when the client or admin port cannot be
   * bound, TlsFileError when server.tls names a file that is missing or not what it should be.
   */
  static start(config: GatewayConfig, options: GatewayOptions = {}): Gateway {
    const gw = new Gateway(config, options);
    const binder = options.binder ?? directBinder;
    try {
      const shared = gw.worker.count > 1;
      gw.listener.start("server.listen_addr", binder, gw.tls, shared);
      gw.wsListener?.start("server.ws_listen_addr", shared || binder !== directBinder, gw.tls);
      gw.admin?.start(config.admin.listen_addr !== "" ? "admin.listen_addr" : "server.health_check_port", binder);
    } catch (e) {
      gw.listener.stop();
      gw.wsListener?.stop();
      gw.accessLog?.close();
      gw.messageRates.stop();
      void gw.tracer?.shutdown();
      throw e;
    }
    gw.backends.retain(new Router(config.routing.rules).endpoints());
    gw.sweepTimer = setInterval(() => {
      gw.service.sweep();
      gw.listener.sweep();
      gw.wsListener?.sweep();
      gw.backends.healthCheck();
      gw.backends.reapRetired();
    }, config.session.sweep_interval);
    gw.checkFdLimit(config);
    gw.feed?.start();
    gw.log.info("gateway listening", {
      listen: `${gw.listener.hostname}:${gw.listener.port}`,
      admin_port: gw.admin?.boundPort ?? null,
      routes: config.routing.rules.length,
      backend_mode: config.backend.mode,
      ...(options.workersReason === undefined ? {} : { workers: 1, workers_reason: options.workersReason }),
      ...(gw.wsListener === null ? {} : { ws_listen: `${gw.wsListener.hostname}:${gw.wsListener.port}${config.server.ws_path}` }),
    });
    return gw;
  }

  /** Warns when the configured connections cannot all be open at once within the open-file limit. */
  private checkFdLimit(c: GatewayConfig): void {
    const limit = openFileLimit();
    if (limit === undefined) return;
    const endpoints = new Router(c.routing.rules).endpoints().length;
    const demand = {
      clients: c.connection_pool.max_connections,
      backends: c.backend.mode !== "multiplexed" ? c.connection_pool.max_connections : endpoints * c.backend.connections_per_endpoint,
      admin: this.admin === null ? 0 : c.admin.max_connections,
    };
    const short = fdShortfall(limit, demand);
    if (short === undefined) return;
    this.log.warn("open-file limit too low for the configured connections: raise the hard limit (ulimit -Hn, LimitNOFILE) or lower them", {
      fd_limit: short.limit,
      fd_hard_limit: limit.hard,
      fds_needed: short.needed,
      max_connections: demand.clients,
      backend_connections: demand.backends,
      admin_max_connections: demand.admin,
    });
  }

  /** The config in force. */
  get config(): GatewayConfig {
    return this.current;
  }

  get configVersion(): number {
    return this.version;
  }

  get recentReloads(): readonly ReloadRecord[] {
    return this.reloads;
  }

  /** The client listener's bound port. */
  get port(): number {
    return this.listener.port;
  }

  /** The dedicated WebSocket listener's bound port (0 when it is off). */
  get wsPort(): number {
    return this.wsListener?.port ?? 0;
  }

  /** Client connections on every listener. */
  private get allClients(): number {
    return this.listener.connections + (this.wsListener?.connections ?? 0);
  }

  private stopListening(): void {
    this.listener.stop();
    this.wsListener?.stop();
  }

  get adminPort(): number {
    return this.admin?.boundPort ?? 0;
  }

  get clientConnections(): number {
    return this.allClients;
  }

  /** null when ready for traffic; otherwise why not (the /ready body). */
  notReadyReason(): string | null {
    if (this.drainReason !== null) return this.drainReason;
    const notLoaded = this.feed?.notLoadedReason(this.current.routing.rules.length > 0) ?? null;
    if (notLoaded !== null) return notLoaded;
    if (this.routes.length === 0) return "no routes loaded";
    return null;
  }

  routeReachability(): RouteReachability[] {
    return this.routes.map((r) => ({
      server_type: r.server_type,
      world_id: r.world_id,
      service_name: r.service_name,
      endpoints: r.endpoints.length,
      reachable: this.backends.reachableCount(r.endpoints),
    }));
  }

  /**
   * Applies a new config without dropping sessions: routes, timeouts, limits and log level take
   * effect for what happens next; live sessions keep their endpoint (a removed endpoint's pool
   * serves them until they end). Keys that need a restart keep their old values and are reported.
   */
  reload(
    next: GatewayConfig,
    source: ReloadSource = "api",
    router = new Router(this.rulesWith(next.routing.rules), this.feed?.realms),
    version = this.version + 1,
  ): ReloadRecord {
    const old = this.current;
    const needsRestart = restartOnlyChanges(next, old);
    // Re-read even when the paths are the same: rotation usually rewrites the files in place.
    // Throws TlsFileError, changing nothing, when a file is bad. Turning TLS on or off needs a restart.
    const tls = loadTlsMaterial(tlsFilesFromConfig(next));
    if ((tls === null) !== (this.tls === null)) needsRestart.push("server.tls");
    const effective = keepOldValues(next, old, needsRestart);
    // First: throws, changing nothing, when the new routes name gRPC backends and the transport was not loaded.
    // The routes in force: the file's with Redis' and Consul's, all under the same transport decision.
    this.backends.routeGrpc({ endpoints: grpcEndpointsOf(this.rulesWith(effective.routing.rules), effective.server.use_grpc), factory: this.grpcPools });
    if (tls !== null && this.tls !== null && !sameTlsMaterial(tls, this.tls)) this.rotateTls(tls, effective.server.tls.cert_file);
    this.current = effective;
    this.version = version;
    this.log.setLevel(effective.log.level);
    // routing.rules is never restart-only, so `router` (compiled from next) is effective's router.
    this.routerBuilds++;
    this.routes = this.rulesWith(effective.routing.rules);
    this.service.reconfigure(router, sessionSettingsFromConfig(effective));
    this.admission.update(admissionFromConfig(effective));
    this.sessions.maxSessions = maxSessionsFromConfig(effective);
    this.listener.update(listenerLimitsFromConfig(effective), proxyProtocolFromConfig(effective), upgradePolicyFromConfig(effective));
    this.wsListener?.update(wsListenerLimitsFromConfig(effective), upgradePolicyFromConfig(effective));
    const record: ReloadRecord = {
      at: new Date().toISOString(),
      ok: true,
      version: this.version,
      source,
      ...(needsRestart.length > 0 ? { needsRestart } : {}),
    };
    this.remember(record);
    this.metrics.configVersion.set(this.version);
    this.metrics.configRefreshed("routing_rules", source, true);
    this.log.info("config reloaded", { version: this.version, source, routes: this.routes.length });
    if (needsRestart.length > 0) {
      this.log.warn("config keys changed that need a restart; old values kept", { keys: needsRestart });
    }
    return record;
  }

  /** Serves `tls` to new clients on every client listener; live sessions keep their connections. */
  private rotateTls(tls: TlsMaterial, certFile: string): void {
    this.listener.rotateTls(tls);
    this.wsListener?.rotateTls(tls);
    this.tls = tls;
    this.log.info("TLS certificate rotated", { cert_file: certFile });
  }

  /**
   * Reads, validates and applies a config file; an invalid file changes nothing. Reading and
   * validating run in a worker, off the data path. Asks that arrive while one runs are served by
   * one more run after it (so the file's latest content wins, and reloads never pile up).
   */
  reloadFromFile(path: string, source: ReloadSource = "file"): Promise<ReloadRecord> {
    if (this.reloading === null) {
      this.reloading = this.loadAndApply(path, source).finally(() => {
        this.reloading = null;
      });
      return this.reloading;
    }
    this.reloadQueued ??= this.reloading.then(() => {
      this.reloadQueued = null;
      return this.reloadFromFile(path, source);
    });
    return this.reloadQueued;
  }

  /**
   * Applies a config already read and validated elsewhere (a group's supervisor reads the file once
   * for all its workers), as a file reload applies what it read.
   */
  applyConfig(config: GatewayConfig, source: ReloadSource, version?: number): Promise<ReloadRecord> {
    return this.loadAndApply(null, source, async () => ({ config, warnings: [] }), version);
  }

  private async loadAndApply(
    path: string | null,
    source: ReloadSource,
    load: () => Promise<{ config: GatewayConfig; warnings: readonly string[] }> = () => loadConfigFileOffThread(path!),
    version?: number,
  ): Promise<ReloadRecord> {
    try {
      const { config: read, warnings } = await load();
      const config = this.pinConfig(read);
      for (const w of warnings) this.log.warn("config warning", { warning: w });
      const changesSeen = this.feedChanges;
      const record = this.reload(config, source, await Router.compileInSlices(this.rulesWith(config.routing.rules), this.feed?.realms), version);
      // A Redis or Consul change that arrived while this compiled is not in it (its own build was superseded).
      if (this.feedChanges !== changesSeen) void this.rebuildRouter("reload");
      return record;
    } catch (e) {
      const error = e instanceof ConfigError || e instanceof TlsFileError ? e.message : String(e);
      const record: ReloadRecord = { at: new Date().toISOString(), ok: false, version: this.version, source, error };
      this.remember(record);
      this.metrics.configRefreshed("routing_rules", source, false);
      this.log.error("config reload refused; previous config stays in force", { path, error });
      return record;
    }
  }

  /** The rules in force with these file rules: combined with Redis' and Consul's (src/discovery/route-feed.ts). */
  private rulesWith(fileRules: readonly RouteRule[]): readonly RouteRule[] {
    return this.feed === null ? fileRules : this.feed.rules(fileRules);
  }

  /** A Redis or Consul load: counted, logged when it failed, and a changed value swaps the Router. */
  private onFeedEvent(e: FeedEvent): void {
    const refusal = e.ok && e.changed ? this.missingGrpcTransport() : null;
    this.metrics.configRefreshed(configTypeOf(e.kind), e.kind === "consul" ? "consul" : "redis", e.ok && refusal === null);
    if (!e.ok) {
      // Keyed by the error too: a new refusal is said at once, the same one (Redis down) once a while.
      this.throttled.warn(`feed:${e.kind}:${e.error}`, "route source refresh failed; the last good routes stay in force", { source: e.kind, error: e.error });
      return;
    }
    if (refusal !== null) {
      this.throttled.warn(`feed:${e.kind}:grpc`, "route source refresh refused; the last good routes stay in force", { source: e.kind, error: refusal });
      return;
    }
    if (e.changed && e.ignored !== undefined && e.ignored.length > 0) {
      // Accepted as the reference accepts it; said once per distinct value, then throttled.
      this.throttled.warn(`feed:${e.kind}:ignored:${e.ignored.join("|")}`, "route source value read with parts ignored, as the reference ignores them", { source: e.kind, ignored: e.ignored });
    }
    if (e.changed) {
      this.feedChanges++;
      void this.rebuildRouter(e.kind);
    }
  }

  /**
   * Why the routes in force cannot be served, or null: they name gRPC backends and the transport
   * was not loaded (the CLI loads it whenever Redis or Consul is configured; an embedder may not).
   */
  private missingGrpcTransport(): string | null {
    if (this.grpcPools !== null) return null;
    const named = grpcEndpointsOf(this.rulesWith(this.current.routing.rules), this.current.server.use_grpc).size > 0;
    return named ? "routes name gRPC backends (server.use_grpc or a rule's transport: grpc) but the gRPC transport is not loaded: restart the gateway" : null;
  }

  /** Compiles the routes in force off the data path (in slices), then swaps them in as a reload does. */
  private async rebuildRouter(cause: FeedEvent["kind"] | "reload"): Promise<void> {
    const build = ++this.routerBuilds;
    const rules = this.rulesWith(this.current.routing.rules);
    const router = await Router.compileInSlices(rules, this.feed?.realms);
    // A newer build (or a file reload) started meanwhile: its routes are newer than these.
    if (build !== this.routerBuilds || this.drainReason === "stopping") return;
    // Routes from Redis and Consul get the file rules' transport decision (server.use_grpc, a rule's transport).
    const grpcEndpoints = grpcEndpointsOf(rules, this.current.server.use_grpc);
    // Unservable without the transport (counted and warned by onFeedEvent): the routes in force stay.
    if (grpcEndpoints.size > 0 && this.grpcPools === null) return;
    this.backends.routeGrpc({ endpoints: grpcEndpoints, factory: this.grpcPools });
    this.routes = rules;
    this.service.reconfigure(router, sessionSettingsFromConfig(this.current));
    this.log.info("routes updated", { source: cause, routes: rules.length, realms: this.feed?.realms.size ?? 0 });
  }

  private remember(r: ReloadRecord): void {
    this.reloads.push(r);
    if (this.reloads.length > RELOADS_KEPT) this.reloads.shift();
  }

  /**
   * Graceful shutdown: not ready at once; after server.drain_delay the listener closes; live
   * sessions carry on until they end or graceful_shutdown_timeout passes; the rest are closed
   * with reason shutdown (their backends get Disconnect); backends close once that is written.
   */
  drain(): Promise<void> {
    this.drained ??= this.runDrain();
    return this.drained;
  }

  private async runDrain(): Promise<void> {
    const c = this.current;
    this.drainReason = "draining";
    this.log.info("draining", {
      sessions: this.sessions.size,
      drain_delay_ms: c.server.drain_delay,
      graceful_shutdown_timeout_ms: c.graceful_shutdown_timeout,
      hint: DRAIN_HINT,
    });
    const clock = this.clock;
    const deadline = clock.now() + c.server.drain_delay + c.graceful_shutdown_timeout;
    // An operator watching a drain that may take minutes must see it is moving, and how to cut it short.
    const every = Math.min(DRAIN_PROGRESS_MAX_MS, Math.max(DRAIN_PROGRESS_MIN_MS, c.graceful_shutdown_timeout / 6));
    const progress = setInterval(() => {
      this.log.info("drain progress", {
        sessions_left: this.sessions.size,
        clients_left: this.allClients,
        seconds_to_deadline: Math.max(0, Math.ceil((deadline - clock.now()) / 1000)),
        hint: DRAIN_HINT,
      });
    }, every);
    try {
      if (c.server.drain_delay > 0) await clock.sleep(c.server.drain_delay);
      this.stopListening();
      while (this.allClients > 0 && clock.now() < deadline) await clock.sleep(25);
    } finally {
      clearInterval(progress);
    }
    await this.shutdown();
  }

  /**
   * Dev hot reload (`bun --hot`): a Gateway built from the newer code has reloaded the listening
   * sockets with its handlers and takes every new client. This one keeps the sessions it has, on
   * the code they started with, until they end (idle timeouts still apply), then closes its
   * backends. stop() still closes them at once.
   */
  retire(): Promise<void> {
    this.listener.handOver();
    this.admin?.handOver();
    // The newer code's WebSocket listener shares the port (reusePort): this one stops taking clients.
    this.wsListener?.stop();
    this.drainReason ??= "replaced by reloaded code";
    return (async () => {
      while (this.allClients > 0 && this.drained === null) await Bun.sleep(RETIRE_POLL_MS);
      await (this.drained ??= this.shutdown("retired"));
    })();
  }

  /**
   * For a forced exit: records every live session as ended by the shutdown, then writes out the
   * access records still batched, since no close event or shutdown will.
   */
  flushAccessLog(): void {
    this.service.recordLiveSessions("shutdown");
    this.accessLog?.flush();
  }

  /** Immediate shutdown: every client closed with reason shutdown, then the backends. */
  stop(): Promise<void> {
    this.drainReason ??= "stopping";
    this.drained ??= (async () => {
      this.stopListening();
      await this.shutdown();
    })();
    return this.drained;
  }

  /** `retired`: a dev code reload replaced this gateway; the process and its listeners go on. */
  private async shutdown(how: "stopped" | "retired" = "stopped"): Promise<void> {
    this.feed?.stop(); // no wait: a Redis or Consul that does not answer must not hold up the stop
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const remaining = this.allClients;
    this.service.closeAll("shutdown");
    await waitUntil(this.clock, () => this.allClients === 0, CLOSE_WAIT_MS);
    await this.backends.close(CLOSE_WAIT_MS);
    this.accessLog?.close();
    this.messageRates.stop();
    await this.tracer?.shutdown(); // the sessions' last spans, bounded in time
    await this.admin?.stop();
    if (how === "retired") this.log.info("previous code's gateway retired: its sessions have ended", { closed_at_shutdown: remaining });
    else this.log.info("gateway stopped", { closed_at_shutdown: remaining });
  }

  private messageTotals(): MessageTotals {
    const m = this.metrics;
    let messagesIn = 0;
    let messagesOut = 0;
    for (let t = 0; t < 256; t++) {
      messagesIn += m.messagesIn[t]!;
      messagesOut += m.messagesOut[t]!;
    }
    return { in: messagesIn, out: messagesOut };
  }

  /** A JSON-ready snapshot for /debug/stats and the status page. */
  status() {
    const m = this.metrics;
    const totals = this.messageTotals();
    const ms = (s: number): number | null => (Number.isFinite(s) ? s * 1000 : null);
    const latency = (series: number) => ({
      p50_ms: ms(m.requestLatency.quantile(series, 0.5)),
      p90_ms: ms(m.requestLatency.quantile(series, 0.9)),
      p99_ms: ms(m.requestLatency.quantile(series, 0.99)),
      count: m.requestLatency.count(series),
    });
    return {
      gateway: this.current.server.gateway_name,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.notReadyReason() === null,
      not_ready_reason: this.notReadyReason(),
      config_version: this.version,
      connections: this.allClients,
      pending_first_frame: this.service.pendingConnections,
      sessions: this.sessions.size,
      messages: { ...totals, ...this.messageRates.rates(totals) },
      latency: { upstream: latency(LatencyDirection.Upstream), downstream: latency(LatencyDirection.Downstream) },
      buffers: this.buffers.stats(),
      backends: this.backends.all().map((p) => ({
        endpoint: p.endpoint,
        connections_open: p.openConnections,
        sessions: p.sessions,
        queued_bytes: p.queuedBytes,
        breaker: breakerName(p.breaker.state),
        reachable: p.reachable,
      })),
      routes: this.routeReachability(),
      reloads: [...this.reloads].reverse(),
      /** null when spans are not exported (OTEL_EXPORTER_OTLP_ENDPOINT unset). */
      span_export: this.tracer?.stats() ?? null,
    };
  }
}

export type GatewayStatus = ReturnType<Gateway["status"]>;

/** The config_type a route source's loads are counted under (consul_endpoints is ours: the reference has no Consul counter). */
function configTypeOf(kind: FeedEvent["kind"] | "reload"): ConfigType {
  return kind === "consul" ? "consul_endpoints" : kind === "reload" ? "routing_rules" : kind;
}
