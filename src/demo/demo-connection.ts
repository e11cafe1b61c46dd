// One gateway connection to the demo backend: frames are parsed in place from each chunk (only a
// frame split across chunks is gathered in a pooled buffer), and every reply produced while
// handling one chunk is encoded into the connection's batch and leaves in one socket.write.
import type { Socket } from "bun";
import type { BufferPool } from "../net/buffer-pool.ts";
import { copyBytes } from "../bytes/copy-bytes.ts";
import { FrameReader, type FrameHandler } from "../net/frame-reader.ts";
import { BatchedSocketWriter } from "../net/socket-writer.ts";
import { BackendFrameLayout } from "../protocol/layouts.ts";
import {
  BACKEND_FRAME_PREFIX,
  GATE_HEADER_SIZE,
  GATE_HEADER_TRACE_SIZE,
  OpCode,
  SERVER_HEADER_SIZE,
  decodeBackendFrame,
  readOpCode,
  readServerLength,
  readServerServerId,
  readServerType,
  readSessionIdHi,
  readSessionIdLo,
  writeBackendFrameHeader,
} from "../protocol/server-frame.ts";
import type { BackendFramingViolation } from "../protocol/violations.ts";
import type { DemoSession, DemoSessionTable, Room } from "./demo-session-table.ts";

/**
 * Client MessageIDs the demo backend acts on; every other Trans is echoed. Name, Chat and
 * Presence make the chat room of the browser example (examples/browser): Name sets the player's
 * name (acked with the name kept); Chat multicasts `{"from","text"}` JSON to the sender's rooms;
 * Presence (backend to client only) carries `{"room","online":[names]}` to a room's members
 * whenever someone joins it, renames, or leaves (Disconnect or KickMe).
 */
export const DemoMessage = { Join: 0xff01, Say: 0xff02, Shout: 0xff03, KickMe: 0xff04, Name: 0xff05, Chat: 0xff06, Presence: 0xff07 } as const;

/** Longest chat name kept, in UTF-16 units; longer names are cut. */
export const DEMO_NAME_MAX = 24;

/** Largest Length field accepted (gate header + body); larger means the framing is broken. */
export const DEMO_MAX_LENGTH = 600_000;
/** A Multicast's count is a u16. */
const MAX_MULTICAST_TARGETS = 0xffff;
// Output bounds per connection. Above the high-water mark the connection stops reading, so a
// gateway that does not read our replies feels TCP backpressure instead of growing our memory;
// the hard limit only bites when one chunk's replies (a big room's Multicasts) overshoot it.
const WRITE_INITIAL_BYTES = 64 * 1024;
const WRITE_HIGH_WATER = 1024 * 1024;
const WRITE_LIMIT = 64 * 1024 * 1024;

/** A Connect or Disconnect as the backend saw it. */
export interface DemoEvent {
  readonly opcode: number;
  readonly sessionId: bigint;
  readonly body?: Uint8Array;
  /** The parsed JSON body; absent when the body is not valid JSON. */
  readonly json?: unknown;
}

/** What all connections of one backend share. */
export interface DemoContext {
  readonly traceHeader: boolean;
  readonly sessions: DemoSessionTable<DemoConnection>;
  readonly pool: BufferPool;
  /** Frames received, indexed by opcode. */
  readonly framesByOpcode: Float64Array;
  log(line: string): void;
  recordEvent(e: DemoEvent): void;
  /** A connection was closed for breaking the contract. */
  countViolation(): void;
  /** The connection's socket closed (called once, from onClosed). */
  connectionClosed(conn: DemoConnection): void;
}

const encoder = new TextEncoder();

/** The name kept for a player: trimmed, control characters out, cut to DEMO_NAME_MAX; "player-<n>" when nothing is left. */
function chatName(raw: string, lo: number): string {
  const name = raw.replace(/[\u0000-\u001f\u007f]/g, "").trim().slice(0, DEMO_NAME_MAX);
  return name === "" ? `player-${lo % 10_000}` : name;
}
const decoder = new TextDecoder();
const layout = new BackendFrameLayout(DEMO_MAX_LENGTH);

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

