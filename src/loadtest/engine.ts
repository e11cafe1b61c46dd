// The load generator of one process: opens its share of client connections and measures true
// round trips through the gateway. Every frame's body carries its sequence number, its send time
// and its connection's id, so each echoed reply is checked byte for byte against what was sent
// and timed from the moment it was handed to the socket.
//
// It shares a small machine with the gateway it measures, so the per-message path allocates
// nothing: one handler object for every socket (state in socket.data), frames parsed in place by
// FrameReader, each frame encoded into one preallocated buffer, and a single interval timer per
// process drives dials, open-loop sends, timeouts and progress for all connections. Replies pace
// the open-loop sends as well: an event loop with a backlog of reads runs its timers only after
// it (100s of ms under load, in Bun as in Node), and the sends due meanwhile would otherwise leave
// in one burst.
import type { Socket, TCPSocketConnectOptions } from "bun";
import { BufferPool, DEFAULT_CLASSES } from "../net/buffer-pool.ts";
import { FrameReader, type FrameHandler } from "../net/frame-reader.ts";
import { QueuedSocketWriter, type ByteSink } from "../net/socket-writer.ts";
import { CLIENT_HEADER_SIZE, MAX_CLIENT_BODY, writeClientHeader } from "../protocol/client-frame.ts";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import { Histogram } from "./histogram.ts";
import { certificateRefusal, type ClientTls } from "./tls-probe.ts";
import { MIN_BODY_SIZE, sourceAddress } from "./options.ts";
import { type ErrorKind, type ProgressSnapshot, type RunResult, zeroErrors } from "./result.ts";

export type { ClientTls } from "./tls-probe.ts";

export interface EngineConfig {
  readonly host: string;
  readonly port: number;
  /** WebSocket clients (--ws): the path on host:port to open; null for TCP clients. */
  readonly wsPath: string | null;
  /** TLS to the listener (TCP over TLS, or wss://); null for plain connections. */
  readonly tls: ClientTls | null;
  /** Connections this process opens. */
  readonly connections: number;
  /** Global id of this process's first connection (ids are unique across worker processes). */
  readonly connBase: number;
  readonly durationMs: number;
  /** Messages per second per connection; 0 = closed loop. */
  readonly rate: number;
  /** Closed loop: messages in flight per connection. */
  readonly inFlight: number;
  /** Body bytes, at least MIN_BODY_SIZE. */
  readonly messageSize: number;
  readonly serverId: number;
  readonly messageId: number;
  readonly dialTimeoutMs: number;
  readonly replyTimeoutMs: number;
  /** Connections opened per second by this process; 0 = all at once. */
  readonly ramp: number;
  /** Spread connections over N source addresses from 127.0.0.1 up (1 = let the kernel pick). */
  readonly sourceAddresses: number;
  readonly verbose: boolean;
  readonly log: (line: string) => void;
  readonly onProgress?: (p: ProgressSnapshot) => void;
  /**
   * Open loop: the pacing timer's period in ms (default OPEN_LOOP_TICK_MS). Internal: tests make
   * the timer slow to show that replies pace the sends too; not a CLI flag.
   */
  readonly pacingTickMs?: number;
}

/**
 * A MessageID the demo backend echoes (its own messages are 0xFF01..0xFF04). Echo backends in
 * general return Type and ServerID as sent, and the reply check relies on that.
 */
export const LOADTEST_MESSAGE_ID = 0x0001;

// Body layout, as offsets in the whole frame: u32 sequence, f64 send time (performance.now()
// in ms), u32 connection id, then a fixed fill pattern up to the message size.
const SEQ_AT = CLIENT_HEADER_SIZE;
const TIME_AT = SEQ_AT + 4;
const CONN_AT = TIME_AT + 8;
const FILL_AT = CONN_AT + 4;

// Connection states.
const IDLE = 0;
const CONNECTING = 1;
const OPEN = 2;
const CLOSED = 3;

// Run phases.
const RUNNING = 0;
const DRAINING = 1;
const CLOSING = 2;
const DONE = 3;

