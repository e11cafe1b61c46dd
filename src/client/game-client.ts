// A game client speaking the client protocol (docs/protocol.md): for tests, tools and
// load generation. Sends made in one event-loop turn are batched into one socket.write; received
// frames wait in a bounded queue until next() takes them.
import type { Socket } from "bun";
import { BufferPool, DEFAULT_CLASSES } from "../net/buffer-pool.ts";
import { FrameReader, type FrameHandler } from "../net/frame-reader.ts";
import { BatchedSocketWriter } from "../net/socket-writer.ts";
import {
  CLIENT_HEADER_SIZE,
  MAX_CLIENT_BODY,
  makeServerId,
  readClientMessageId,
  readClientServerId,
  writeClientHeader,
} from "../protocol/client-frame.ts";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import { Inbox } from "./inbox.ts";

export interface ClientFrame {
  readonly messageId: number;
  readonly serverId: number;
  readonly body: Uint8Array;
}

export interface GameClientOptions {
  /** Received frames held until taken; one more is an error surfaced by next(). Default 100,000. */
  maxQueuedFrames?: number;
  /**
   * Bytes that may wait for the socket; send() throws past it. Default 64 MiB: tests queue tens
   * of MB in one synchronous loop to overrun a gateway's bounds, before any of it is written.
   */
  maxQueuedBytes?: number;
}

export const DEFAULT_MAX_QUEUED_FRAMES = 100_000;
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const DEFAULT_NEXT_TIMEOUT_MS = 5000;
const WRITE_INITIAL_BYTES = 16 * 1024;

/** A ServerID for a plain (not compressed) message to serverType / worldId / instId. */
export function serverIdFor(serverType: number, worldId = 0, instId = 0): number {
  return makeServerId({ isZip: false, worldId, serverType, instId });
}

// Shared by every client in the process: a client holds a pooled buffer only while a frame is
// split across chunks, so thousands of load-test clients pin little memory.
const pool = new BufferPool({ classes: DEFAULT_CLASSES, maxIdleBytes: 16 * 1024 * 1024 });
// The u16 Length cannot exceed MAX_CLIENT_BODY, so this layout never reports a violation.
const layout = new ClientFrameLayout(MAX_CLIENT_BODY);
const encoder = new TextEncoder();

const socketHandlers = {
  binaryType: "uint8array" as const,
  open(socket: Socket<GameClient>) {
    socket.data.onOpen(socket);
  },
  data(socket: Socket<GameClient>, chunk: Uint8Array) {
    socket.data.onData(chunk);
  },
  drain(socket: Socket<GameClient>) {
    socket.data.onDrain();
  },
  close(socket: Socket<GameClient>, error?: Error) {
    socket.data.onClose(error);
  },
  error(socket: Socket<GameClient>, error: Error) {
    socket.data.onError(error);
  },
};

export class GameClient implements FrameHandler<ClientViolation> {
  private socket: Socket<GameClient> | null = null;
  private readonly reader: FrameReader<ClientViolation>;
  private readonly writer: BatchedSocketWriter;
  private readonly inbox: Inbox<ClientFrame>;
  private closedFlag = false;
  private closeCalled = false;
  private socketError: Error | null = null;
  private resolveClosed!: () => void;
  /** Frames received so far (including ones already taken). */
  framesReceived = 0;
  /** Resolves once the socket has closed, whoever closed it. */
  readonly closed: Promise<void>;

