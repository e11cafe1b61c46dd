import { type Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, type Tracer, trace } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  RandomIdGenerator,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { Logger } from "../log/logger.ts";
import { ThrottledLog } from "../log/logger.ts";
import type { CloseReason } from "../session/client-port.ts";
import type { BackendTransport } from "../session/backend-side.ts";
import type { ConnectionTracer, SessionSpans, SpanExportStats } from "../session/connection-tracer.ts";
import type { Session } from "../session/session.ts";
import type { OtlpSettings } from "./otlp-settings.ts";
import type { TraceParent } from "../protocol/trace-context.ts";

// The reference's four spans per connection, exported over OTLP/gRPC with the OpenTelemetry SDK.
// Loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set (src/tracing/load-tracer.ts).
//
//   gateway.handle_connection        accept -> client gone (the root: its trace ID is the session's)
//   └ gateway.handle_tcp_connection  the same span of time, on the TCP listener
//     ├ gateway.route_to_backend     first frame -> bound to a backend (or refused)
//     └ gateway.forward_connection   bound -> client gone; its span ID is the one every Trans of
//                                    the session carries in the 33-byte gate header
//                                    (gateway.grpc_forward for a gRPC backend, as the reference
//                                    names it in gRPC mode; its packets carry the same span_id)
//
// The session layer made both IDs (session.traceId, session.spanId) before any frame left; the
// SDK is handed them through PinnedIds, so the gate header, the access log and the export agree.
// The SDK's spans are made, with their recorded start times, only when the session ends: a live
// session holds a PendingSpans (times and backend), not four open SDK spans.

/** Close reasons that are a fault (the span's status is ERROR); the others are a normal end. */
const FAULTS: ReadonlySet<CloseReason> = new Set<CloseReason>([
  "client_error",
  "slow_reader",
  "partial_frame_timeout",
  "pending_input_limit",
  "malformed_frame",
  "no_route",
  "backend_unavailable",
  "backend_lost",
  "backend_congested",
  "rate_limited",
  "first_message_timeout",
]);

/**
 * The context a connection's root span starts in: the client's traceparent as a remote parent
 * (the SDK then takes its trace ID), else none (a new trace). Every connection is sampled, as the
 * reference samples them, whatever the caller's flag.
 */
