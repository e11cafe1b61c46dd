// The BackendLink contract: what the session layer relies on from whatever carries a session to
// its backend (a shared or dedicated TCP connection today, a gRPC stream later). Each
// implementation runs this one suite against a real wire-protocol backend on loopback, as Hono
// runs one suite over every router.
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { CLIENT_HEADER_SIZE, encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode, SERVER_HEADER_SIZE, decodeBackendFrame, encodeBackendFrame } from "../../src/protocol/server-frame.ts";
import type { ClientPort, ClientProtocol, CloseReason } from "../../src/session/client-port.ts";
import { type BackendLink, Session } from "../../src/session/session.ts";
import { eventually } from "../support/eventually.ts";

/** Bounds the suite sets on the link's queue toward the backend. */
export interface LinkLimits {
  readonly highWater: number;
  readonly limit: number;
}

/** One implementation's links to the backend listening at port, with the queue bounds given. */
export interface LinkFixture {
  /** Binds the session to a link (announcing it with Connect, as binding does) and returns it. */
  bind(session: Session): BackendLink;
  close(): Promise<void>;
}

export type LinkFactory = (port: number, limits: LinkLimits) => LinkFixture;

/**
 * The backend the suite drives, as it sees what arrived: frames of the wire protocol, or what a
 * gRPC backend's packets mean in those terms (a connect packet is a Connect with its metadata as
 * the JSON body, and so on).
 */
export interface ContractBackend {
  readonly port: number;
  /** What arrived for the session (Connect, Trans, Disconnect), or only those of one opcode. */
  of(session: Session, opcode?: number): ReceivedFrame[];
  /** Stops reading (the transport's buffers fill, then the link's queue). */
  stall(): void;
  resume(): void;
  stop(): void;
}

/** Starts the backend; resolves once it accepts connections. */
export type ContractBackendFactory = () => ContractBackend | Promise<ContractBackend>;

export interface ReceivedFrame {
  readonly opcode: number;
  readonly sessionId: bigint;
  readonly type: number;
  readonly body: Uint8Array;
}

/** A backend speaking the wire protocol: records every frame, answers Ping, and can stop reading. */
export class WireBackend implements ContractBackend {
  readonly frames: ReceivedFrame[] = [];
  private readonly sockets = new Set<Socket<{ pending: Uint8Array }>>();
  private stalled = false;
  private readonly listener: TCPSocketListener<{ pending: Uint8Array }>;