const SCAN_INTERVAL_MS = 100;
/** Open loop: sends overdue by more than this (a stalled event loop) are skipped, not bunched. */
const CATCH_UP_MS = 100;
/**
 * The timer's period: open loop (its pacing is late by up to a period: at 5 ms the oldest send
 * of each tick was 4-6 ms late even on a quiet machine), a ramped closed loop, any other.
 */
const OPEN_LOOP_TICK_MS = 1;
const RAMP_TICK_MS = 5;
const CLOSED_LOOP_TICK_MS = 50;
/**
 * Open loop: a reply paces the sends due too, at most once per this many ms. Behind a backlog of
 * socket reads the timer can go unrun for 100-300 ms; replies keep the schedule then, and the
 * throttle keeps the per-reply cost to one comparison.
 */
const PACE_FROM_REPLY_MS = 1;
const PROGRESS_INTERVAL_MS = 1000;
/** How long closing waits for sockets to report closed before terminating them. */
const CLOSE_GRACE_MS = 2000;
/** Failure lines logged per error kind with -verbose; the rest are only counted. */
const VERBOSE_LINES_PER_KIND = 10;
/** Open loop: the most frames kept in flight per connection (bounds the send-time ring). */
const MAX_RING = 1 << 16;

// One layout, pool and handler object for the whole process. The layout admits any u16 Length,
// so the reader never reports a framing error.
const layout = new ClientFrameLayout(MAX_CLIENT_BODY);
const pool = new BufferPool({ classes: DEFAULT_CLASSES, maxIdleBytes: 16 * 1024 * 1024 });

function ignore(): void {}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

/** What the engine needs of a client connection: a Bun TCP socket, or a WebSocket seen as one (WsSocket). */
interface ClientSocket {
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  end(): void;
  terminate(): void;
  setNoDelay(noDelay: boolean): unknown;
  readonly localAddress: string;
}

/**
 * A client WebSocket (--ws) as the engine's byte socket: each write goes out as one binary
 * message (the gateway reframes the stream, so message boundaries do not matter). Its outgoing
 * buffer needs no bound of its own: the frames in flight per connection are bounded by the
 * engine's ring, so at most a ring's worth of frames is ever buffered.
 */
class WsSocket implements ClientSocket {
  readonly localAddress = "";

  constructor(private readonly ws: WebSocket) {}

  write(data: Uint8Array, byteOffset = 0, byteLength = data.length - byteOffset): number {
    if (this.ws.readyState !== WebSocket.OPEN) return -1;
    // Bun copies the payload into the socket's buffer, so the engine may reuse its frame buffer at once.
    this.ws.send(byteOffset === 0 && byteLength === data.length ? data : data.subarray(byteOffset, byteOffset + byteLength));
    return byteLength;
  }

  end(): void {
    this.ws.close(1000, "load test done");
  }

  terminate(): void {
    const ws = this.ws as WebSocket & { terminate?: () => void };
    if (ws.terminate !== undefined) ws.terminate();
    else ws.close();
  }

  setNoDelay(): void {
    // Bun's WebSocket client sets TCP_NODELAY itself.
  }
}

class Conn implements FrameHandler<ClientViolation>, ByteSink {
  socket: ClientSocket | null = null;
  writer: QueuedSocketWriter | null = null;
  readonly reader: FrameReader<ClientViolation>;
  /** Send time of each frame in flight, indexed by sequence & (length - 1). */
  readonly sendTimes: Float64Array;
  readonly mask: number;
  state = IDLE;
  dialAt = 0;
  /** Sequence of the next frame to send; frames [ackSeq, nextSeq) are in flight, oldest first. */
  nextSeq = 0;
  ackSeq = 0;
  /** First sequence ever timed out (-1: none), so a reply older than ackSeq can be told late, not wrong. */
  timeoutFloor = -1;
  closedByUs = false;
  writeFailed = false;
  lastError: Error | null = null;

  constructor(
    readonly engine: Engine,
    readonly id: number,
    ring: number,
  ) {
    this.reader = new FrameReader(layout, this, pool);
    this.sendTimes = new Float64Array(ring);
    this.mask = ring - 1;
  }

