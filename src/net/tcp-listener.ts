import type { Socket, TCPSocketListener } from "bun";
import type { GatewayMetrics } from "../admin/metrics.ts";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import type { ClientPort, CloseReason } from "../session/client-port.ts";
import type { Session } from "../session/session.ts";
import type { SessionService } from "../session/session-service.ts";
import type { AdmissionControl } from "./admission.ts";
import type { BufferPool } from "./buffer-pool.ts";
import { FrameReader } from "./frame-reader.ts";
import { QueuedSocketWriter } from "./socket-writer.ts";

// The raw-TCP client listener. Each accepted socket becomes a TcpClientPort: framed input through
// a FrameReader, output through a bounded QueuedSocketWriter, everything else in the session layer.

export interface TcpListenerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest client body accepted (security.max_message_size). */
  readonly maxMessageSize: number;
  /** Output bytes a client may leave unread before it is closed as a slow reader. */
  readonly writeQueueLimit: number;
  /** How long a closing client may take to read what was queued for it. */
  readonly closeTimeoutMs: number;
  /** Global cap on concurrent clients (connection_pool.max_connections). */
  readonly maxConnections: number;
}

interface ListenerContext {
  readonly layout: ClientFrameLayout;
  readonly service: SessionService;
  readonly buffers: BufferPool;
  readonly options: TcpListenerOptions;
}

export class TcpClientPort implements ClientPort {
  readonly protocol = "tcp" as const;
  readonly remoteAddress: string;
  session: Session | null = null;
  closing = false;
  private reason: CloseReason | null = null;
  private readonly reader: FrameReader<ClientViolation>;
  private readonly writer: QueuedSocketWriter;

  constructor(
    private readonly socket: Socket<TcpClientPort>,
    private readonly ctx: ListenerContext,
  ) {
    this.remoteAddress = socket.remoteAddress;
    this.reader = new FrameReader(ctx.layout, this, ctx.buffers);
    this.writer = new QueuedSocketWriter(socket, ctx.buffers, ctx.options.writeQueueLimit);
  }

  get queuedBytes(): number {
    return this.writer.queuedBytes;
  }

  send(b: Uint8Array, off: number, len: number): boolean {
    if (this.writer.write(b, off, len)) return true;
    // The client is not reading: drop it rather than let its queue grow.
    this.closing = true;
    this.reason ??= "slow_reader";
    this.reader.stop();
    this.socket.terminate();
    return false;
  }

  close(reason: CloseReason): void {
    if (this.closing) return;
    this.closing = true;
    this.reason = reason;
    this.reader.stop();
    if (this.writer.queuedBytes === 0) {
      this.socket.end();
    } else {
      // Deliver what is queued first (a Kick promises that); drain ends it, the timeout bounds it.
      this.socket.timeout(Math.max(1, Math.ceil(this.ctx.options.closeTimeoutMs / 1000)));
    }
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.closing) this.socket.resume();
  }

  // ---- FrameHandler ----------------------------------------------------------------------------

  onFrame(b: Uint8Array, off: number, len: number): boolean {
    return this.ctx.service.onClientFrame(this, b, off, len);
  }

  onFramingError(reason: ClientViolation): void {
    this.ctx.service.onClientViolation(this, reason);
  }

  // ---- socket events ---------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.reader.feed(chunk);
  }

  onDrain(): void {
    if (this.writer.flush() && this.closing) this.socket.end();
  }

  onTimeout(): void {
    if (this.closing) this.socket.terminate();
  }

  onClosed(error?: Error): void {
    this.reader.stop();
    this.writer.release();
    this.closing = true;
    this.ctx.service.onClientClosed(this, this.reason ?? (error ? "client_error" : "client_closed"));
  }
}

export class TcpListener {
  private listener: TCPSocketListener<TcpClientPort> | null = null;
  private open = 0;
  /** Settings for connections accepted from now on (replaced on reload). */
  private ctx: ListenerContext;

  constructor(
    private options: TcpListenerOptions,
    private readonly service: SessionService,
    private readonly buffers: BufferPool,
    private readonly metrics: GatewayMetrics,
    private readonly admission: AdmissionControl,
  ) {
    this.ctx = this.context(options);
  }

  /** New limits for connections accepted from now on; live connections keep theirs. Host and port cannot change. */
  update(options: Omit<TcpListenerOptions, "host" | "port">): void {
    this.options = { ...options, host: this.options.host, port: this.options.port };
    this.ctx = this.context(this.options);
  }

  private context(options: TcpListenerOptions): ListenerContext {
    return { layout: new ClientFrameLayout(options.maxMessageSize), service: this.service, buffers: this.buffers, options };
  }

  /** The bound port (useful when listening on port 0). */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  get hostname(): string {
    return this.listener?.hostname ?? this.options.host;
  }

  get connections(): number {
    return this.open;
  }

  start(): void {
    this.listener = Bun.listen<TcpClientPort>({
      hostname: this.options.host,
      port: this.options.port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => {
          if (this.open >= this.options.maxConnections) {
            this.metrics.connectionRejected.inc({ reason: "max_connections" });
            socket.terminate();
            return;
          }
          const refusal = this.admission.admit(socket.remoteAddress);
          if (refusal !== null) {
            this.metrics.connectionRejected.inc({ reason: refusal });
            if (refusal === "rate_limited") this.metrics.rateLimitRejected.inc();
            socket.terminate();
            return;
          }
          this.open++;
          socket.setNoDelay(true);
          socket.data = new TcpClientPort(socket, this.ctx);
          this.service.onClientOpen(socket.data);
        },
        data: (socket, chunk) => socket.data?.onData(chunk),
        drain: (socket) => socket.data?.onDrain(),
        timeout: (socket) => socket.data?.onTimeout(),
        close: (socket, error) => {
          const port = socket.data;
          if (port === undefined) return; // rejected at admission
          socket.data = undefined as unknown as TcpClientPort;
          this.open--;
          this.admission.release(port.remoteAddress);
          port.onClosed(error);
        },
        error: () => {
          // close follows every error; it does the teardown
        },
      },
    });
  }

  /** Stops accepting; live connections carry on. */
  stop(): void {
    this.listener?.stop(false);
    this.listener = null;
  }
}
