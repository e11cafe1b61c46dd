import type { Socket, TCPSocketListener } from "bun";
import type { GatewayMetrics } from "../admin/metrics.ts";
import { ClientFrameLayout } from "../protocol/layouts.ts";
import type { ClientViolation } from "../protocol/violations.ts";
import type { ClientPort, CloseReason } from "../session/client-port.ts";
import type { Session } from "../session/session.ts";
import type { SessionService } from "../session/session-service.ts";
import type { AdmissionControl } from "./admission.ts";
import { type Binder, directBinder } from "./binder.ts";
import type { CidrList } from "./cidr.ts";
import { parseProxyHeader } from "./proxy-protocol.ts";
import type { BufferPool } from "./buffer-pool.ts";
import { FrameReader } from "./frame-reader.ts";
import { QueuedSocketWriter } from "./socket-writer.ts";

// The raw-TCP client listener. Each accepted socket becomes a TcpClientPort: an optional PROXY
// protocol header, admission by client IP, framed input through a FrameReader, output through a
// bounded QueuedSocketWriter; everything else happens in the session layer.

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

export type ProxyProtocolMode = "off" | "optional" | "required";

export interface ProxyProtocolOptions {
  /** off: never parsed; optional: trusted peers may send one; required: trusted peers must. */
  readonly mode: ProxyProtocolMode;
  /** Peers allowed to send a PROXY header (security.trusted_proxies). */
  readonly trusted: CidrList;
}

interface ListenerContext {
  readonly layout: ClientFrameLayout;
  readonly service: SessionService;
  readonly buffers: BufferPool;
  readonly options: TcpListenerOptions;
  readonly admission: AdmissionControl;
  readonly metrics: GatewayMetrics;
  readonly proxy: ProxyProtocolOptions;
  /** Called once per closed port; through the port, since a hot reload gives its socket newer handlers. */
  readonly portClosed: () => void;
}

/** The longest PROXY header accepted (v2 with TLVs); a peer sending more without one is refused. */
const MAX_PROXY_HEADER = 1024;

export class TcpClientPort implements ClientPort {
  /** The client's address: the socket peer, or the one a trusted PROXY header carries. */
  remoteAddress: string;
  session: Session | null = null;
  closing = false;
  flushPending = false;
  private reason: CloseReason | null = null;
  /** Counted by admission control (released on close). */
  private admitted = false;
  /** A frame lent by lend(), written from the lender's buffer at the next flush. */
  private lent: Uint8Array | null = null;
  private lentOff = 0;
  private lentLen = 0;
  /** Bytes held while waiting for a PROXY header to complete; null once decided. */
  private proxyBytes: Uint8Array | null = null;
  private readonly reader: FrameReader<ClientViolation>;
  /**
   * Created when a write first has to wait (most replies go out whole, straight from the backend
   * chunk), and kept from then on: an idle client that never queued holds no writer or ring.
   */
  private writer: QueuedSocketWriter | null = null;

  constructor(
    private readonly socket: Socket<TcpClientPort>,
    private readonly ctx: ListenerContext,
  ) {
    this.remoteAddress = socket.remoteAddress;
    this.reader = new FrameReader(ctx.layout, this, ctx.buffers);
  }

  get protocol(): "tcp" {
    return "tcp";
  }

  /** Called once the socket's data points at this port (a refusal closes the socket at once). */
  start(): void {
    // With the PROXY protocol on, admission waits for the header: limits apply to the player's
    // address, not the load balancer's.
    if (this.ctx.proxy.mode === "off") this.admit();
    else this.proxyBytes = new Uint8Array(0);
  }

  /** Applies per-IP limits to remoteAddress; refuses the connection when over them. */
  private admit(): boolean {
    const refusal = this.ctx.admission.admit(this.remoteAddress);
    if (refusal === null) {
      this.admitted = true;
      return true;
    }
    if (refusal === "rate_limited") this.ctx.metrics.rateLimitRejections++;
    this.refuse(refusal);
    return false;
  }

  private refuse(reason: string): void {
    this.ctx.metrics.connectionRejected.inc({ reason });
    this.closing = true;
    this.reason = "rejected";
    this.reader.stop();
    this.socket.terminate();
  }

  /** Gathers the start of the stream until it is known whether a PROXY header leads it. */
  private onProxyData(chunk: Uint8Array): void {
    const held = this.proxyBytes!;
    const bytes = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    const parsed = parseProxyHeader(bytes);
    const trusted = this.ctx.proxy.trusted.contains(this.socket.remoteAddress);
    switch (parsed.kind) {
      case "incomplete":
        if (bytes.length > MAX_PROXY_HEADER) return this.refuse("proxy_invalid");
        this.proxyBytes = Uint8Array.from(bytes);
        return;
      case "invalid":
        return this.refuse("proxy_invalid");
      case "absent":
        if (trusted && this.ctx.proxy.mode === "required") return this.refuse("proxy_missing");
        this.proxyBytes = null;
        if (this.admit()) this.reader.feed(bytes);
        return;
      case "header":
        if (!trusted) return this.refuse("proxy_untrusted");
        this.proxyBytes = null;
        if (parsed.address !== null) this.remoteAddress = parsed.address;
        if (this.admit() && parsed.length < bytes.length) this.reader.feed(bytes.subarray(parsed.length));
        return;
    }
  }

