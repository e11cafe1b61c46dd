// BackendConnection as a BackendLink, shared by sessions (multiplexed) and one per session
// (dedicated): both run the one BackendLink contract suite against a real backend on loopback.
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { EndpointPool } from "../../src/backend/endpoint-pool.ts";
import type { BackendMode } from "../../src/config/types.ts";
import { Logger, ThrottledLog } from "../../src/log/logger.ts";
import { BufferPool, DEFAULT_CLASSES } from "../../src/net/buffer-pool.ts";
import { SharedQueueTally } from "../../src/net/socket-writer.ts";
import { BackendFrameLayout } from "../../src/protocol/layouts.ts";
import { SpanIdSource } from "../../src/protocol/trace-context.ts";
import { BackendRelay } from "../../src/session/backend-relay.ts";
import { SessionIdGenerator } from "../../src/session/session-id.ts";
import { SessionManager } from "../../src/session/session-manager.ts";
import { systemClock } from "../../src/time/clock.ts";
import { eventually } from "../support/eventually.ts";
import { type LinkFactory, backendLinkContract } from "../contracts/backend-link.contract.ts";

function endpointPoolLinks(mode: BackendMode): LinkFactory {
  return (port, limits) => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const log = new Logger("warn", { write: () => {} });
    const throttled = new ThrottledLog(log);
    const pool = new EndpointPool(`127.0.0.1:${port}`, "127.0.0.1", port, {
      settings: {
        mode,
        breaker: { failureThreshold: 5, windowMs: 60_000, openTimeoutMs: 30_000, halfOpenMaxRequests: 1 },
        pingIntervalMs: 30_000,
        pingTimeoutMs: 30_000,
        idleTimeoutMs: 300_000,
        maxRetries: 3,
        connectionsPerEndpoint: 2,
        retryDelayMs: 100,
        maxRetryDelayMs: 1_000,
        connection: {
          gatewayName: "contract",
          lifecycleMessages: true,
          dialTimeoutMs: 5_000,
          highWater: limits.highWater,
          limit: limits.limit,
          totalLimit: 1 << 30,
          traceContext: false,
          perSession: false,
          dialRetries: 0,
          dialRetryDelayMs: 100,
          writeTimeoutMs: 0,
          keepAliveMs: 30_000,
        },
      },
      layout: new BackendFrameLayout(1 << 20),
      buffers: new BufferPool({ classes: DEFAULT_CLASSES, maxIdleBytes: 1 << 20 }),
      frames: new BackendRelay({ sessions: new SessionManager(new SessionIdGenerator("contract"), 1_000), metrics, throttledLog: throttled, logger: log }),
      metrics,
      log,
      throttledLog: throttled,
      telemetry: { latency: metrics.requestLatency, spans: new SpanIdSource(), totalQueued: new SharedQueueTally() },
      clock: systemClock,
    });
    pool.start();
    return {
      bind(session) {
        if (!pool.attach(session)) throw new Error("the pool has no connection to bind to");
        return session.link!;
      },
      async close() {
        pool.close();
        await eventually(() => pool.finished, "the pool's connections to close");
      },
    };
  };
}

backendLinkContract("BackendConnection, multiplexed (2 shared connections)", endpointPoolLinks("multiplexed"));
backendLinkContract("BackendConnection, dedicated (one per session)", endpointPoolLinks("dedicated"));
