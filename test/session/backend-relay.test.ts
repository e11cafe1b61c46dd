// BackendRelay delivering a backend chunk's frames to clients whose sockets take only part of each
// write: every client is written once at the chunk's end, gets its frames whole and in order even
// after the chunk's memory is reused, and is owed a flush again in the next chunk.
import { describe, expect, test } from "bun:test";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import type { BackendConnection } from "../../src/backend/backend-connection.ts";
import { Logger, ThrottledLog } from "../../src/log/logger.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode, encodeBackendFrame, encodeMulticastBody, SERVER_HEADER_SIZE, GATE_HEADER_SIZE } from "../../src/protocol/server-frame.ts";
import { BackendRelay } from "../../src/session/backend-relay.ts";
import type { BackendLink, Session } from "../../src/session/session.ts";
import { SessionIdGenerator } from "../../src/session/session-id.ts";
import { SessionList } from "../../src/session/session-list.ts";
import { SessionManager } from "../../src/session/session-manager.ts";
import { concat } from "../support/bytes.ts";
import { type PartialSocket, drainAll, portOverPartialSocket } from "../support/partial-socket.ts";
import type { TcpClientPort } from "../../src/net/tcp-listener.ts";

const ENDPOINT = "127.0.0.1:9000";
const SERVER_ID = 0x0001_0007;

function sessionId(s: Session): bigint {
  return BigInt.asIntN(64, (BigInt(s.hi >>> 0) << 32n) | BigInt(s.lo >>> 0));
}

/**
 * A relay with `n` sessions bound to one backend endpoint, each client a real TcpClientPort over
 * a socket taking `perWrite` bytes per write. The backend connection is reduced to what the relay
 * reads of it (its endpoint, its sessions, which buffer is the current chunk).
 */
function relayWith(n: number, perWrite: number) {
  const sessions = new SessionManager(new SessionIdGenerator("relay-test"), 1000);
  const logger = new Logger("error", { write: () => {} });
  const relay = new BackendRelay({ sessions, metrics: new GatewayMetrics(), throttledLog: new ThrottledLog(logger), logger });
  const list = new SessionList();
  const link = { endpoint: ENDPOINT } as BackendLink;
  const clients: { s: Session; port: TcpClientPort<Session>; socket: PartialSocket }[] = [];
  for (let i = 0; i < n; i++) {
    const { port, socket } = portOverPartialSocket<Session>(perWrite);
    const s = sessions.create(port, { serverType: 1, worldId: 7, instId: 0 })!;
    port.session = s;
    s.link = link;
    list.add(s);
    clients.push({ s, port, socket });
  }
  let chunk: Uint8Array | null = null;
  const conn = {
    endpoint: ENDPOINT,
    endpointLinks: [{ sessions: list }],
    inCurrentChunk: (b: Uint8Array) => b === chunk,
    countError: () => {},
    violationLogGate: () => -1,
  } as unknown as BackendConnection;
  /** Hands the relay one chunk of Trans frames, as the connection's frame reader would, then ends it. */
  function deliver(frames: { to: Session; type: number; body: Uint8Array }[]): Uint8Array {
    const encoded = frames.map((f) => encodeBackendFrame({ opcode: OpCode.Trans, sessionId: sessionId(f.to), type: f.type, serverId: SERVER_ID, body: f.body }));
    chunk = concat(encoded);
    const writesBefore = clients.map((c) => c.socket.writes);
    let off = 0;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      relay.onTrans(conn, f.to.hi, f.to.lo, chunk, off, encoded[i]!.length);
      off += encoded[i]!.length;
    }
    expect(clients.map((c) => c.socket.writes)).toEqual(writesBefore); // nothing is written mid-chunk
    relay.onChunkEnd();
    const used = chunk;
    chunk = null;
    return used;
  }
  return { relay, conn, clients, deliver, setChunk: (b: Uint8Array | null) => (chunk = b) };
}

const body = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("BackendRelay over clients that take a few bytes per write", () => {
  test("each client is written once, at the chunk's end, and gets its frames whole after the chunk is reused", () => {
    const { clients, deliver } = relayWith(2, 6);
    const [a, b] = clients;
    const frames = [
      { to: a!.s, type: 11, body: body(20, 0xa1) },
      { to: b!.s, type: 12, body: body(3, 0xb1) },
      { to: a!.s, type: 13, body: body(40, 0xa2) },
      { to: a!.s, type: 14, body: body(1, 0xa3) },
    ];
    const chunk = deliver(frames);
    for (const c of clients) expect(c.socket.writes).toBeGreaterThan(0);
    chunk.fill(0xee); // the connection reads its next chunk into the same memory
    for (const c of clients) {
      c.socket.perWrite = 5;
      drainAll(c.port, c.socket);
    }
    const expected = (s: Session) => concat(frames.filter((f) => f.to === s).map((f) => encodeClientFrame(f.type, SERVER_ID, f.body)));
    expect(a!.socket.bytes()).toEqual(expected(a!.s));
    expect(b!.socket.bytes()).toEqual(expected(b!.s));
  });

  test("a client flushed at one chunk's end is owed a flush again in the next", () => {
    const { clients, deliver } = relayWith(1, 1 << 20);
    const a = clients[0]!;
    deliver([{ to: a.s, type: 1, body: body(4, 1) }]);
    const afterFirst = a.socket.writes;
    expect(afterFirst).toBe(1); // a single frame, lent and written straight from the chunk
    deliver([{ to: a.s, type: 2, body: body(4, 2) }, { to: a.s, type: 3, body: body(4, 3) }]);
    expect(a.socket.writes).toBe(afterFirst + 1); // both frames of the chunk in one write
    expect(a.socket.bytes()).toEqual(concat([encodeClientFrame(1, SERVER_ID, body(4, 1)), encodeClientFrame(2, SERVER_ID, body(4, 2)), encodeClientFrame(3, SERVER_ID, body(4, 3))]));
    expect(a.s.relayFlushQueued).toBe(false);
  });

  test("a multicast (built in the relay's scratch buffer) reaches every addressed client intact", () => {
    const { relay, conn, clients, setChunk } = relayWith(3, 7);
    const targets = [clients[0]!, clients[2]!];
    const clientBody = body(30, 0x5c);
    const mc = encodeBackendFrame({ opcode: OpCode.Multicast, sessionId: 0n, type: 21, serverId: SERVER_ID, body: encodeMulticastBody(targets.map((c) => sessionId(c.s)), clientBody) });
    setChunk(mc);
    const bodyStart = SERVER_HEADER_SIZE + GATE_HEADER_SIZE;
    relay.onMulticast(conn, mc, 0, targets.length, bodyStart + 2, bodyStart + 2 + targets.length * 8, clientBody.length);
    relay.onChunkEnd();
    setChunk(null);
    mc.fill(0);
    for (const c of clients) drainAll(c.port, c.socket);
    const expected = encodeClientFrame(21, SERVER_ID, clientBody);
    expect(clients[0]!.socket.bytes()).toEqual(expected);
    expect(clients[1]!.socket.bytes()).toEqual(new Uint8Array(0));
    expect(clients[2]!.socket.bytes()).toEqual(expected);
  });
});