  // ByteSink for the writer: notes a write to a socket that has closed under us.
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number {
    const n = this.socket!.write(data, byteOffset, byteLength);
    if (n < 0) this.writeFailed = true;
    return n;
  }

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    return this.engine.onReply(this, b, off, len);
  }

  onFramingError(_reason: ClientViolation): void {
    this.socket?.end();
  }
}

const handlers = {
  binaryType: "uint8array" as const,
  open(socket: Socket<Conn>) {
    socket.data.engine.onOpen(socket.data, socket);
  },
  data(socket: Socket<Conn>, chunk: Uint8Array) {
    const c = socket.data;
    c.engine.bytesIn += chunk.length;
    c.reader.feed(chunk);
  },
  drain(socket: Socket<Conn>) {
    socket.data.writer?.flush();
  },
  close(socket: Socket<Conn>, error?: Error) {
    socket.data.engine.onClose(socket.data, error);
  },
  error(socket: Socket<Conn>, error: Error) {
    socket.data.lastError = error;
  },
  connectError(socket: Socket<Conn>, error: Error) {
    socket.data.engine.onConnectError(socket.data, error);
  },
};

/**
 * --tls: the same, but the connection counts as open once the handshake is done, and a
 * certificate the client does not accept is a connect_failed naming why (without a handshake
 * handler Bun would call open first and close after: a closed_by_peer that hides the cause).
 */
const tlsHandlers = {
  ...handlers,
  open() {},
  handshake(socket: Socket<Conn>, _success: boolean, authorizationError: Error | null) {
    const c = socket.data;
    if (authorizationError !== null && c.engine.verifiesCertificates) {
      c.engine.onConnectError(c, new Error(`TLS: server certificate not accepted: ${authorizationError.message}`));
      socket.terminate();
      return;
    }
    c.engine.onOpen(c, socket);
  },
};

/**
 * Bun.connect binds a source address when given `localAddress` (Bun 1.4.5 honours it, though
 * bun-types does not declare it); onOpen checks the bound address and warns if it was ignored.
 */
type ConnectOptions = TCPSocketConnectOptions<Conn> & { localAddress?: string };

export class Engine {
  private readonly cfg: EngineConfig;
  private readonly conns: Conn[];
  /** The one frame buffer every send is encoded into; header and fill are written once. */
  private readonly frame: Uint8Array;
  private readonly frameLen: number;
  private readonly f64 = new Float64Array(1);
  private readonly f64b = new Uint8Array(this.f64.buffer);
  private readonly writeLimit: number;
  private readonly connectHost: string;
  private readonly latency = new Histogram();
  /** Open loop: lateness of the oldest slot each pacing call sent, in µs. */
  private readonly pacingLate = new Histogram();
  private readonly errors = zeroErrors();
  private readonly logged = zeroErrors();
  private readonly warnings: string[] = [];
  private readonly tickFn = (): void => this.tick();
  private timer: ReturnType<typeof setInterval> | null = null;
  private resolveRun: ((r: RunResult) => void) | null = null;

  private phase = RUNNING;
  private t0 = 0;
  private deadline = 0;
  private drainUntil = 0;
  private closeUntil = 0;
  private lastScan = 0;
  private nextProgress = 0;
  private lastReplyAt = 0;
  /** Open loop: send slots issued since t0 (slot k is due at t0 + k * slotMs, for connection k mod n). */
  private issued = 0;
  private readonly slotMs: number;
  /** Open loop: the most overdue slots sent in one pacing call. */
  private readonly catchUpSlots: number;
  /** Open loop: when the sends due were last paced (by the timer or by a reply). */
  private lastPacedAt = 0;
  private sourceChecked = false;

  // Counters (plain fields: the hot path bumps them directly).
  private dialed = 0;
  private connecting = 0;
  private open = 0;
  private ok = 0;
  private failed = 0;
  private closedByPeer = 0;
  private sent = 0;
  private received = 0;
  private timedOut = 0;
  private lost = 0;
  private late = 0;
  private skipped = 0;
  private sentFromReplies = 0;
  private sentFromTimer = 0;
  private bytesOut = 0;
  bytesIn = 0;

  /** Why the server's certificate is refused (one probe per run, asked once a wss:// connection fails to open). */
  private certificateProbe: Promise<string | null> | null = null;