  private constructor(
    readonly host: string,
    readonly port: number,
    opts: GameClientOptions,
  ) {
    const maxBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.reader = new FrameReader(layout, this, pool);
    this.writer = new BatchedSocketWriter(WRITE_INITIAL_BYTES, maxBytes, maxBytes, () => {});
    this.inbox = new Inbox(opts.maxQueuedFrames ?? DEFAULT_MAX_QUEUED_FRAMES);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  static async connect(host: string, port: number, opts: GameClientOptions = {}): Promise<GameClient> {
    const client = new GameClient(host, port, opts);
    await Bun.connect({ hostname: host, port, socket: socketHandlers, data: client });
    return client;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** Bytes sent but not yet taken by the socket. */
  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  /** Received frames waiting for next(). */
  get pendingFrames(): number {
    return this.inbox.length;
  }

  /** Queues one frame; throws RangeError on a field out of range, Error when closed or the queue is full. */
  send(messageId: number, serverId: number, body: Uint8Array | string): void {
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    if (!Number.isInteger(messageId) || messageId < 0 || messageId > 0xffff) {
      throw new RangeError(`messageId ${messageId} is outside 0..65535`);
    }
    if (!Number.isInteger(serverId) || serverId < -0x80000000 || serverId > 0xffffffff) {
      throw new RangeError(`serverId ${serverId} is not a 32-bit value`);
    }
    if (bytes.length > MAX_CLIENT_BODY) {
      throw new RangeError(`body of ${bytes.length} bytes exceeds ${MAX_CLIENT_BODY}`);
    }
    const at = this.reserve(CLIENT_HEADER_SIZE + bytes.length);
    const out = this.writer.bytes;
    writeClientHeader(out, at, bytes.length, messageId, serverId);
    out.set(bytes, at + CLIENT_HEADER_SIZE);
  }

  /** Queues bytes as they are, framed or not: for malformed-input tests. */
  sendRaw(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length);
    this.writer.bytes.set(bytes, at);
  }

  /**
   * The next received frame. Rejects after timeoutMs, when the connection has closed with no
   * frame left, or once the received-frame queue has overflowed.
   */
  next(timeoutMs = DEFAULT_NEXT_TIMEOUT_MS): Promise<ClientFrame> {
    return this.inbox.take(
      timeoutMs,
      () => new Error(`GameClient ${this.where}: no frame within ${timeoutMs} ms (${this.framesReceived} received so far)`),
      () => this.closedError(),
    );
  }

  /** The next n frames, all within timeoutMs. */
  async frames(n: number, timeoutMs = DEFAULT_NEXT_TIMEOUT_MS): Promise<ClientFrame[]> {
    const deadline = performance.now() + timeoutMs;
    const out: ClientFrame[] = [];
    while (out.length < n) {
      const left = Math.max(0, deadline - performance.now());
      try {
        out.push(await this.next(left));
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new Error(`GameClient ${this.where}: got ${out.length} of ${n} frames within ${timeoutMs} ms: ${why}`);
      }
    }
    return out;
  }

  /** Stops reading: the peer sees TCP backpressure (frames already read may still arrive). */
  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /**
   * Writes what the socket takes now, then closes. Bytes it does not take are dropped: a caller
   * that needs them delivered waits for queuedBytes to reach 0 first.
   */
  close(): void {
    if (this.closeCalled || this.closedFlag) return;
    this.closeCalled = true;
    this.writer.flush();
    this.socket?.end();
  }

  private get where(): string {
    return `${this.host}:${this.port}`;
  }

  private reserve(n: number): number {
    if (this.closedFlag || this.closeCalled) throw new Error(`GameClient ${this.where}: send on a closed connection`);
    const at = this.writer.reserve(n);
    if (at < 0) {
      throw new Error(
        `GameClient ${this.where}: send queue full (${this.writer.queuedBytes} bytes waiting, limit ${this.writer.limit}); the peer is not reading`,
      );
    }
    return at;
  }

  private closedError(): Error {
    const cause = this.socketError ? ` (${this.socketError.message})` : "";
    return new Error(`GameClient ${this.where}: connection closed with no frame pending${cause}`);
  }

  // --- socket events (called by socketHandlers) -------------------------------------------

  onOpen(socket: Socket<GameClient>): void {
    this.socket = socket;
    socket.setNoDelay(true);
    this.writer.attach(socket);
  }

  onData(chunk: Uint8Array): void {
    this.reader.feed(chunk);
  }

  onDrain(): void {
    this.writer.flush();
  }

  onError(error: Error): void {
    this.socketError = error;
  }

  onClose(error?: Error): void {
    if (this.closedFlag) return;
    if (error) this.socketError = error;
    this.closedFlag = true;
    this.reader.stop();
    this.writer.detach();
    this.inbox.end(() => this.closedError());
    this.resolveClosed();
  }

  // --- FrameHandler (called by the reader) ----------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    this.framesReceived++;
    const frame: ClientFrame = {
      messageId: readClientMessageId(b, off),
      serverId: readClientServerId(b, off),
      // A copy: b is the socket's chunk or a pooled buffer, both reused after this returns.
      body: b.slice(off + CLIENT_HEADER_SIZE, off + len),
    };
    this.inbox.push(frame);
    return true;
  }

  onFramingError(reason: ClientViolation): void {
    this.inbox.fail(new Error(`GameClient ${this.where}: framing error (${reason})`));
    this.socket?.end();
  }
}
