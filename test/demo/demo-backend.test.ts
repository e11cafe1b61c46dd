// The demo backend driven over real loopback sockets by a raw peer that plays the gateway.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { DEMO_NAME_MAX, DemoBackend, DemoMessage, type DemoBackendOptions } from "../../src/demo/demo-backend.ts";
import { serverIdFor } from "../../src/client/game-client.ts";
import {
  GATE_HEADER_SIZE,
  OpCode,
  SERVER_HEADER_SIZE,
  decodeBackendFrame,
  encodeBackendFrame,
  readServerLength,
  type BackendFrame,
} from "../../src/protocol/server-frame.ts";
import { eventually } from "../support/eventually.ts";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function backend(opts: DemoBackendOptions = {}): Promise<{ be: DemoBackend; logs: string[] }> {
  const logs: string[] = [];
  const be = await DemoBackend.start({ port: 0, name: "t", log: (l) => logs.push(l), ...opts });
  cleanup.push(() => be.stop());
  return { be, logs };
}

/** Plays the gateway side of one backend connection: writes raw bytes, parses replies. */
class GatewayPeer {
  private pending = new Uint8Array(0);
  private readonly received: BackendFrame[] = [];
  private wake: (() => void) | null = null;
  private readonly queue: Uint8Array[] = [];
  private socket!: Socket<GatewayPeer>;
  isClosed = false;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  private constructor() {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  static async connect(port: number): Promise<GatewayPeer> {
    const peer = new GatewayPeer();
    await Bun.connect({
      hostname: "127.0.0.1",
      port,
      data: peer,
      socket: {
        binaryType: "uint8array",
        open: (s: Socket<GatewayPeer>) => void (s.data.socket = s),
        data: (s: Socket<GatewayPeer>, chunk: Uint8Array) => s.data.onData(chunk),
        drain: (s: Socket<GatewayPeer>) => s.data.flush(),
        close: (s: Socket<GatewayPeer>) => s.data.onClose(),
      },
    });
    cleanup.push(() => {
      if (!peer.isClosed) peer.socket.end();
    });
    return peer;
  }

  /** Writes now, queueing what the socket does not take (big test bursts exceed its buffer). */
  write(bytes: Uint8Array): void {
    this.queue.push(bytes);
    if (this.queue.length === 1) this.flush();
  }

  send(f: Parameters<typeof encodeBackendFrame>[0]): void {
    this.write(encodeBackendFrame(f));
  }

  trans(sessionId: bigint, type: number, body: string | Uint8Array, serverId = serverIdFor(200)): void {
    this.send({ opcode: OpCode.Trans, sessionId, type, serverId, body: typeof body === "string" ? text(body) : body });
  }

  async next(timeoutMs = 5000): Promise<BackendFrame> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (this.isClosed) throw new Error("peer closed with no frame pending");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.received.shift()!;
  }