  private wssCertificateRefusal(): Promise<string | null> {
    return (this.certificateProbe ??= certificateRefusal(this.connectHost, this.cfg.port, this.cfg.tls!));
  }

  /** --tls with the certificate checked (a CA given, or the system's). */
  get verifiesCertificates(): boolean {
    return this.cfg.tls !== null && this.cfg.tls.rejectUnauthorized;
  }

  constructor(cfg: EngineConfig) {
    if (cfg.messageSize < MIN_BODY_SIZE) throw new RangeError(`message size ${cfg.messageSize} is below ${MIN_BODY_SIZE}`);
    this.cfg = cfg;
    this.frameLen = CLIENT_HEADER_SIZE + cfg.messageSize;
    this.frame = new Uint8Array(this.frameLen);
    writeClientHeader(this.frame, 0, cfg.messageSize, cfg.messageId, cfg.serverId);
    // A fill that differs from byte to byte, so a shifted or swapped byte is noticed too.
    for (let i = FILL_AT; i < this.frameLen; i++) this.frame[i] = (i * 31 + 7) & 0xff;
    const ring =
      cfg.rate > 0
        ? nextPow2(Math.min(MAX_RING, Math.ceil((cfg.rate * cfg.replyTimeoutMs) / 1000) + 2))
        : nextPow2(cfg.inFlight);
    // What is in flight is already bounded by the ring; the queue only has to hold that.
    this.writeLimit = Math.min(16 * 1024 * 1024, Math.max(64 * 1024, 2 * ring * this.frameLen));
    this.conns = [];
    for (let i = 0; i < cfg.connections; i++) this.conns.push(new Conn(this, cfg.connBase + i, ring));
    this.slotMs = cfg.rate > 0 ? 1000 / (cfg.rate * cfg.connections) : 0;
    this.catchUpSlots = cfg.rate > 0 ? Math.max(1, Math.ceil(CATCH_UP_MS / this.slotMs)) : 0;
    // A source address in 127/8 cannot reach ::1, which "localhost" may resolve to.
    this.connectHost = cfg.sourceAddresses > 1 && cfg.host === "localhost" ? "127.0.0.1" : cfg.host;
  }

  /** Runs the whole test: dial, send for durationMs, wait for replies, close. */
  run(): Promise<RunResult> {
    return new Promise((resolve) => {
      this.resolveRun = resolve;
      const now = performance.now();
      this.t0 = now;
      this.deadline = now + this.cfg.durationMs;
      this.lastScan = now;
      this.lastPacedAt = now;
      this.nextProgress = now + PROGRESS_INTERVAL_MS;
      const tickMs =
        this.cfg.rate > 0 ? (this.cfg.pacingTickMs ?? OPEN_LOOP_TICK_MS) : this.cfg.ramp > 0 ? RAMP_TICK_MS : CLOSED_LOOP_TICK_MS;
      this.timer = setInterval(this.tickFn, tickMs);
      this.dialDue(now);
    });
  }

  /** Stops sending now (e.g. on Ctrl-C); the run still waits for replies and reports. */
  stopEarly(): void {
    if (this.phase !== RUNNING) return;
    const now = performance.now();
    if (now < this.deadline) this.deadline = now;
    this.tick();
  }

  // --- the timer -------------------------------------------------------------------------

  private tick(): void {
    const now = performance.now();
    if (this.phase === RUNNING) {
      // Every connection has been dialled and none is open or opening: nothing left to measure.
      if (this.dialed === this.conns.length && this.connecting === 0 && this.open === 0 && now < this.deadline) {
        this.deadline = now;
      }
      if (now >= this.deadline) {
        if (this.cfg.rate > 0) this.openLoop(this.deadline, now, false);
        this.startDrain(now);
      } else {
        this.dialDue(now);
        if (this.cfg.rate > 0) this.openLoop(now, now, false);
      }
    }
    if (now - this.lastScan >= SCAN_INTERVAL_MS || this.phase !== RUNNING) {
      this.lastScan = now;
      this.scan(now);
    }
    if (this.cfg.onProgress !== undefined && now >= this.nextProgress && this.phase !== DONE) {
      this.nextProgress += PROGRESS_INTERVAL_MS;
      // After a long stall, one line, not a burst of catch-up lines.
      if (this.nextProgress <= now) this.nextProgress = now + PROGRESS_INTERVAL_MS;
      this.cfg.onProgress(this.snapshot(now));
    }
    if (this.phase === DRAINING && ((this.inFlight() === 0 && this.connecting === 0) || now >= this.drainUntil)) {
      this.startClosing(now);
    }
    if (this.phase === CLOSING && (this.open === 0 || now >= this.closeUntil)) this.finish();
  }

