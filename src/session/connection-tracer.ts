import type { TraceParent } from "../protocol/trace-context.ts";
import type { BackendTransport } from "./backend-side.ts";
import type { CloseReason } from "./client-port.ts";
import type { Session, SessionSpans } from "./session.ts";

// What the session layer tells a tracer: three calls per connection, none per message. The
// OpenTelemetry exporter (src/tracing) implements it; the data path never loads the SDK.
// Every call is synchronous and must not block or throw: a tracer that cannot keep up drops spans.

export type { SessionSpans } from "./session.ts";

/** Span export counts since start (the status page's span_export). pending never exceeds maxQueueSize. */
export interface SpanExportStats {
  /** Finished spans queued or in an export now. */
  readonly pending: number;
  readonly exported: number;
  /** Spans in exports that failed (collector down, refused, timed out). */
  readonly failed: number;
  /** Finished spans dropped because pending was at maxQueueSize. */
  readonly dropped: number;
  readonly maxQueueSize: number;
}

export interface ConnectionTracer {
  /**
   * A session was created on the connection's first frame and is about to be routed. Its trace
   * ID and span ID are set (session.traceId, session.spanId; session.traceParent, when the client
   * brought a traceparent, is the parent of its root span). openedAt: when the connection was
   * accepted (ms since the epoch). Returns the spans to keep on the session.
   */
  sessionStarted(session: Session, openedAt: number): SessionSpans;
  /**
   * The session is bound to `backend` ("host:port") reached over `transport`, or could not be
   * (null): routing is over.
   */
  sessionRouted(session: Session, spans: SessionSpans, backend: string | null, transport?: BackendTransport): void;
  /** The session's client is gone: every span of the session ends. */
  sessionEnded(session: Session, spans: SessionSpans, reason: CloseReason): void;
  /**
   * An admitted connection ended without becoming a session (no first frame in time, a first
   * frame with no route or broken, or the client left first): its connection spans, opened at
   * openedAt and ended now, under `parent` when the client brought a traceparent. Connections refused at accept get none (a flood of them must not
   * cost span encoding).
   */
  connectionEnded(client: string, openedAt: number, reason: CloseReason, parent: TraceParent | null): void;
  stats(): SpanExportStats;
  /** Exports what is queued and stops; bounded in time, an exporter that is down cannot hold it. */
  shutdown(): Promise<void>;
}