export class DemoConnection implements FrameHandler<BackendFramingViolation> {
  private readonly reader: FrameReader<BackendFramingViolation>;
  private readonly writer: BatchedSocketWriter;
  private paused = false;
  /** Opcodes already logged as unexpected here: a bad peer is reported once, not per frame. */
  private warned: Set<number> | null = null;
  private resolveClosed!: () => void;
  /** True once closing started (by us or the peer); nothing more is read or written. */
  closing = false;
  readonly closed: Promise<void>;
  readonly label: string;

  constructor(
    private readonly ctx: DemoContext,
    readonly socket: Socket<DemoConnection>,
    id: number,
  ) {
    this.label = `connection ${id} from ${socket.remoteAddress}:${socket.remotePort}`;
    this.reader = new FrameReader(layout, this, ctx.pool);
    this.writer = new BatchedSocketWriter(WRITE_INITIAL_BYTES, WRITE_HIGH_WATER, WRITE_LIMIT, () => this.relieved());
    this.writer.attach(socket);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  // --- socket events -------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.reader.feed(chunk);
    if (this.closing) return;
    this.writer.flush();
    if (!this.paused && this.writer.congested) {
      this.paused = true;
      this.socket.pause();
    }
  }

  onDrain(): void {
    this.writer.flush();
  }

  onClosed(): void {
    this.closing = true;
    this.reader.stop();
    this.writer.detach();
    this.ctx.sessions.detach(this);
    this.ctx.connectionClosed(this);
    this.resolveClosed();
  }

  /** Closes after sending what the socket takes now (replies to the frames before the bad one). */
  close(why: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ctx.log(`closing ${this.label}: ${why}`);
    this.reader.stop();
    this.writer.flush();
    this.socket.end();
  }

  /** Drops the connection abruptly, as a crash or network loss would. */
  terminate(): void {
    this.closing = true;
    this.reader.stop();
    this.socket.terminate();
  }

  private relieved(): void {
    if (!this.paused || this.closing) return;
    this.paused = false;
    this.socket.resume();
  }

