// A client socket that takes at most `perWrite` bytes per write: the partial writes a real socket
// makes under load (Bun's write may take part of a buffer), in an order a test can choose. A
// loopback socket drains too fast to pin them down. Each TcpClientPort over one is a real port:
// only the kernel's buffer is stood in.
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { AdmissionControl } from "../../src/net/admission.ts";
import { CidrList } from "../../src/net/cidr.ts";
import { type ClientSocket, type ListenerContext, TcpClientPort, type TcpListenerOptions } from "../../src/net/tcp-listener.ts";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { ALLOW_EVERY_UPGRADE } from "../../src/net/upgrade-request.ts";
import { ClientFrameLayout } from "../../src/protocol/layouts.ts";
import { concat } from "./bytes.ts";
import { RecordedEvents } from "./recorded-events.ts";

export class PartialSocket implements ClientSocket {
  remoteAddress = "127.0.0.1";
  /** Bytes the next write may take; the rest is the writer's to keep. */
  perWrite: number;
  /** What the peer has received, in order (copies: the writer may reuse its buffers). */
  readonly received: Uint8Array[] = [];
  writes = 0;
  ended = false;
  terminated = false;
  paused = false;
  timeoutSeconds = 0;

  constructor(perWrite: number) {
    this.perWrite = perWrite;
  }

  write(bytes: Uint8Array, byteOffset = 0, byteLength?: number): number {
    if (this.ended || this.terminated) return -1;
    const len = byteLength ?? bytes.length - byteOffset;
    const n = Math.min(len, this.perWrite);
    this.writes++;
    if (n > 0) this.received.push(bytes.slice(byteOffset, byteOffset + n));
    return n;
  }

  end(): void {
    this.ended = true;
  }

  terminate(): void {
    this.terminated = true;
  }

  timeout(seconds: number): void {
    this.timeoutSeconds = seconds;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Everything received so far, as one array. */
  bytes(): Uint8Array {
    return concat(this.received);
  }
}

export const TEST_LISTENER_OPTIONS: TcpListenerOptions = {
  host: "127.0.0.1",
  port: 0,
  maxMessageSize: 0xffff,
  writeQueueLimit: 64 * 1024,
  closeTimeoutMs: 1000,
  writeTimeoutMs: 0,
  maxConnections: 100,
  partialFrameTimeoutMs: 10_000,
  pendingInputLimit: 1 << 24,
};

/** A started TcpClientPort over a PartialSocket, with the listener context a TcpListener gives it. */
export function portOverPartialSocket<S = unknown>(
  perWrite: number,
  options: Partial<TcpListenerOptions> = {},
): { port: TcpClientPort<S>; socket: PartialSocket; events: RecordedEvents<S> } {
  const socket = new PartialSocket(perWrite);
  const events = new RecordedEvents<S>();
  const all = { ...TEST_LISTENER_OPTIONS, ...options };
  const ctx: ListenerContext<S> = {
    layout: new ClientFrameLayout(all.maxMessageSize),
    service: events,
    buffers: new BufferPool(),
    options: all,
    admission: new AdmissionControl({ maxPerIp: 1000, ratePerSec: 1e6, maxTrackedIps: 1000 }),
    metrics: new GatewayMetrics(),
    proxy: { mode: "off", trusted: new CidrList([]), headerTimeoutMs: 1000, maxPendingHeaders: 10 },
    upgrade: ALLOW_EVERY_UPGRADE,
    state: { awaitingHeader: 0, heldInput: 0 },
    now: Date.now,
    portClosed: () => {},
  };
  const port = new TcpClientPort<S>(socket, ctx);
  events.onClientOpen(port);
  port.start();
  return { port, socket, events };
}

/** Lets the socket take everything again and delivers what waits, as its drain events would. */
export function drainAll<S>(port: TcpClientPort<S>, socket: PartialSocket): void {
  for (let i = 0; i < 100_000 && port.queuedBytes > 0; i++) port.onDrain();
  if (port.queuedBytes > 0) throw new Error("the port's queue did not drain");
  void socket;
}
