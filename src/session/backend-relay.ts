import { type GatewayCounters, bump } from "../telemetry/counters.ts";
import type { Logger, ThrottledLog } from "../log/logger.ts";
import { CLIENT_HEADER_SIZE, MAX_CLIENT_FRAME, writeClientHeader } from "../protocol/client-frame.ts";
import {
  BACKEND_FRAME_PREFIX,
  readI64Hi,
  readI64Lo,
  readServerServerId,
  readServerType,
} from "../protocol/server-frame.ts";
import type { BackendViolation } from "../protocol/violations.ts";
import { copyBytes } from "../bytes/copy-bytes.ts";
import type { BackendFrameSource } from "./backend-side.ts";
import type { Session } from "./session.ts";
import type { SessionManager } from "./session-manager.ts";

// Backend -> client delivery. A backend frame's body is preceded by 29 header bytes that are
// spent once parsed, so a Trans or Broadcast becomes a client frame by writing the 8-byte client
// header over the bytes just before the body and queuing that slice. Frames are queued per client
// while a backend chunk is handled and each client is written once at the chunk's end: with
// several frames in flight a client gets them in one syscall (the syscall is the dominant cost).
// A client owed a single frame is written straight from the chunk (lend), with no copy.
// A backend may only address sessions bound to its own endpoint; anything else is dropped.

const CLIENT_FRAME_AT = BACKEND_FRAME_PREFIX - CLIENT_HEADER_SIZE;

export interface BackendRelayParts {
  /** Where a backend frame's target session is looked up. */
  readonly sessions: SessionManager;
  readonly metrics: GatewayCounters;
  /** Kicks are logged through it: a backend kicking in bulk gives a few lines, not one per session. */
  readonly throttledLog: ThrottledLog;
  readonly logger: Logger;
}

export class BackendRelay {
  private readonly scratch = new Uint8Array(MAX_CLIENT_FRAME);
  /**
   * Sessions whose clients got frames during the current chunk and are owed a flush at its end,
   * each listed once (Session.relayFlushQueued); bounded by live sessions.
   */
  private readonly pending: Session[] = [];
  /** Numbers gRPC multicast packets, so a session listed twice in one is sent the frame once. */
  private multicastMark = 0;

  private readonly sessions: SessionManager;
  private readonly metrics: GatewayCounters;
  private readonly log: ThrottledLog;
  private readonly logger: Logger;

  constructor(parts: BackendRelayParts) {
    this.sessions = parts.sessions;
    this.metrics = parts.metrics;
    this.log = parts.throttledLog;
    this.logger = parts.logger;
  }

  onTrans(conn: BackendFrameSource, hi: number, lo: number, b: Uint8Array, off: number, len: number): void {
    const s = this.sessions.get(hi, lo);
    if (s === undefined || s.link?.endpoint !== conn.endpoint) return this.onViolation(conn, "unknown_session");
    const bodyLen = len - BACKEND_FRAME_PREFIX;
    writeClientHeader(b, off + CLIENT_FRAME_AT, bodyLen, readServerType(b, off), readServerServerId(b, off));
    this.send(s, b, off + CLIENT_FRAME_AT, CLIENT_HEADER_SIZE + bodyLen, conn.inCurrentChunk(b));
  }

  /** A ready client frame (a gRPC backend's packet) for session (hi, lo); frame is reused after the call, so it is copied. */
  onClientFrame(conn: BackendFrameSource, hi: number, lo: number, frame: Uint8Array, off: number, len: number): void {
    const s = this.sessions.get(hi, lo);
    if (s === undefined || s.link?.endpoint !== conn.endpoint) return this.onViolation(conn, "unknown_session");
    this.send(s, frame, off, len, false);
  }