  get queuedBytes(): number {
    return this.writer === null ? 0 : this.writer.queuedBytes;
  }

  send(b: Uint8Array, off: number, len: number): boolean {
    if (this.lent !== null && !this.spillLent()) return false;
    return this.enqueue(b, off, len);
  }

  lend(b: Uint8Array, off: number, len: number): boolean {
    // The common case, one frame per flush, is written straight from the caller's buffer.
    if (this.lent === null && this.queuedBytes === 0) {
      this.lent = b;
      this.lentOff = off;
      this.lentLen = len;
      return true;
    }
    return this.send(b, off, len);
  }

  flush(): void {
    if (this.writeOut() && this.closing) this.socket.end();
  }

  /** Writes the lent frame, then the queue; true once nothing waits. */
  private writeOut(): boolean {
    const lent = this.lent;
    if (lent !== null) {
      this.lent = null; // nothing else is queued while a frame is lent (send spills it first)
      const n = this.socket.write(lent, this.lentOff, this.lentLen);
      if (n >= 0 && n < this.lentLen && !this.enqueue(lent, this.lentOff + n, this.lentLen - n)) return false;
    }
    return this.writer === null || this.writer.flush();
  }

  /** Copies the lent frame into the queue (another frame is coming after it). */
  private spillLent(): boolean {
    const lent = this.lent!;
    this.lent = null;
    return this.enqueue(lent, this.lentOff, this.lentLen);
  }

  private enqueue(b: Uint8Array, off: number, len: number): boolean {
    const writer = (this.writer ??= new QueuedSocketWriter(this.socket, this.ctx.buffers, this.ctx.options.writeQueueLimit));
    if (writer.enqueue(b, off, len)) return true;
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
    if (this.writeOut()) {
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
    if (this.proxyBytes !== null) this.onProxyData(chunk);
    else this.reader.feed(chunk);
  }

  onDrain(): void {
    this.flush();
  }

  onTimeout(): void {
    if (this.closing) this.socket.terminate();
  }

  onClosed(error?: Error): void {
    if (this.admitted) this.ctx.admission.release(this.remoteAddress);
    this.admitted = false;
    this.lent = null;
    this.reader.stop();
    this.writer?.release();
    this.closing = true;
    this.ctx.portClosed();
    this.ctx.service.onClientClosed(this, this.reason ?? (error ? "client_error" : "client_closed"));
  }
}

export class TcpListener {
  private listener: TCPSocketListener<TcpClientPort> | null = null;
  private open = 0;
  private readonly portClosed = (): void => {
    this.open--;
  };
  /** Settings for connections accepted from now on (replaced on reload). */
  private ctx: ListenerContext;

  constructor(
    private options: TcpListenerOptions,
    private readonly service: SessionService,
    private readonly buffers: BufferPool,
    private readonly metrics: GatewayMetrics,
    private readonly admission: AdmissionControl,
    private proxy: ProxyProtocolOptions,
  ) {
    this.ctx = this.context(options);
  }

  /** New limits for connections accepted from now on; live connections keep theirs. Host and port cannot change. */
  update(options: Omit<TcpListenerOptions, "host" | "port">, proxy: ProxyProtocolOptions): void {
    this.options = { ...options, host: this.options.host, port: this.options.port };
    this.proxy = proxy;
    this.ctx = this.context(this.options);
  }

  private context(options: TcpListenerOptions): ListenerContext {
    return {
      layout: new ClientFrameLayout(options.maxMessageSize),
      service: this.service,
      buffers: this.buffers,
      options,
      admission: this.admission,
      metrics: this.metrics,
      proxy: this.proxy,
      portClosed: this.portClosed,
    };
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

  /** Binds the listening socket; throws ListenError naming `key` when the address cannot be had. */
  start(key: string, binder: Binder = directBinder): void {
    this.listener = binder.listen<TcpClientPort>(key, {
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
          this.open++;
          socket.setNoDelay(true);
          const port = new TcpClientPort(socket, this.ctx);
          socket.data = port;
          this.service.onClientOpen(port);
          port.start();
        },
        data: (socket, chunk) => socket.data?.onData(chunk),
        drain: (socket) => socket.data?.onDrain(),
        timeout: (socket) => socket.data?.onTimeout(),
        close: (socket, error) => {
          const port = socket.data;
          if (port === undefined) return; // rejected at admission
          socket.data = undefined as unknown as TcpClientPort;
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

  /** Dev hot reload: newer code has reloaded the listening socket with its handlers; leave it open. */
  handOver(): void {
    this.listener = null;
  }
}