  private dialDue(now: number): void {
    const n = this.conns.length;
    // +1: the first connection is dialled at once, not after 1/ramp seconds.
    const target = this.cfg.ramp > 0 ? Math.min(n, Math.floor(((now - this.t0) / 1000) * this.cfg.ramp) + 1) : n;
    while (this.dialed < target) this.dial(this.conns[this.dialed]!);
  }

  /**
   * Sends every slot due up to `until` (now, or the deadline when the run is over), stamped
   * `now`. The slots of all connections interleave evenly over each 1/rate period, so the work
   * per call is proportional to the sends, not to the connections. Called from the timer and,
   * at most once per PACE_FROM_REPLY_MS, from a reply (fromReply).
   */
  private openLoop(until: number, now: number, fromReply: boolean): void {
    this.lastPacedAt = now;
    const n = this.conns.length;
    const due = Math.floor((until - this.t0) / this.slotMs) + 1;
    const k = due - this.issued;
    if (k <= 0) return;
    const cap = this.catchUpSlots;
    if (k > cap) {
      // The event loop stalled: sending the whole backlog at once would be a burst the schedule
      // never asked for, so slots older than the catch-up window are counted, not sent.
      this.skipped += Math.round(((k - cap) * this.open) / n);
      this.issued = due - cap;
    }
    const sentBefore = this.sent;
    // The first slot that really went out (a slot of a connection not open yet sends nothing).
    let oldestSent = -1;
    let cur = this.issued % n;
    for (let slot = this.issued; slot < due; slot++) {
      const c = this.conns[cur]!;
      if (c.state === OPEN && this.send(c, now) && oldestSent < 0) oldestSent = slot;
      if (++cur === n) cur = 0;
    }
    this.issued = due;
    const sent = this.sent - sentBefore;
    if (sent === 0) return;
    this.pacingLate.record((now - (this.t0 + oldestSent * this.slotMs)) * 1000);
    if (fromReply) this.sentFromReplies += sent;
    else this.sentFromTimer += sent;
  }

  private scan(now: number): void {
    const dialCut = now - this.cfg.dialTimeoutMs;
    const replyCut = now - this.cfg.replyTimeoutMs;
    const closedLoop = this.cfg.rate === 0;
    for (const c of this.conns) {
      if (c.state === OPEN) {
        let expired = 0;
        while (c.ackSeq !== c.nextSeq && c.sendTimes[c.ackSeq & c.mask]! <= replyCut) {
          if (c.timeoutFloor < 0) c.timeoutFloor = c.ackSeq;
          c.ackSeq++;
          expired++;
        }
        if (expired > 0) {
          this.timedOut += expired;
          this.count("reply_timeout", expired, c);
          if (closedLoop && this.phase === RUNNING) for (let i = 0; i < expired; i++) this.send(c, now);
        }
      } else if (c.state === CONNECTING && c.dialAt <= dialCut) {
        c.state = CLOSED;
        this.connecting--;
        this.failed++;
        this.count("connect_timeout", 1, c);
      }
    }
  }

  private startDrain(now: number): void {
    this.phase = DRAINING;
    // Long enough for the scan to time out every frame sent before the deadline, and for every
    // dial started before it to open or time out.
    this.drainUntil = now + Math.max(this.cfg.replyTimeoutMs, this.cfg.dialTimeoutMs) + 2 * SCAN_INTERVAL_MS;
  }

  private startClosing(now: number): void {
    this.phase = CLOSING;
    this.closeUntil = now + CLOSE_GRACE_MS;
    for (const c of this.conns) {
      if (c.state === OPEN) {
        c.closedByUs = true;
        c.socket!.end();
      } else if (c.state === CONNECTING) {
        // Still dialling after the drain: it is abandoned (onOpen will close it).
        c.state = CLOSED;
        this.connecting--;
        this.failed++;
        this.count("connect_timeout", 1, c);
      }
    }
  }

