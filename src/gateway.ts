import { AdminServer } from "./admin/admin-server.ts";
import { GatewayMetrics } from "./admin/metrics.ts";
import { BackendRegistry } from "./backend/backend-registry.ts";
import { parseHostPort } from "./config/host-port.ts";
import type { GatewayConfig } from "./config/types.ts";
import { Logger, ThrottledLog } from "./log/logger.ts";
import { BufferPool, DEFAULT_CLASSES } from "./net/buffer-pool.ts";
import { TcpListener } from "./net/tcp-listener.ts";
import { BackendFrameLayout } from "./protocol/layouts.ts";
import { Router } from "./routing/router.ts";
import { BackendRelay } from "./session/backend-relay.ts";
import { SessionIdGenerator } from "./session/session-id.ts";
import { SessionManager } from "./session/session-manager.ts";
import { SessionService } from "./session/session-service.ts";

// The composition root: builds every part from one config and owns their lifetimes.
// Listeners -> SessionService -> Router -> BackendRegistry (pools, connections) -> BackendRelay.

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Register process-wide default metrics (off for tests that start many gateways). */
  readonly defaultMetrics?: boolean;
}

/** Re-dial backoff never waits longer than this, whatever retry_delay grows to. */
const MAX_REDIAL_DELAY_MS = 5_000;

export class Gateway {
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly sessions: SessionManager;
  readonly backends: BackendRegistry;
  readonly buffers: BufferPool;
  private readonly service: SessionService;
  private readonly listener: TcpListener;
  private readonly admin: AdminServer | null;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private draining = false;

  private constructor(
    readonly config: GatewayConfig,
    options: GatewayOptions,
  ) {
    this.log = options.logger ?? new Logger(config.log.level, undefined, { gateway: config.server.gateway_name });
    const throttled = new ThrottledLog(this.log);
    this.metrics = new GatewayMetrics({ defaultMetrics: options.defaultMetrics ?? true });
    this.buffers = new BufferPool({ classes: DEFAULT_CLASSES, maxIdleBytes: 64 * 1024 * 1024 });
    this.sessions = new SessionManager(
      new SessionIdGenerator(config.server.gateway_name),
      config.connection_pool.max_connections,
    );
    const relay = new BackendRelay(this.sessions, this.metrics, throttled);
    const cp = config.connection_pool;
    this.backends = new BackendRegistry({
      settings: {
        mode: config.backend.mode,
        connectionsPerEndpoint: config.backend.connections_per_endpoint,
        retryDelayMs: cp.retry_delay,
        maxRetryDelayMs: Math.max(MAX_REDIAL_DELAY_MS, cp.retry_delay),
        connection: {
          gatewayName: config.server.gateway_name,
          lifecycleMessages: config.backend.lifecycle_messages,
          dialTimeoutMs: cp.dial_timeout,
          highWater: config.backend.write_queue_high_water,
          limit: config.backend.write_queue_limit,
        },
      },
      layout: new BackendFrameLayout(config.backend.max_frame_size),
      buffers: this.buffers,
      frames: relay,
      metrics: this.metrics,
      log: this.log,
      throttledLog: throttled,
    });
    this.service = new SessionService(
      this.sessions,
      new Router(config.routing.rules),
      this.backends,
      { firstMessageMs: config.server.first_message_timeout, idleMs: cp.idle_timeout },
      this.metrics,
      this.log,
      throttled,
    );
    const listen = parseHostPort(config.server.listen_addr)!;
    this.listener = new TcpListener(
      {
        host: listen.host,
        port: listen.port,
        maxMessageSize: config.security.max_message_size,
        writeQueueLimit: config.server.client_write_queue_limit,
        closeTimeoutMs: cp.write_timeout,
        maxConnections: cp.max_connections,
      },
      this.service,
      this.buffers,
      this.metrics,
    );
    this.admin =
      config.server.health_check_port < 0
        ? null
        : new AdminServer(listen.host, config.server.health_check_port, this.metrics, {
            notReadyReason: () => (this.draining ? "draining" : null),
          });
  }

  static start(config: GatewayConfig, options: GatewayOptions = {}): Gateway {
    const gw = new Gateway(config, options);
    gw.backends.warm(new Router(config.routing.rules).endpoints());
    gw.listener.start();
    gw.admin?.start();
    gw.sweepTimer = setInterval(() => gw.service.sweep(), config.session.sweep_interval);
    gw.log.info("gateway listening", {
      listen: `${gw.listener.hostname}:${gw.listener.port}`,
      admin_port: gw.admin?.boundPort ?? null,
      routes: config.routing.rules.length,
      backend_mode: config.backend.mode,
    });
    return gw;
  }

  /** The client listener's bound port. */
  get port(): number {
    return this.listener.port;
  }

  get adminPort(): number {
    return this.admin?.boundPort ?? 0;
  }

  get clientConnections(): number {
    return this.listener.connections;
  }

  /** Stops accepting, closes every client (reason shutdown, Disconnect to backends), then the backends. */
  async stop(): Promise<void> {
    this.draining = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.listener.stop();
    this.service.closeAll("shutdown");
    // Let Disconnect frames reach the backends before their connections close.
    await new Promise((r) => setTimeout(r, 20));
    this.backends.close();
    await this.admin?.stop();
  }
}
