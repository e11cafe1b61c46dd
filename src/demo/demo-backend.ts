// A game backend speaking the gateway<->backend protocol (docs/protocol.md), for the
// CLI's demo mode, end-to-end tests and benchmarks. It echoes every Trans except the few demo
// messages (DemoMessage) that exercise rooms (Multicast), Broadcast and Kick, answers Ping, and
// records lifecycle messages so tests can check what a gateway announced.
import type { TCPSocketListener } from "bun";
import { type Binder, directBinder } from "../net/binder.ts";
import { BufferPool, DEFAULT_CLASSES } from "../net/buffer-pool.ts";
import { OpCode } from "../protocol/server-frame.ts";
import { DemoConnection, type DemoContext, type DemoEvent } from "./demo-connection.ts";
import { DemoSessionTable } from "./demo-session-table.ts";

export { DEMO_MAX_LENGTH, DEMO_NAME_MAX, DemoMessage, type DemoEvent } from "./demo-connection.ts";

export interface DemoBackendOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks an ephemeral port; read it back from `port`. */
  port?: number;
  /** Used in log lines. */
  name?: string;
  log?: (line: string) => void;
  /**
   * The gateway propagates trace context: its Trans frames carry the 33-byte gate header. The
   * Length field cannot tell the two forms apart, so this must match the gateway's config.
   */
  traceHeader?: boolean;
  /** Opens the listening socket (default: bind afresh; the dev entry point passes a HotBinder). */
  binder?: Binder;
  /** What chose the address, for a bind error (default "demo backend"). */
  listenKey?: string;
}

export interface DemoBackendStats {
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since start. */
  readonly connectionsAccepted: number;
  /** Frames received per opcode; opcodes 1-8 always present, others only once seen. */
  readonly framesByOpcode: Readonly<Record<number, number>>;
  readonly connects: number;
  readonly disconnects: number;
  /** Sessions known now (announced by Connect or having joined a room, not yet gone). */
  readonly sessions: number;
  readonly rooms: number;
  /** Connections closed because they broke framing. */
  readonly violationCloses: number;
}

/** How many lifecycle events `events` keeps. */
export const DEMO_EVENTS_KEPT = 10_000;

// Idle pooled buffers kept for partial frames; a demo needs little.
const POOL_IDLE_BYTES = 8 * 1024 * 1024;

class DemoState implements DemoContext {
  /** Open connections. Kept here, not in the listener's handlers: after a hot reload newer handlers close them. */
  readonly conns = new Set<DemoConnection>();
  readonly sessions = new DemoSessionTable<DemoConnection>();
  readonly pool = new BufferPool({ classes: DEFAULT_CLASSES, maxIdleBytes: POOL_IDLE_BYTES });
  readonly framesByOpcode = new Float64Array(256);
  /** Trimmed lazily: up to twice the kept count between reads, so a push is O(1) amortized. */
  readonly events: DemoEvent[] = [];
  connects = 0;
  disconnects = 0;
  violationCloses = 0;

  constructor(
    readonly traceHeader: boolean,
    private readonly prefix: string,
    private readonly sink: (line: string) => void,
  ) {}

  log(line: string): void {
    this.sink(`${this.prefix}${line}`);
  }

  recordEvent(e: DemoEvent): void {
    if (e.opcode === OpCode.Connect) this.connects++;
    else this.disconnects++;
    this.events.push(e);
    if (this.events.length >= 2 * DEMO_EVENTS_KEPT) this.trimEvents();
  }

  trimEvents(): void {
    const extra = this.events.length - DEMO_EVENTS_KEPT;
    if (extra > 0) this.events.splice(0, extra);
  }

  countViolation(): void {
    this.violationCloses++;
  }

  connectionClosed(conn: DemoConnection): void {
    if (this.conns.delete(conn)) this.log(`closed ${conn.label}`);
  }
}

export class DemoBackend {
  private listener: TCPSocketListener<DemoConnection> | null = null;
  private accepted = 0;
  private stopping: Promise<void> | null = null;

  private constructor(private readonly state: DemoState) {}

  /** Throws ListenError when the address cannot be had. */
  static async start(opts: DemoBackendOptions = {}): Promise<DemoBackend> {
    const name = opts.name ?? "demo";
    const state = new DemoState(opts.traceHeader ?? false, `demo-backend ${name}: `, opts.log ?? (() => {}));
    const backend = new DemoBackend(state);
    backend.listen(opts.binder ?? directBinder, opts.listenKey ?? "demo backend", opts.host ?? "127.0.0.1", opts.port ?? 0);
    return backend;
  }

  get port(): number {
    if (this.listener === null) throw new Error("DemoBackend is not listening");
    return this.listener.port;
  }

  /** Connect and Disconnect messages received, oldest first: the last DEMO_EVENTS_KEPT of them. */
  get events(): readonly DemoEvent[] {
    this.state.trimEvents();
    return this.state.events;
  }

  stats(): DemoBackendStats {
    const s = this.state;
    const framesByOpcode: Record<number, number> = {};
    for (let op = 0; op < s.framesByOpcode.length; op++) {
      const n = s.framesByOpcode[op]!;
      if (n > 0 || (op >= OpCode.Trans && op <= OpCode.Pong)) framesByOpcode[op] = n;
    }
    return {
      connections: this.state.conns.size,
      connectionsAccepted: this.accepted,
      framesByOpcode,
      connects: s.connects,
      disconnects: s.disconnects,
      sessions: s.sessions.size,
      rooms: s.sessions.roomCount,
      violationCloses: s.violationCloses,
    };
  }

  /** Abruptly drops the oldest open connection (a lost link); false when none is open. */
  dropOneConnection(): boolean {
    for (const c of this.state.conns) {
      if (c.closing) continue;
      this.state.log(`dropping ${c.label} on request`);
      c.terminate();
      return true;
    }
    return false;
  }

  /**
   * Dev hot reload: newer code has reloaded the listening socket with its handlers. Stopping this
   * backend then closes only its own connections, not the listener (whose stop would close all).
   */
  handOver(): void {
    this.listener = null;
  }

  /** Stops listening and closes every connection; resolves once all have closed. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const open = [...this.state.conns];
    this.listener?.stop(true);
    for (const c of open) c.terminate();
    await Promise.all(open.map((c) => c.closed));
    this.state.log("stopped");
  }

  private listen(binder: Binder, key: string, hostname: string, port: number): void {
    const state = this.state;
    this.listener = binder.listen<DemoConnection>(key, {
      hostname,
      port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => {
          socket.setNoDelay(true);
          const conn = new DemoConnection(state, socket, ++this.accepted);
          socket.data = conn;
          state.conns.add(conn);
          state.log(`accepted ${conn.label}`);
        },
        data: (socket, chunk) => socket.data.onData(chunk),
        drain: (socket) => socket.data.onDrain(),
        // A socket that failed before open has no connection object.
        close: (socket) => socket.data?.onClosed(),
        error: (socket, error) => state.log(`socket error on ${socket.data?.label ?? "a connection"}: ${error.message}`),
      },
    });
  }
}