  onMulticastFrame(conn: BackendFrameSource, targets: readonly number[], frame: Uint8Array, off: number, len: number): void {
    // A session listed twice gets the frame once: each delivery marks the session with this
    // packet's number, so duplicates are skipped without a Set per packet.
    const mark = ++this.multicastMark;
    for (let i = 0; i < targets.length; i += 2) {
      const s = this.sessions.get(targets[i]!, targets[i + 1]!);
      if (s === undefined || s.link?.endpoint !== conn.endpoint) this.onViolation(conn, "unknown_session");
      else if (s.multicastMark !== mark) {
        s.multicastMark = mark;
        this.send(s, frame, off, len, false);
      }
    }
  }

  onKick(conn: BackendFrameSource, hi: number, lo: number, reason: string): void {
    const s = this.sessions.get(hi, lo);
    if (s === undefined || s.link?.endpoint !== conn.endpoint) return this.onViolation(conn, "unknown_session");
    this.log.warn(`kick:${conn.endpoint}`, "backend kicked a session", {
      session: s.id,
      trace_id: s.traceId === null ? undefined : s.traceId.toHex(),
      backend: conn.endpoint,
      kick_reason: reason,
    });
    s.client.close("kick");
  }

  onMulticast(conn: BackendFrameSource, b: Uint8Array, off: number, count: number, idsOff: number, bodyOff: number, bodyLen: number): void {
    // The client body follows the ID list, so the frame is built once in scratch and sent to each.
    const frame = this.scratch;
    writeClientHeader(frame, 0, bodyLen, readServerType(b, off), readServerServerId(b, off));
    copyBytes(b, bodyOff, frame, CLIENT_HEADER_SIZE, bodyLen);
    for (let i = 0; i < count; i++) {
      const at = idsOff + i * 8;
      const s = this.sessions.get(readI64Hi(b, at), readI64Lo(b, at));
      if (s === undefined || s.link?.endpoint !== conn.endpoint) this.onViolation(conn, "unknown_session");
      else this.send(s, frame, 0, CLIENT_HEADER_SIZE + bodyLen, false); // scratch is reused: copy
    }
  }

  onBroadcast(conn: BackendFrameSource, b: Uint8Array, off: number, len: number): void {
    const bodyLen = len - BACKEND_FRAME_PREFIX;
    writeClientHeader(b, off + CLIENT_FRAME_AT, bodyLen, readServerType(b, off), readServerServerId(b, off));
    const stable = conn.inCurrentChunk(b);
    for (const link of conn.endpointLinks) {
      for (let s = link.sessions.first; s !== null; ) {
        const next = s.nextOnLink; // a send that closes s's client unlinks s
        this.send(s, b, off + CLIENT_FRAME_AT, CLIENT_HEADER_SIZE + bodyLen, stable);
        s = next;
      }
    }
  }

  /** Counted and (rate-limited) logged without allocating: a backend may do this per frame. */
  onViolation(conn: BackendFrameSource, reason: BackendViolation): void {
    bump(this.metrics.backendViolations, reason);
    bump(this.metrics.drops, reason);
    conn.countError(reason);
    if (!this.logger.enabled("warn")) return;
    const suppressed = conn.violationLogGate(reason, Date.now());
    if (suppressed < 0) return;
    this.logger.warn("backend frame broke the wire contract; dropped", { backend: conn.endpoint, reason, suppressed });
  }

  onChunkEnd(): void {
    const pending = this.pending;
    for (let i = 0; i < pending.length; i++) {
      const s = pending[i]!;
      s.relayFlushQueued = false;
      s.client.flush();
    }
    pending.length = 0;
  }

  /** stable: b stays intact until onChunkEnd, so the client may write from it without a copy. */
  private send(s: Session, b: Uint8Array, off: number, len: number, stable: boolean): void {
    const client = s.client;
    if (client.closing) return;
    s.lastActive = Date.now();
    s.messagesOut++;
    s.bytesOut += len;
    this.metrics.messagesOut[s.serverType]!++;
    if (!(stable ? client.lend(b, off, len) : client.send(b, off, len)) || s.relayFlushQueued) return;
    s.relayFlushQueued = true;
    this.pending.push(s);
  }
}