  // --- frames in -----------------------------------------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    const opcode = readOpCode(b, off);
    this.ctx.framesByOpcode[opcode]!++;
    switch (opcode) {
      case OpCode.Trans:
        this.onTrans(b, off, len);
        break;
      case OpCode.Connect:
      case OpCode.Disconnect:
        this.onLifecycle(opcode, b, off, len);
        break;
      case OpCode.Ping:
        this.writeFrame(OpCode.Pong, 0, 0, 0, 0, b, off + BACKEND_FRAME_PREFIX, len - BACKEND_FRAME_PREFIX);
        break;
      case OpCode.Pong:
        break;
      default:
        this.warnOnce(opcode);
    }
    return !this.closing;
  }

  onFramingError(reason: BackendFramingViolation): void {
    // The reader already stopped; the rest of the stream cannot be framed.
    this.ctx.countViolation();
    this.close(`bad frame Length (${reason}); framing lost`);
  }

  private warnOnce(opcode: number): void {
    this.warned ??= new Set();
    if (this.warned.has(opcode)) return;
    this.warned.add(opcode);
    this.ctx.log(`${this.label}: ignoring frames with opcode ${opcode} (not a gateway->backend opcode)`);
  }

  private onLifecycle(opcode: number, b: Uint8Array, off: number, len: number): void {
    const hi = readSessionIdHi(b, off);
    const lo = readSessionIdLo(b, off);
    if (opcode === OpCode.Connect) this.ctx.sessions.upsert(hi, lo, this);
    else this.leaveAll(hi, lo, readServerServerId(b, off));
    // Lifecycle frames are rare next to Trans, so the allocating decoder is fine here.
    const f = decodeBackendFrame(b.subarray(off, off + len), 0);
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(f.body));
    } catch {
      this.ctx.log(`${this.label}: opcode ${opcode} for session ${f.sessionId} has a body that is not JSON`);
      this.ctx.recordEvent({ opcode, sessionId: f.sessionId, body: f.body });
      return;
    }
    this.ctx.recordEvent({ opcode, sessionId: f.sessionId, body: f.body, json });
  }

  private onTrans(b: Uint8Array, off: number, len: number): void {
    const gate = this.ctx.traceHeader ? GATE_HEADER_TRACE_SIZE : GATE_HEADER_SIZE;
    if (len < SERVER_HEADER_SIZE + gate) {
      this.ctx.countViolation();
      this.close(`Trans Length ${readServerLength(b, off)} is shorter than the ${gate}-byte gate header`);
      return;
    }
    const bodyOff = off + SERVER_HEADER_SIZE + gate;
    const bodyLen = off + len - bodyOff;
    const type = readServerType(b, off);
    const serverId = readServerServerId(b, off);
    const hi = readSessionIdHi(b, off);
    const lo = readSessionIdLo(b, off);
    // Sessions move between a gateway's connections: replies follow the latest frame.
    this.ctx.sessions.touch(hi, lo, this);
    switch (type) {
      case DemoMessage.Join: {
        const room = decoder.decode(b.subarray(bodyOff, bodyOff + bodyLen));
        const s = this.ctx.sessions.upsert(hi, lo, this);
        this.ctx.sessions.join(s, room);
        this.writeText(OpCode.Trans, type, serverId, hi, lo, `joined ${room}`);
        // Only named players are announced: rooms of unnamed sessions (benchmarks, Say) stay quiet.
        if (s.name !== null) this.announcePresence(this.ctx.sessions.roomsOf(s, room), serverId);
        return;
      }
      case DemoMessage.Name: {
        const s = this.ctx.sessions.upsert(hi, lo, this);
        s.name = chatName(decoder.decode(b.subarray(bodyOff, bodyOff + bodyLen)), lo);
        this.writeText(OpCode.Trans, type, serverId, hi, lo, s.name);
        if (s.rooms !== null) this.announcePresence(s.rooms, serverId);
        return;
      }
      case DemoMessage.Chat: {
        // Chat is for people typing, not the hot path: a JSON body per line is fine here.
        const from = this.ctx.sessions.get(hi, lo)?.name ?? chatName("", lo);
        const body = encoder.encode(JSON.stringify({ from, text: decoder.decode(b.subarray(bodyOff, bodyOff + bodyLen)) }));
        this.say(type, serverId, hi, lo, body, 0, body.length);
        return;
      }
      case DemoMessage.Say:
        this.say(type, serverId, hi, lo, b, bodyOff, bodyLen);
        return;
      case DemoMessage.Shout:
        this.writeFrame(OpCode.Broadcast, type, serverId, 0, 0, b, bodyOff, bodyLen);
        return;
      case DemoMessage.KickMe: {
        const reason = bodyLen > 0 ? decoder.decode(b.subarray(bodyOff, bodyOff + bodyLen)) : "kicked";
        this.writeText(OpCode.Trans, type, serverId, hi, lo, "bye");
        this.writeText(OpCode.Kick, 0, 0, hi, lo, JSON.stringify({ reason }));
        // Without lifecycle messages no Disconnect would ever clear it.
        this.leaveAll(hi, lo, serverId);
        return;
      }
      default:
        this.writeFrame(OpCode.Trans, type, serverId, hi, lo, b, bodyOff, bodyLen);
    }
  }

  /** Multicasts to the union of the sender's rooms, one batch of IDs per connection that reaches them. */
  private say(type: number, serverId: number, hi: number, lo: number, b: Uint8Array, bodyOff: number, bodyLen: number): void {
    const sender = this.ctx.sessions.get(hi, lo);
    if (sender === undefined || sender.rooms === null) {
      // In no room: the audience is the sender alone.
      this.writeMulticast(type, serverId, [{ hi, lo }], 0, 1, b, bodyOff, bodyLen);
      return;
    }
    this.multicastToRooms(sender.rooms, type, serverId, b, bodyOff, bodyLen);
  }

  /** Forgets the session; the rooms a named player left hear who is still there. */
  private leaveAll(hi: number, lo: number, serverId: number): void {
    const named = this.ctx.sessions.get(hi, lo)?.name != null;
    const left = this.ctx.sessions.remove(hi, lo);
    if (named) this.announcePresence(left, serverId);
  }

  /** Tells each room's members who is in it now (rooms change rarely: one JSON body per room). */
  private announcePresence(rooms: Iterable<Room<DemoConnection>>, serverId: number): void {
    for (const room of rooms) {
      const online: string[] = [];
      for (const m of room.members) if (m.name !== null) online.push(m.name);
      const body = encoder.encode(JSON.stringify({ room: room.name, online }));
      this.multicastToRooms([room], DemoMessage.Presence, serverId, body, 0, body.length);
    }
  }

  private multicastToRooms(rooms: Iterable<Room<DemoConnection>> & { readonly size?: number }, type: number, serverId: number, b: Uint8Array, bodyOff: number, bodyLen: number): void {
    const byConn = new Map<DemoConnection, DemoSession<DemoConnection>[]>();
    const seen = (rooms.size ?? 1) > 1 ? new Set<DemoSession<DemoConnection>>() : null;
    for (const room of rooms) {
      for (const m of room.members) {
        if (seen !== null) {
          if (seen.has(m)) continue;
          seen.add(m);
        }
        const c = m.conn;
        if (c === null || c.closing) continue;
        let list = byConn.get(c);
        if (list === undefined) byConn.set(c, (list = []));
        list.push(m);
      }
    }
    for (const [c, members] of byConn) {
      for (let i = 0; i < members.length; i += MAX_MULTICAST_TARGETS) {
        const end = Math.min(i + MAX_MULTICAST_TARGETS, members.length);
        if (!c.writeMulticast(type, serverId, members, i, end, b, bodyOff, bodyLen)) break;
      }
    }
  }

  // --- frames out ----------------------------------------------------------------------------

  /** Reserves a whole frame in the batch, or closes the connection when its queue is full. */
  private reserve(n: number): number {
    if (this.closing) return -1;
    const at = this.writer.reserve(n);
    if (at < 0) {
      this.close(`write queue over ${WRITE_LIMIT} bytes: the gateway is not reading replies`);
    }
    return at;
  }

  private writeFrame(
    opcode: OpCode,
    type: number,
    serverId: number,
    hi: number,
    lo: number,
    src: Uint8Array,
    srcOff: number,
    srcLen: number,
  ): boolean {
    const at = this.reserve(BACKEND_FRAME_PREFIX + srcLen);
    if (at < 0) return false;
    const out = this.writer.bytes;
    writeBackendFrameHeader(this.writer.view, at, GATE_HEADER_SIZE + srcLen, type, serverId, opcode, hi, lo);
    copyBytes(src, srcOff, out, at + BACKEND_FRAME_PREFIX, srcLen);
    return true;
  }

  private writeText(opcode: OpCode, type: number, serverId: number, hi: number, lo: number, text: string): boolean {
    const body = encoder.encode(text);
    return this.writeFrame(opcode, type, serverId, hi, lo, body, 0, body.length);
  }

  /** One Multicast frame to members[from, to): [u16 count][count x i64 IDs][client body]. */
  writeMulticast(
    type: number,
    serverId: number,
    members: readonly { readonly hi: number; readonly lo: number }[],
    from: number,
    to: number,
    b: Uint8Array,
    bodyOff: number,
    bodyLen: number,
  ): boolean {
    const count = to - from;
    const payload = 2 + count * 8 + bodyLen;
    const at = this.reserve(BACKEND_FRAME_PREFIX + payload);
    if (at < 0) return false;
    const out = this.writer.bytes;
    writeBackendFrameHeader(this.writer.view, at, GATE_HEADER_SIZE + payload, type, serverId, OpCode.Multicast, 0, 0);
    let p = at + BACKEND_FRAME_PREFIX;
    out[p] = count;
    out[p + 1] = count >>> 8;
    p += 2;
    for (let i = from; i < to; i++) {
      const m = members[i]!;
      writeU32(out, p, m.lo);
      writeU32(out, p + 4, m.hi);
      p += 8;
    }
    copyBytes(b, bodyOff, out, p, bodyLen);
    return true;
  }
}
