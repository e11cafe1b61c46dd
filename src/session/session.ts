import type { ClientPort, CloseReason } from "../net/client-port.ts";
import type { TokenBucket } from "../net/token-bucket.ts";
import type { SpanId, TraceId, TraceParent } from "../protocol/trace-context.ts";
import { type SessionId, sessionIdFromParts } from "./session-id.ts";

// One player's session: a client port bound for life to one backend endpoint.
// Fields are plain and mutable on purpose: they are updated per message on the hot path.

/** The backend side of a session, whatever carries it (raw TCP today; gRPC streams later). */
export interface BackendLink {
  /** "host:port" of the endpoint this link belongs to. */
  readonly endpoint: string;
  /** Opcode 2 toward the backend, before the session's first Trans. */
  sendConnect(session: Session): void;
  /**
   * Forwards one client frame (8-byte client header + body at b[off, off+len)) as a Trans.
   * Returns false, queuing nothing, when the link is at its hard bound. When the link is merely
   * congested it pauses reading from the session's client and resumes it once relieved.
   */
  sendTrans(session: Session, b: Uint8Array, off: number, len: number): boolean;
  /** The session ended: Disconnect (opcode 3) toward the backend, and the link forgets it. */
  release(session: Session, reason: CloseReason): void;
}

/** The spans a ConnectionTracer keeps for one session (connection-tracer.ts), opaque to this layer. */
export interface SessionSpans {
  readonly kind: "session-spans";
}

export interface SessionRoute {
  readonly serverType: number;
  readonly worldId: number;
  readonly instId: number;
}

export class Session {
  /**
   * Wall-clock ms when it was created: the time its ID carries, passed in by the manager rather than
   * read here, because a clock read (Date.now, tens of ns) was the constructor's largest cost.
   */
  readonly createdAt: number;
  lastActive: number;
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  /** Set by the backend side once bound (assigned after registration, before any send). */
  link: BackendLink | null = null;
  /** The endpoint routing chose, kept after the link is lost: the access record's server.address. */
  endpoint: string | null = null;
  /** The session has had an open backend connection (counted once in backend_requests_total). */
  backendReached = false;
  /** Neighbours in the link's SessionList (see session-list.ts); maintained by the link. */
  prevOnLink: Session | null = null;
  nextOnLink: Session | null = null;
  closeReason: CloseReason | null = null;
  /** When its client connected, on the session service's clock: access records time the connection. */
  connectedAt: number;
  /**
   * Bytes this session queued on its link in the link's current accounting window (linkWindow):
   * a congested link pauses the sessions above the mean share first.
   */
  linkBytes = 0;
  linkWindow = -1;
  /** Owned by BackendRelay: the last multicast packet delivered to this session (duplicates in its list are skipped). */
  multicastMark = 0;
  /** Owned by BackendRelay: this session's client is on the relay's list to flush at chunk end. */
  relayFlushQueued = false;
  /** Message rate limit bucket (security.message_rate_limit), created on first use. */
  rate: TokenBucket | null = null;
  // The route is kept as three fields rather than an object: one object less per session.
  readonly serverType: number;
  readonly worldId: number;
  readonly instId: number;
  /** W3C trace ID when trace propagation or span export is on. */
  traceId: TraceId | null = null;
  /**
   * Set with traceId: the span ID every Trans of the session carries in the 33-byte gate header,
   * which is also the ID of its exported gateway.forward_connection span.
   */
  spanId: SpanId | null = null;
  /** The trace context the client's WebSocket upgrade carried: its trace ID is traceId, its span the root span's parent. */
  traceParent: TraceParent | null = null;
  /** The session's exported spans while span export is on (src/tracing), else null. */
  spans: SessionSpans | null = null;
  private idCache: SessionId | null = null;

  constructor(
    readonly hi: number,
    readonly lo: number,
    readonly client: ClientPort<Session>,
    route: SessionRoute,
    createdAt: number,
  ) {
    this.createdAt = createdAt;
    this.lastActive = createdAt;
    this.connectedAt = createdAt;
    this.serverType = route.serverType;
    this.worldId = route.worldId;
    this.instId = route.instId;
  }

  get id(): SessionId {
    return (this.idCache ??= sessionIdFromParts(this.hi, this.lo));
  }
}