  constructor() {
    this.listener = Bun.listen<{ pending: Uint8Array }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (s) => {
          s.data = { pending: new Uint8Array(0) };
          this.sockets.add(s);
          if (this.stalled) s.pause();
        },
        data: (s, chunk) => this.onData(s, chunk),
        close: (s) => {
          this.sockets.delete(s);
        },
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  /** Frames other than Ping and Pong, for the given session. */
  of(session: Session, opcode?: number): ReceivedFrame[] {
    const id = sessionIdOf(session);
    return this.frames.filter((f) => f.sessionId === id && (opcode === undefined || f.opcode === opcode));
  }

  /** Stops reading (the kernel's buffers fill, then the link's queue). */
  stall(): void {
    this.stalled = true;
    for (const s of this.sockets) s.pause();
  }

  resume(): void {
    this.stalled = false;
    for (const s of this.sockets) s.resume();
  }

  stop(): void {
    this.listener.stop(true);
  }

  private onData(s: Socket<{ pending: Uint8Array }>, chunk: Uint8Array): void {
    const b = concat(s.data.pending, chunk);
    let off = 0;
    while (b.length - off >= SERVER_HEADER_SIZE) {
      const size = SERVER_HEADER_SIZE + new DataView(b.buffer, b.byteOffset + off).getInt32(0, true);
      if (b.length - off < size) break;
      const f = decodeBackendFrame(b, off);
      if (f.opcode === OpCode.Ping) s.write(encodeBackendFrame({ opcode: OpCode.Pong, sessionId: 0n, body: f.body }));
      else if (f.opcode !== OpCode.Pong) this.frames.push({ opcode: f.opcode, sessionId: f.sessionId, type: f.type, body: f.body });
      off += size;
    }
    s.data.pending = b.slice(off);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export function sessionIdOf(s: Session): bigint {
  return BigInt.asIntN(64, (BigInt(s.hi >>> 0) << 32n) | BigInt(s.lo >>> 0));
}

/** The client side as a link sees it: where the session came from, and whether it is reading. */
export class ObservedClient {
  readonly protocol: ClientProtocol = "tcp";
  readonly remoteAddress = "127.0.0.1:40000";
  readonly traceParent = null;
  session: Session | null = null;
  flushPending = false;
  closing = false;
  reading = true;
  pauses = 0;
  send(): boolean {
    return true;
  }
  lend(): boolean {
    return true;
  }
  flush(): void {}
  close(_reason: CloseReason): void {
    this.closing = true;
  }
  pauseReading(): void {
    this.reading = false;
    this.pauses++;
  }
  resumeReading(): void {
    this.reading = true;
  }
}

const LIMITS: LinkLimits = { highWater: 16 * 1024, limit: 64 * 1024 };
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

export function backendLinkContract(name: string, factory: LinkFactory, startBackend: ContractBackendFactory = () => new WireBackend()): void {
  describe(`BackendLink contract: ${name}`, () => {
    let backend: ContractBackend | null = null;
    let fixture: LinkFixture | null = null;
    let nextLo = 1;

    afterEach(async () => {
      await fixture?.close();
      backend?.stop();
      fixture = null;
      backend = null;
    });

    async function setup() {
      backend = await startBackend();
      fixture = factory(backend.port, LIMITS);
      const f = fixture;
      const open = () => {
        const client = new ObservedClient();
        const session = new Session(7, nextLo++, client as ClientPort, { serverType: 10, worldId: 0, instId: 0 }, Date.now());
        client.session = session;
        return { session, client, link: f.bind(session) };
      };
      return { backend, open };
    }

    function trans(link: BackendLink, session: Session, type: number, body: Uint8Array): boolean {
      const frame = encodeClientFrame(type, 0, body);
      return link.sendTrans(session, frame, 0, frame.length);
    }

    test("a bound session is announced with Connect; its frames follow as Trans with type and body intact, in order", async () => {
      const { backend, open } = await setup();
      const { session, link } = open();
      expect(link.endpoint).toBe(`127.0.0.1:${backend.port}`);
      for (let i = 0; i < 20; i++) expect(trans(link, session, 100 + i, text(`m${i}`))).toBe(true);
      await eventually(() => backend.of(session, OpCode.Trans).length === 20, "20 Trans frames");
      const frames = backend.of(session);
      expect(frames[0]!.opcode).toBe(OpCode.Connect);
      expect(JSON.parse(str(frames[0]!.body))).toMatchObject({ client_ip: "127.0.0.1:40000", protocol: "tcp" });
      expect(frames.slice(1).map((f) => [f.opcode, f.type, str(f.body)])).toEqual(
        Array.from({ length: 20 }, (_, i) => [OpCode.Trans, 100 + i, `m${i}`]),
      );
    });

    test("sessions sharing the backend keep their own identity and order", async () => {
      const { backend, open } = await setup();
      const a = open();
      const b = open();
      for (let i = 0; i < 10; i++) {
        trans(a.link, a.session, 1, text(`a${i}`));
        trans(b.link, b.session, 1, text(`b${i}`));
      }
      await eventually(() => backend.of(a.session, OpCode.Trans).length === 10 && backend.of(b.session, OpCode.Trans).length === 10, "both sessions' frames");
      expect(backend.of(a.session, OpCode.Trans).map((f) => str(f.body))).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
      expect(backend.of(b.session, OpCode.Trans).map((f) => str(f.body))).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
    });

    test("release sends Disconnect with the reason, after the session's frames", async () => {
      const { backend, open } = await setup();
      const { session, link } = open();
      trans(link, session, 1, text("last words"));
      link.release(session, "client_closed");
      await eventually(() => backend.of(session, OpCode.Disconnect).length === 1, "Disconnect");
      const frames = backend.of(session);
      expect(frames.map((f) => f.opcode)).toEqual([OpCode.Connect, OpCode.Trans, OpCode.Disconnect]);
      expect(JSON.parse(str(frames[2]!.body))).toMatchObject({ reason: "client_closed" });
    });

    test("congested, it pauses the sending client; relieved, it resumes it", async () => {
      const { backend, open } = await setup();
      const { session, client, link } = open();
      const body = new Uint8Array(1_000);
      // One event-loop turn: nothing is written yet, so the queue passes high water for certain.
      let sent = 0;
      while (client.reading && sent < LIMITS.limit / 1_000) {
        expect(trans(link, session, 1, body)).toBe(true);
        sent++;
      }
      expect(client.reading).toBe(false);
      await eventually(() => client.reading, "the client to be resumed");
      await eventually(() => backend.of(session, OpCode.Trans).length === sent, "every frame to arrive");
      expect(client.pauses).toBe(1);
    });

    test("at its hard bound sendTrans returns false and queues nothing; what it accepted all arrives", async () => {
      const { backend, open } = await setup();
      const { session, link } = open();
      const body = new Uint8Array(1_000);
      let accepted = 0;
      while (trans(link, session, 1, body)) {
        accepted++;
        expect(accepted).toBeLessThanOrEqual(LIMITS.limit / (CLIENT_HEADER_SIZE + body.length));
      }
      expect(accepted).toBeGreaterThan(LIMITS.highWater / body.length);
      // A marker sent once the queue has room again lands right after the accepted frames: had the
      // refused frame been queued, it would sit between them.
      await eventually(() => trans(link, session, 2, text("marker")), "room on the link again");
      await eventually(() => backend.of(session, OpCode.Trans).some((f) => f.type === 2), "the marker");
      const types = backend.of(session, OpCode.Trans).map((f) => f.type);
      expect(types).toHaveLength(accepted + 1);
      expect(types.at(-1)).toBe(2);
    });

    test("a backend that stops reading makes the link refuse rather than grow; it takes the rest once it reads again", async () => {
      const { backend, open } = await setup();
      const { session, link } = open();
      await eventually(() => backend.of(session, OpCode.Connect).length === 1, "the session's Connect");
      backend.stall();
      const body = new Uint8Array(1_000);
      let accepted = 0;
      // The kernel's buffers take megabytes first; each turn the link writes what they take.
      await eventually(
        async () => {
          while (trans(link, session, 1, body)) accepted++;
          await Bun.sleep(1);
          if (!trans(link, session, 1, body)) return true;
          accepted++;
          return false;
        },
        "the link to stay at its bound while the backend reads nothing",
        30_000,
      );
      backend.resume();
      await eventually(() => backend.of(session, OpCode.Trans).length === accepted, `all ${accepted} accepted frames`, 30_000);
    });
  });
}
