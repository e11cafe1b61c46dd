// A game server written for the reference Go gateway's TCP mode, from its contract alone
// (../shared/reference/reference-gateway.md, "Its TCP backend contract"), with plain DataView
// reads and writes and none of this project's codecs: one connection per player, Trans only.
//
// Gateway -> backend: [i32 Length][i32 Type][u32 ServerID = 0][i64 ObjectID = session]
//                     [u8 OpCode = 1][i64 SessionID] then the body; Length = 9 + body. With trace
//                     propagation the gate header also holds [16 TraceID][8 SpanID] (33 bytes).
// Backend -> gateway: the same headers. It replies with SessionID 0 and ObjectID 0 (the gateway
// must know the session by the connection) and echoes the body with the request's Type.
//
// It is strict where the contract is exact: any opcode other than Trans, a ServerID other than 0,
// a Length that is not 9 + body, or a session ID that changes on the connection closes the
// connection, so a gateway that breaks the contract loses the player.
import type { Socket, TCPSocketListener } from "bun";

const SERVER_HEADER = 20;
const GATE_HEADER = 9;
const TRANS = 1;

interface Conn {
  buffered: Uint8Array;
  /** The session ID the first frame carried (ObjectID); every later frame must carry the same. */
  session: bigint;
  /** The first body received: the test names its clients by it. */
  firstBody: string | null;
  /** Reply bytes the socket has not taken yet. */
  unsent: Uint8Array;
}

export interface ReferenceBackend {
  readonly port: number;
  /** Connections accepted so far, and the ones open now. */
  readonly accepted: number;
  readonly open: number;
  /** Why it closed connections (contract violations), one entry per connection it closed. */
  readonly violations: string[];
  /** The session ID (ObjectID) of each connection's first frame, in arrival order. */
  readonly sessions: readonly bigint[];
  /** The session ID of the connection whose first body was `firstBody`. */
  sessionOf(firstBody: string): bigint | undefined;
  /** Closes the connection whose first body was `firstBody` (as a backend crashing one player's handler). */
  closeConnectionOf(firstBody: string): boolean;
  stop(): void;
}

/** traceHeader: the gateway runs with tracing.enable_trace_propagation, so its gate header is 33 bytes. */
export function startReferenceBackend(port = 0, traceHeader = false): ReferenceBackend {
  const gateIn = traceHeader ? GATE_HEADER + 24 : GATE_HEADER;
  const conns = new Map<Socket<Conn>, Conn>();
  const violations: string[] = [];
  const sessions: bigint[] = [];
  const sessionByFirstBody = new Map<string, bigint>();
  let accepted = 0;

  function reject(s: Socket<Conn>, why: string): void {
    violations.push(why);
    s.end();
  }

  function send(s: Socket<Conn>, c: Conn, bytes: Uint8Array): void {
    if (c.unsent.length > 0) {
      const all = new Uint8Array(c.unsent.length + bytes.length);
      all.set(c.unsent);
      all.set(bytes, c.unsent.length);
      c.unsent = all;
      return;
    }
    const n = s.write(bytes);
    if (n < bytes.length) c.unsent = bytes.slice(Math.max(n, 0));
  }

  /** Answers one frame; returns why the frame breaks the contract, or null. */
  function onFrame(s: Socket<Conn>, c: Conn, f: Uint8Array): string | null {
    const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
    const length = dv.getInt32(0, true);
    const type = dv.getInt32(4, true);
    const serverId = dv.getUint32(8, true);
    const objectId = dv.getBigInt64(12, true);
    const opcode = dv.getUint8(20);
    const sessionId = dv.getBigInt64(21, true);
    if (opcode !== TRANS) return `opcode ${opcode}`;
    if (serverId !== 0) return `server id ${serverId}`;
    if (objectId !== sessionId || sessionId <= 0n) return `session ${sessionId}, object ${objectId}`;
    if (c.session === 0n) {
      c.session = sessionId;
      sessions.push(sessionId);
    } else if (c.session !== sessionId) return "a second session on one connection";
    const body = f.subarray(SERVER_HEADER + gateIn, SERVER_HEADER + length);
    if (c.firstBody === null) {
      c.firstBody = new TextDecoder().decode(body);
      sessionByFirstBody.set(c.firstBody, sessionId);
    }

    const reply = new Uint8Array(SERVER_HEADER + GATE_HEADER + body.length);
    const out = new DataView(reply.buffer);
    out.setInt32(0, GATE_HEADER + body.length, true);
    out.setInt32(4, type, true);
    out.setUint32(8, 0, true);
    out.setBigInt64(12, 0n, true);
    out.setUint8(20, TRANS);
    out.setBigInt64(21, 0n, true);
    reply.set(body, SERVER_HEADER + GATE_HEADER);
    send(s, c, reply);
    return null;
  }

  const listener: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(s) {
        accepted++;
        const c: Conn = { buffered: new Uint8Array(0), session: 0n, firstBody: null, unsent: new Uint8Array(0) };
        s.data = c;
        conns.set(s, c);
      },
      data(s, chunk) {
        const c = s.data;
        const all = new Uint8Array(c.buffered.length + chunk.length);
        all.set(c.buffered);
        all.set(chunk, c.buffered.length);
        let at = 0;
        while (all.length - at >= SERVER_HEADER) {
          const length = new DataView(all.buffer, at).getInt32(0, true);
          if (length < gateIn) return reject(s, `length ${length}`);
          if (all.length - at < SERVER_HEADER + length) break;
          const violation = onFrame(s, c, all.subarray(at, at + SERVER_HEADER + length));
          if (violation !== null) return reject(s, violation);
          at += SERVER_HEADER + length;
        }
        c.buffered = all.slice(at);
      },
      drain(s) {
        const c = s.data;
        const pending = c.unsent;
        c.unsent = new Uint8Array(0);
        if (pending.length > 0) send(s, c, pending);
      },
      close(s) {
        conns.delete(s);
      },
    },
  });

  return {
    port: listener.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return conns.size;
    },
    violations,
    sessions,
    sessionOf: (firstBody) => sessionByFirstBody.get(firstBody),
    closeConnectionOf(firstBody) {
      for (const [s, c] of conns) {
        if (c.firstBody !== firstBody) continue;
        s.end();
        return true;
      }
      return false;
    },
    stop() {
      listener.stop(true);
    },
  };
}