function rootContext(parent: TraceParent | null): Context {
  if (parent === null) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId.toHex(),
    spanId: parent.parentSpanId.toHex(),
    traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

/** How long shutdown waits for the last export before it gives up on it. */
const SHUTDOWN_WAIT_MS = 3_000;
/**
 * Exports in flight at once: the processor starts one at a time, but one that timed out may
 * still be on the wire while the next starts. Past it an export fails at once (counted).
 */
const EXPORTS_IN_FLIGHT = 2;

/** Hands the SDK the session's IDs for the next span it starts; random IDs otherwise. */
class PinnedIds implements IdGenerator {
  traceId = "";
  spanId = "";
  private readonly random = new RandomIdGenerator();

  generateTraceId(): string {
    const id = this.traceId;
    if (id === "") return this.random.generateTraceId();
    this.traceId = "";
    return id;
  }

  generateSpanId(): string {
    const id = this.spanId;
    if (id === "") return this.random.generateSpanId();
    this.spanId = "";
    return id;
  }
}

/** What happened to finished spans; shared by the bound in front of the batch and the exporter behind it. */
class ExportTally {
  /** Queued in the batch processor or in an export now. */
  pending = 0;
  exported = 0;
  failed = 0;
  dropped = 0;
}

/**
 * In front of the batch processor: a finished span that would take pending past maxQueueSize is
 * dropped here (counted) before the processor sees it. Pending counts spans on the wire too, so an
 * exporter that is down or hung costs at most maxQueueSize spans of memory, whatever the traffic.
 */
class BoundedProcessor implements SpanProcessor {
  constructor(
    private readonly batch: SpanProcessor,
    private readonly tally: ExportTally,
    private readonly maxQueueSize: number,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const t = this.tally;
    if (t.pending >= this.maxQueueSize) {
      t.dropped++;
      return;
    }
    t.pending++;
    this.batch.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.batch.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.batch.shutdown();
  }
}

/** Behind the batch processor: counts each export's spans out of pending as its result comes. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly exporter: SpanExporter,
    private readonly tally: ExportTally,
    private readonly onFailure: (error: Error | undefined) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exporter.export(spans, (result) => {
      const t = this.tally;
      t.pending -= spans.length;
      if (result.code === ExportResultCode.SUCCESS) t.exported += spans.length;
      else {
        t.failed += spans.length;
        this.onFailure(result.error);
      }
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.exporter.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}

/**
 * What a live session keeps for its spans: times and the backend, about 50 bytes. The SDK's span
 * objects are made only when the session ends (with these start times), because four open SDK
 * spans per session cost about 8 KB each session for its whole life (workload d: 11,138 B per
 * idle session against 3,089 without export).
 */
class PendingSpans implements SessionSpans {
  readonly kind = "session-spans";
  /** When routing ended (ms since the epoch); 0 while routing. */
  routedAt = 0;
  /** null: not routed, or no backend could take the session. */
  backend: string | null = null;
  /** The backend is a gRPC one: its forward span is the reference's gRPC-mode gateway.grpc_forward. */
  grpc = false;

  constructor(
    readonly openedAt: number,
    readonly routeStartedAt: number,
  ) {}
}

export class OtlpConnectionTracer implements ConnectionTracer {
  private readonly ids = new PinnedIds();
  private readonly tally = new ExportTally();
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;

  constructor(
    private readonly settings: OtlpSettings,
    log: Logger,
  ) {
    const throttled = new ThrottledLog(log);
    const otlp = new OTLPTraceExporter({ url: settings.url, timeoutMillis: settings.exportTimeoutMs, concurrencyLimit: EXPORTS_IN_FLIGHT });
    const exporter = new CountingExporter(otlp, this.tally, (error) =>
      throttled.warn("span-export", "span export failed; the batch's spans are lost", { endpoint: settings.url, error: String(error?.message ?? error) }),
    );
    const batch = new BatchSpanProcessor(exporter, {
      maxQueueSize: settings.maxQueueSize,
      maxExportBatchSize: settings.maxExportBatchSize,
      scheduledDelayMillis: settings.scheduledDelayMs,
      exportTimeoutMillis: settings.exportTimeoutMs,
    });
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the built-in names.
    const resource = resourceFromAttributes(settings.resource).merge(detectResources({ detectors: [envDetector] }));
    this.provider = new BasicTracerProvider({
      resource,
      sampler: new AlwaysOnSampler(), // the reference samples every connection
      idGenerator: this.ids,
      spanProcessors: [new BoundedProcessor(batch, this.tally, settings.maxQueueSize)],
    });
    this.tracer = this.provider.getTracer("game-gateway");
    for (const w of settings.warnings) log.warn(w);
    log.info("exporting spans over OTLP/gRPC", { endpoint: settings.url, max_queue_size: settings.maxQueueSize });
  }

  stats(): SpanExportStats {
    const t = this.tally;
    return { pending: t.pending, exported: t.exported, failed: t.failed, dropped: t.dropped, maxQueueSize: this.settings.maxQueueSize };
  }

  sessionStarted(_s: Session, openedAt: number): SessionSpans {
    return new PendingSpans(openedAt, Date.now());
  }

  sessionRouted(_s: Session, handle: SessionSpans, backend: string | null, transport?: BackendTransport): void {
    const pending = handle as PendingSpans;
    pending.routedAt = Date.now();
    pending.backend = backend;
    pending.grpc = transport === "grpc";
  }

  sessionEnded(s: Session, handle: SessionSpans, reason: CloseReason): void {
    const p = handle as PendingSpans;
    const now = Date.now();
    const fault = FAULTS.has(reason);
    // With a traceparent the trace ID comes from the parent context, and the pinned one must stay unused.
    this.ids.traceId = s.traceId === null || s.traceParent !== null ? "" : s.traceId.toHex();
    const connection = this.tracer.startSpan(
      "gateway.handle_connection",
      {
        kind: SpanKind.SERVER,
        startTime: p.openedAt,
        attributes: { "client.address": s.client.remoteAddress, "session.id": s.id.toString(), "gateway.close_reason": reason },
      },
      rootContext(s.traceParent),
    );
    this.ids.traceId = ""; // a session without a trace ID must not lend its slot to the next span
    const tcp = this.tracer.startSpan(
      "gateway.handle_tcp_connection",
      { startTime: p.openedAt, attributes: { "network.transport": "tcp", "network.protocol.name": s.client.protocol } },
      trace.setSpan(ROOT_CONTEXT, connection),
    );
    const tcpContext = trace.setSpan(ROOT_CONTEXT, tcp);
    const route = this.tracer.startSpan(
      "gateway.route_to_backend",
      { startTime: p.routeStartedAt, attributes: { "server.type": s.serverType, "world.id": s.worldId } },
      tcpContext,
    );
    if (p.backend !== null) route.setAttribute("server.address", p.backend);
    else if (p.routedAt !== 0) route.setStatus({ code: SpanStatusCode.ERROR, message: "backend_unavailable" });
    else if (fault) route.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    route.end(p.routedAt !== 0 ? p.routedAt : now);
    if (p.backend !== null) {
      this.ids.spanId = s.spanId === null ? "" : s.spanId.toHex();
      const forward = this.tracer.startSpan(
        p.grpc ? "gateway.grpc_forward" : "gateway.forward_connection",
        {
          kind: SpanKind.CLIENT,
          startTime: p.routedAt,
          attributes: {
            "server.address": p.backend,
            "server.type": s.serverType,
            "world.id": s.worldId,
            "network.io.send": s.bytesIn,
            "network.io.receive": s.bytesOut,
            "gateway.messages.to_backend": s.messagesIn,
            "gateway.messages.to_client": s.messagesOut,
          },
        },
        tcpContext,
      );
      this.ids.spanId = "";
      if (fault) forward.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      forward.end(now);
    }
    if (fault) connection.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    tcp.end(now);
    connection.end(now);
  }

  connectionEnded(client: string, openedAt: number, reason: CloseReason, parent: TraceParent | null): void {
    const fault = FAULTS.has(reason);
    const connection = this.tracer.startSpan(
      "gateway.handle_connection",
      { kind: SpanKind.SERVER, startTime: openedAt, attributes: { "client.address": client, "gateway.close_reason": reason } },
      rootContext(parent),
    );
    const tcp = this.tracer.startSpan(
      "gateway.handle_tcp_connection",
      { startTime: openedAt, attributes: { "network.transport": "tcp" } },
      trace.setSpan(ROOT_CONTEXT, connection),
    );
    if (fault) {
      tcp.setStatus({ code: SpanStatusCode.ERROR, message: reason });
      connection.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    }
    tcp.end();
    connection.end();
  }

  async shutdown(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const giveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
    });
    try {
      await Promise.race([this.provider.shutdown().catch(() => {}), giveUp]);
    } finally {
      clearTimeout(timer);
    }
  }
}