  /**
   * Sends a Ping and returns the frames that arrive before its Pong. The backend answers frames in
   * order on a connection, so these are all it sent in reply to what this peer sent earlier:
   * silence is asserted without waiting for an arbitrary time.
   */
  async framesBeforePong(): Promise<BackendFrame[]> {
    const marker = Uint8Array.of(0x62, 0x61, 0x72, 0x72, 0x69, 0x65, 0x72, 0x21);
    this.send({ opcode: OpCode.Ping, sessionId: 0n, body: marker });
    const before: BackendFrame[] = [];
    for (;;) {
      const f = await this.next();
      if (f.opcode === OpCode.Pong && Buffer.from(f.body).equals(marker)) return before;
      before.push(f);
    }
  }

  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }

  private onData(chunk: Uint8Array): void {
    const buf = new Uint8Array(this.pending.length + chunk.length);
    buf.set(this.pending);
    buf.set(chunk, this.pending.length);
    let off = 0;
    while (buf.length - off >= SERVER_HEADER_SIZE) {
      const total = SERVER_HEADER_SIZE + readServerLength(buf, off);
      if (buf.length - off < total) break;
      this.received.push(decodeBackendFrame(buf, off));
      off += total;
    }
    this.pending = buf.slice(off);
    this.wakeUp();
  }

  private onClose(): void {
    this.isClosed = true;
    this.resolveClosed();
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** Splits a Multicast body into its target IDs and client body. */
function multicast(body: Uint8Array): { ids: bigint[]; payload: string } {
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const count = dv.getUint16(0, true);
  const ids = Array.from({ length: count }, (_, i) => dv.getBigInt64(2 + i * 8, true));
  return { ids, payload: str(body.subarray(2 + count * 8)) };
}

describe("DemoBackend", () => {
  test("echo keeps Type, ServerID, body and session, even for a session never announced", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const serverId = (serverIdFor(200, 32767, 255) | 0x80000000) >>> 0;
    const body = new Uint8Array(65535).map((_, i) => i & 0xff);
    gw.trans(0x0123456789abcdefn, 0xfffe, body, serverId);
    gw.trans(7n, 0, new Uint8Array(0), 0);
    const big = await gw.next();
    expect(big).toMatchObject({ opcode: OpCode.Trans, type: 0xfffe, serverId, sessionId: 0x0123456789abcdefn, objectId: 0x0123456789abcdefn });
    expect(big.body).toEqual(body);
    const empty = await gw.next();
    expect(empty).toMatchObject({ opcode: OpCode.Trans, type: 0, serverId: 0, sessionId: 7n });
    expect(empty.body.length).toBe(0);
    expect(be.stats().framesByOpcode[OpCode.Trans]).toBe(2);
  });

  test("JOIN + SAY: one Multicast with every room member, sender included; other rooms hear nothing", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    for (const [sid, room] of [[1n, "room-1"], [2n, "room-1"], [3n, "room-2"]] as const) {
      gw.trans(sid, DemoMessage.Join, room);
      const reply = await gw.next();
      expect(reply).toMatchObject({ opcode: OpCode.Trans, type: DemoMessage.Join, sessionId: sid });
      expect(str(reply.body)).toBe(`joined ${room}`);
    }
    gw.trans(2n, DemoMessage.Say, "hi room", serverIdFor(200, 3, 1));
    const m = await gw.next();
    expect(m).toMatchObject({ opcode: OpCode.Multicast, type: DemoMessage.Say, serverId: serverIdFor(200, 3, 1), sessionId: 0n, objectId: 0n });
    const { ids, payload } = multicast(m.body);
    expect(ids.sort()).toEqual([1n, 2n]);
    expect(payload).toBe("hi room");
    expect(await gw.framesBeforePong()).toEqual([]);
    expect(be.stats()).toMatchObject({ rooms: 2, sessions: 3 });
  });

  test("SAY follows sessions that moved to another connection: one Multicast per connection", async () => {
    const { be } = await backend();
    const first = await GatewayPeer.connect(be.port);
    const second = await GatewayPeer.connect(be.port);
    first.trans(1n, DemoMessage.Join, "r");
    first.trans(2n, DemoMessage.Join, "r");
    await first.next();
    await first.next();
    // Session 2's next frame arrives on the second connection: that is where it lives now.
    second.trans(2n, 5, "moved");
    expect(str((await second.next()).body)).toBe("moved");
    first.trans(1n, DemoMessage.Say, "both");
    const onFirst = await first.next();
    const onSecond = await second.next();
    expect(multicast(onFirst.body)).toEqual({ ids: [1n], payload: "both" });
    expect(multicast(onSecond.body)).toEqual({ ids: [2n], payload: "both" });
  });

  test("chat room: NAME, JOIN, CHAT and presence as players come and go", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    gw.trans(1n, DemoMessage.Name, "  alice\n ");
    expect(await gw.next()).toMatchObject({ opcode: OpCode.Trans, type: DemoMessage.Name, sessionId: 1n });
    gw.trans(1n, DemoMessage.Join, "lobby");
    expect(str((await gw.next()).body)).toBe("joined lobby");
    const alone = await gw.next();
    expect(alone).toMatchObject({ opcode: OpCode.Multicast, type: DemoMessage.Presence });
    expect(multicast(alone.body)).toEqual({ ids: [1n], payload: JSON.stringify({ room: "lobby", online: ["alice"] }) });
    // Bob joins unnamed, then names himself: the room hears him once he has a name.
    gw.trans(2n, DemoMessage.Join, "lobby");
    expect(str((await gw.next()).body)).toBe("joined lobby");
    gw.trans(2n, DemoMessage.Name, "bob");
    expect(str((await gw.next()).body)).toBe("bob");
    const both = multicast((await gw.next()).body);
    expect(both.ids.sort()).toEqual([1n, 2n]);
    expect(JSON.parse(both.payload)).toEqual({ room: "lobby", online: ["alice", "bob"] });
    gw.trans(2n, DemoMessage.Chat, "hi alice");
    const chat = await gw.next();
    expect(chat).toMatchObject({ opcode: OpCode.Multicast, type: DemoMessage.Chat });
    expect(JSON.parse(multicast(chat.body).payload)).toEqual({ from: "bob", text: "hi alice" });
    // Bob's session ends: alice sees him gone.
    gw.send({ opcode: OpCode.Disconnect, sessionId: 2n, type: 0, body: text("{}") });
    const after = multicast((await gw.next()).body);
    expect(after).toEqual({ ids: [1n], payload: JSON.stringify({ room: "lobby", online: ["alice"] }) });
    expect(await gw.framesBeforePong()).toEqual([]);
  });

  test("chat names: an empty name becomes player-<n>, a long one is cut", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    gw.trans(42n, DemoMessage.Name, " ");
    expect(str((await gw.next()).body)).toBe("player-42");
    gw.trans(43n, DemoMessage.Name, "x".repeat(100));
    expect(str((await gw.next()).body)).toBe("x".repeat(DEMO_NAME_MAX));
  });

  test("SAY from a session in no room reaches the sender alone", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    gw.trans(9n, DemoMessage.Say, "anyone?");
    const m = await gw.next();
    expect(m.opcode).toBe(OpCode.Multicast);
    expect(multicast(m.body)).toEqual({ ids: [9n], payload: "anyone?" });
  });

  test("a room over 65,535 members is split into several Multicasts", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const MEMBERS = 70_000;
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= MEMBERS; i++) {
      frames.push(encodeBackendFrame({ opcode: OpCode.Trans, sessionId: BigInt(i), type: DemoMessage.Join, body: text("huge") }));
    }
    gw.write(Buffer.concat(frames));
    for (let i = 0; i < MEMBERS; i++) await gw.next();
    gw.trans(1n, DemoMessage.Say, "crowd");
    const a = multicast((await gw.next()).body);
    const b = multicast((await gw.next()).body);
    expect([a.ids.length, b.ids.length].sort((x, y) => x - y)).toEqual([MEMBERS - 65535, 65535]);
    expect(new Set([...a.ids, ...b.ids]).size).toBe(MEMBERS);
    expect([a.payload, b.payload]).toEqual(["crowd", "crowd"]);
  });

  test("SHOUT yields a Broadcast with SessionID 0", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    gw.trans(4n, DemoMessage.Shout, "everyone", serverIdFor(200, 1));
    const f = await gw.next();
    expect(f).toMatchObject({ opcode: OpCode.Broadcast, type: DemoMessage.Shout, serverId: serverIdFor(200, 1), sessionId: 0n });
    expect(str(f.body)).toBe("everyone");
  });

  test("KICK_ME yields Trans 'bye' then Kick with the reason (default 'kicked')", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    gw.trans(5n, DemoMessage.KickMe, "cheating");
    gw.trans(6n, DemoMessage.KickMe, "");
    for (const [sid, reason] of [[5n, "cheating"], [6n, "kicked"]] as const) {
      const bye = await gw.next();
      expect(bye).toMatchObject({ opcode: OpCode.Trans, type: DemoMessage.KickMe, sessionId: sid });
      expect(str(bye.body)).toBe("bye");
      const kick = await gw.next();
      expect(kick).toMatchObject({ opcode: OpCode.Kick, sessionId: sid });
      expect(JSON.parse(str(kick.body))).toEqual({ reason });
    }
  });

  test("Ping is answered by a Pong echoing its 8 bytes with SessionID 0; Pong is ignored", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const probe = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    gw.send({ opcode: OpCode.Pong, sessionId: 0n, body: probe });
    gw.send({ opcode: OpCode.Ping, sessionId: 0n, body: probe });
    const pong = await gw.next();
    expect(pong).toMatchObject({ opcode: OpCode.Pong, sessionId: 0n, type: 0 });
    expect(pong.body).toEqual(probe);
    expect(await gw.framesBeforePong()).toEqual([]);
    expect(be.stats().framesByOpcode).toMatchObject({ [OpCode.Ping]: 2, [OpCode.Pong]: 1 }); // 2: framesBeforePong's
  });

  test("Connect and Disconnect are recorded with their JSON; Disconnect takes the session out of its rooms", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const connect = { client_ip: "10.0.0.1", protocol: "tcp", connect_time: 1_700_000_000_000, gateway: "gw-1" };
    gw.send({ opcode: OpCode.Connect, sessionId: 11n, body: text(JSON.stringify(connect)) });
    gw.send({ opcode: OpCode.Connect, sessionId: 12n, body: text(JSON.stringify(connect)) });
    gw.trans(11n, DemoMessage.Join, "lobby");
    gw.trans(12n, DemoMessage.Join, "lobby");
    await gw.next();
    await gw.next();
    gw.send({ opcode: OpCode.Disconnect, sessionId: 12n, body: text(JSON.stringify({ reason: "client_closed", disconnect_time: 5 })) });
    gw.trans(11n, DemoMessage.Say, "alone now?");
    expect(multicast((await gw.next()).body).ids).toEqual([11n]);
    expect(be.events.map((e) => [e.opcode, e.sessionId])).toEqual([
      [OpCode.Connect, 11n],
      [OpCode.Connect, 12n],
      [OpCode.Disconnect, 12n],
    ]);
    expect(be.events[0]!.json).toEqual(connect);
    expect(be.events[2]!.json).toEqual({ reason: "client_closed", disconnect_time: 5 });
    expect(be.stats()).toMatchObject({ connects: 2, disconnects: 1, sessions: 1, connections: 1 });
  });

  test("frames written one byte at a time still parse", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const stream = Buffer.concat([
      encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n, type: 42, serverId: 7, body: text("split") }),
      encodeBackendFrame({ opcode: OpCode.Ping, sessionId: 0n, body: new Uint8Array(8).fill(9) }),
      encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 2n, type: 43, body: text("") }),
    ]);
    for (let i = 0; i < stream.length; i++) {
      gw.write(stream.subarray(i, i + 1));
      await Bun.sleep(1);
    }
    const a = await gw.next();
    expect(a).toMatchObject({ opcode: OpCode.Trans, type: 42, serverId: 7, sessionId: 1n });
    expect(str(a.body)).toBe("split");
    expect((await gw.next()).opcode).toBe(OpCode.Pong);
    expect(await gw.next()).toMatchObject({ opcode: OpCode.Trans, type: 43, sessionId: 2n });
  });

  test("traceHeader: Trans bodies start after the 33-byte gate header; replies use the 9-byte form", async () => {
    const { be } = await backend({ traceHeader: true });
    const gw = await GatewayPeer.connect(be.port);
    gw.send({
      opcode: OpCode.Trans,
      sessionId: 3n,
      type: 77,
      body: text("traced"),
      traceId: new Uint8Array(16).fill(0xaa),
      spanId: new Uint8Array(8).fill(0xbb),
    });
    gw.send({ opcode: OpCode.Ping, sessionId: 0n, body: new Uint8Array(8) });
    const f = await gw.next();
    expect(f).toMatchObject({ opcode: OpCode.Trans, type: 77, sessionId: 3n });
    expect(str(f.body)).toBe("traced");
    expect((await gw.next()).opcode).toBe(OpCode.Pong);
  });

  for (const [what, length] of [
    ["a negative Length", -5],
    ["a Length below the gate header", GATE_HEADER_SIZE - 1],
    ["a Length over 600,000", 600_001],
  ] as const) {
    test(`${what} closes that connection with a log line; other connections carry on`, async () => {
      const { be, logs } = await backend();
      const bad = await GatewayPeer.connect(be.port);
      const good = await GatewayPeer.connect(be.port);
      const f = encodeBackendFrame({ opcode: OpCode.Trans, sessionId: 1n, body: text("x") });
      new DataView(f.buffer).setInt32(0, length, true);
      bad.trans(1n, 1, "before");
      bad.write(f);
      // The reply to the frame before the bad one still goes out.
      expect(str((await bad.next()).body)).toBe("before");
      await bad.closed;
      expect(logs.some((l) => l.includes("closing connection") && l.includes("Length"))).toBe(true);
      expect(be.stats().violationCloses).toBe(1);
      good.trans(2n, 1, "fine");
      expect(str((await good.next()).body)).toBe("fine");
      await eventually(() => be.stats().connections === 1, "the bad connection to be gone");
    });
  }

  test("events keep only the last 10,000", async () => {
    const { be } = await backend();
    const gw = await GatewayPeer.connect(be.port);
    const N = 25_000;
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= N; i++) frames.push(encodeBackendFrame({ opcode: OpCode.Connect, sessionId: BigInt(i), body: text("{}") }));
    frames.push(encodeBackendFrame({ opcode: OpCode.Ping, sessionId: 0n, body: new Uint8Array(8) }));
    gw.write(Buffer.concat(frames));
    await gw.next();
    expect(be.events.length).toBe(10_000);
    expect(be.events[0]!.sessionId).toBe(BigInt(N - 10_000 + 1));
    expect(be.events.at(-1)!.sessionId).toBe(BigInt(N));
    expect(be.stats().connects).toBe(N);
  });

  test("dropOneConnection and stop close connections; the port can be listened on again", async () => {
    const { be } = await backend();
    const a = await GatewayPeer.connect(be.port);
    const b = await GatewayPeer.connect(be.port);
    await eventually(() => be.stats().connections === 2, "both connections accepted");
    expect(be.dropOneConnection()).toBe(true);
    await eventually(() => be.stats().connections === 1, "one connection dropped");
    await Promise.race([a.closed, b.closed]);
    const port = be.port;
    await be.stop();
    await Promise.all([a.closed, b.closed]);
    expect(be.stats().connections).toBe(0);
    const again = await DemoBackend.start({ port });
    cleanup.push(() => again.stop());
    const c = await GatewayPeer.connect(port);
    c.trans(1n, 1, "back");
    expect(str((await c.next()).body)).toBe("back");
  });
});