  private finish(): void {
    if (this.phase === DONE) return;
    for (const c of this.conns) {
      if (c.state !== OPEN) continue;
      // Accounted here, not in its close event, which may come after the result is taken.
      const socket = c.socket!;
      this.onClose(c);
      socket.terminate();
    }
    this.phase = DONE;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const resolve = this.resolveRun;
    this.resolveRun = null;
    resolve?.(this.result());
  }

  // --- connections -----------------------------------------------------------------------

  private dial(c: Conn): void {
    this.dialed++;
    this.connecting++;
    c.state = CONNECTING;
    c.dialAt = performance.now();
    if (this.cfg.wsPath !== null) {
      this.dialWs(c, this.cfg.wsPath);
      return;
    }
    const tls = this.cfg.tls;
    const opts: ConnectOptions = { hostname: this.connectHost, port: this.cfg.port, socket: tls === null ? handlers : tlsHandlers, data: c };
    if (tls !== null) opts.tls = tls;
    const spread = this.cfg.sourceAddresses;
    if (spread > 1) opts.localAddress = sourceAddress(c.id % spread);
    try {
      // Failures arrive through handlers.connectError; the promise only needs its rejection handled.
      Bun.connect(opts).catch(ignore);
    } catch (e) {
      this.onConnectError(c, e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** One WebSocket client; its four handlers are set once per connection, none per message. */
  private dialWs(c: Conn, path: string): void {
    let ws: WebSocket;
    try {
      const url = `${this.cfg.tls === null ? "ws" : "wss"}://${this.connectHost.includes(":") ? `[${this.connectHost}]` : this.connectHost}:${this.cfg.port}${path}`;
      ws = this.cfg.tls === null ? new WebSocket(url) : new WebSocket(url, { tls: this.cfg.tls });
    } catch (e) {
      this.onConnectError(c, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    ws.binaryType = "arraybuffer";
    const socket = new WsSocket(ws);
    ws.onopen = () => this.onOpen(c, socket);
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data === "string") return;
      const chunk = new Uint8Array(e.data as ArrayBuffer);
      this.bytesIn += chunk.length;
      c.reader.feed(chunk);
    };
    ws.onerror = () => {
      if (c.state !== CONNECTING) return;
      const failed = `WebSocket to ${ws.url} failed to open`;
      if (!this.verifiesCertificates) return this.onConnectError(c, new Error(failed));
      // Bun does not say why: a refused certificate is named as the TCP --tls clients name it.
      void this.wssCertificateRefusal().then((why) => this.onConnectError(c, new Error(why === null ? failed : `${failed}: ${why}`)));
    };
    ws.onclose = (e: CloseEvent) => {
      this.onClose(c, e.code === 1000 || e.code === 1005 ? undefined : new Error(`WebSocket closed with ${e.code}${e.reason === "" ? "" : ` (${e.reason})`}`));
    };
  }

  onOpen(c: Conn, socket: ClientSocket): void {
    if (c.state !== CONNECTING) {
      // Counted as connect_timeout already, or abandoned at the end of the run.
      socket.terminate();
      return;
    }
    this.connecting--;
    c.state = OPEN;
    c.socket = socket;
    socket.setNoDelay(true);
    c.writer = new QueuedSocketWriter(c, pool, this.writeLimit);
    this.ok++;
    this.open++;
    if (!this.sourceChecked && this.cfg.sourceAddresses > 1) {
      this.sourceChecked = true;
      const want = sourceAddress(c.id % this.cfg.sourceAddresses);
      if (socket.localAddress !== want) {
        this.warnings.push(
          `source address spreading is not honoured by this Bun (asked ${want}, bound ${socket.localAddress}): all connections share one source address`,
        );
      }
    }
    if (this.phase !== RUNNING) {
      c.closedByUs = true;
      socket.end();
      return;
    }
    if (this.cfg.rate === 0) {
      const now = performance.now();
      for (let i = 0; i < this.cfg.inFlight; i++) if (!this.send(c, now)) break;
    }
  }

  onConnectError(c: Conn, error: Error): void {
    if (c.state !== CONNECTING) return;
    c.state = CLOSED;
    this.connecting--;
    this.failed++;
    c.lastError = error;
    this.count("connect_failed", 1, c);
  }

  onClose(c: Conn, error?: Error): void {
    if (c.state !== OPEN) return;
    c.state = CLOSED;
    this.open--;
    if (error !== undefined) c.lastError = error;
    const left = c.nextSeq - c.ackSeq;
    c.ackSeq = c.nextSeq;
    if (!c.closedByUs) {
      this.closedByPeer++;
      this.lost += left;
      this.count("closed_by_peer", 1, c);
    } else if (left > 0) {
      // We closed it with frames unanswered: only when stopped before the drain ran out.
      this.timedOut += left;
      this.count("reply_timeout", left, c);
    }
    c.reader.stop();
    c.writer?.release();
  }

  // --- messages --------------------------------------------------------------------------

  /** Encodes and sends one frame to c; false when it could not be sent. */
  private send(c: Conn, now: number): boolean {
    const seq = c.nextSeq;
    if (seq - c.ackSeq >= c.sendTimes.length) {
      // A reply timeout's worth already in flight on this connection.
      this.skipped++;
      return false;
    }
    const f = this.frame;
    writeU32(f, SEQ_AT, seq);
    const t = this.f64b;
    this.f64[0] = now;
    for (let i = 0; i < 8; i++) f[TIME_AT + i] = t[i]!;
    writeU32(f, CONN_AT, c.id);
    c.writeFailed = false;
    if (!c.writer!.write(f, 0, this.frameLen)) {
      // The write queue is full: the peer has stopped reading.
      this.count("send_failed", 1, c);
      return false;
    }
    // The socket closed under us and its close event is on the way: that is counted once, as
    // closed_by_peer, and this frame was never sent.
    if (c.writeFailed) return false;
    c.sendTimes[seq & c.mask] = now;
    c.nextSeq = seq + 1;
    this.sent++;
    this.bytesOut += this.frameLen;
    return true;
  }

  /** One echoed frame: matched and timed, then (open loop) the sends due are paced. */
  onReply(c: Conn, b: Uint8Array, off: number, len: number): boolean {
    const now = performance.now();
    this.matchReply(c, b, off, len, now);
    // Bun may leave the timer unrun for 100s of ms while it keeps dispatching reads: a reply
    // paces the open loop too, so the sends due meanwhile go out on time, not in one burst.
    if (this.slotMs > 0 && now - this.lastPacedAt >= PACE_FROM_REPLY_MS && this.phase === RUNNING && now < this.deadline) {
      this.openLoop(now, now, true);
    }
    return true;
  }

  /** Matches a reply to the oldest frame in flight on c and compares every byte. */
  private matchReply(c: Conn, b: Uint8Array, off: number, len: number, now: number): void {
    const expected = c.ackSeq;
    const f = this.frame;
    const whole = len === this.frameLen;
    const bodySeq = whole ? readU32(b, off + SEQ_AT) : -1;
    if (expected === c.nextSeq) {
      if (this.isLate(c, b, off, bodySeq)) this.late++;
      else this.mismatch(c, b, off, len, "a frame with nothing in flight");
      return;
    }
    let why: string | null = null;
    if (!whole) why = "length";
    else {
      for (let i = 0; i < CLIENT_HEADER_SIZE; i++) {
        if (b[off + i] !== f[i]) {
          why = "header (MessageID or ServerID)";
          break;
        }
      }
    }
    if (why === null && bodySeq !== expected >>> 0) {
      if (this.isLate(c, b, off, bodySeq)) {
        this.late++;
        return;
      }
      why = "sequence number";
    }
    const sentAt = c.sendTimes[expected & c.mask]!;
    if (why === null) {
      const t = this.f64b;
      for (let i = 0; i < 8; i++) t[i] = b[off + TIME_AT + i]!;
      if (this.f64[0] !== sentAt) why = "send time";
      else if (readU32(b, off + CONN_AT) !== c.id) why = "connection id";
      else {
        for (let i = FILL_AT; i < len; i++) {
          if (b[off + i] !== f[i]) {
            why = "body fill";
            break;
          }
        }
      }
    }
    // A wrong reply still answers the oldest frame: the stream stays in step for the next one.
    c.ackSeq = expected + 1;
    this.received++;
    if (now > this.lastReplyAt) this.lastReplyAt = now;
    if (why === null) this.latency.record((now - sentAt) * 1000);
    else this.mismatch(c, b, off, len, why);
    if (this.cfg.rate === 0 && this.phase === RUNNING) this.send(c, now);
  }

  /** A well-formed echo of a frame already counted as timed out on this connection. */
  private isLate(c: Conn, b: Uint8Array, off: number, bodySeq: number): boolean {
    return (
      bodySeq >= 0 &&
      c.timeoutFloor >= 0 &&
      bodySeq >= c.timeoutFloor >>> 0 &&
      bodySeq < c.ackSeq >>> 0 &&
      readU32(b, off + CONN_AT) === c.id
    );
  }

  private mismatch(c: Conn, b: Uint8Array, off: number, len: number, why: string): void {
    this.errors.reply_mismatch++;
    if (!this.cfg.verbose || this.logged.reply_mismatch > VERBOSE_LINES_PER_KIND) return;
    const shown = Math.min(len, 48);
    const got = Buffer.from(b.buffer, b.byteOffset + off, shown).toString("hex");
    const want = Buffer.from(this.frame.buffer, 0, Math.min(this.frameLen, 48)).toString("hex");
    this.verboseLine("reply_mismatch", `connection ${c.id}: reply differs in ${why}; got ${len} bytes ${got}…, sending template ${want}…`);
  }

  private count(kind: ErrorKind, n: number, c: Conn): void {
    this.errors[kind] += n;
    if (!this.cfg.verbose || this.logged[kind] > VERBOSE_LINES_PER_KIND) return;
    const cause = c.lastError ? `: ${c.lastError.message}${"code" in c.lastError ? ` (${String(c.lastError.code)})` : ""}` : "";
    this.verboseLine(kind, `connection ${c.id}: ${kind}${n > 1 ? ` x${n}` : ""}${cause}`);
  }

  private verboseLine(kind: ErrorKind, line: string): void {
    const n = ++this.logged[kind];
    if (n <= VERBOSE_LINES_PER_KIND) this.cfg.log(line);
    else this.cfg.log(`(further ${kind} errors are counted, not logged)`);
  }

  // --- reporting -------------------------------------------------------------------------

  private inFlight(): number {
    return this.sent - this.received - this.timedOut - this.lost;
  }

  private snapshot(now: number): ProgressSnapshot {
    let errors = 0;
    for (const k in this.errors) errors += this.errors[k as ErrorKind];
    return {
      elapsedMs: now - this.t0,
      open: this.open,
      attempted: this.dialed,
      failed: this.failed,
      sent: this.sent,
      received: this.received,
      errors,
      latency: this.latency.toJSON(),
    };
  }

  private result(): RunResult {
    const end = Math.max(this.deadline, this.lastReplyAt);
    const notDialed = this.conns.length - this.dialed;
    const warnings = [...this.warnings];
    if (notDialed > 0) {
      warnings.push(`${notDialed} connections were never dialled: the ramp did not reach them within the duration`);
    }
    if (this.skipped > 0) {
      warnings.push(
        `${this.skipped} open-loop sends were skipped (the generator fell behind, or a reply timeout's worth was in flight)`,
      );
    }
    return {
      elapsedMs: end - this.t0,
      connections: { attempted: this.dialed, ok: this.ok, failed: this.failed, closedByPeer: this.closedByPeer },
      messages: {
        sent: this.sent,
        received: this.received,
        timedOut: this.timedOut,
        lost: this.lost,
        late: this.late,
        skipped: this.skipped,
      },
      bytes: { sent: this.bytesOut, received: this.bytesIn },
      errors: { ...this.errors },
      latency: this.latency.toJSON(),
      pacing:
        this.cfg.rate > 0 ? { late: this.pacingLate.toJSON(), fromReplies: this.sentFromReplies, fromTimer: this.sentFromTimer } : null,
      warnings,
    };
  }
}
