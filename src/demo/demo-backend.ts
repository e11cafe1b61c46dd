// A game backend speaking the gateway<->backend protocol (docs/protocol.md), for the
// CLI's demo mode, end-to-end tests and benchmarks. It echoes every Trans except the few demo
// messages (DemoMessage) that exercise rooms (Multicast), Broadcast and Kick, answers Ping, and
// records lifecycle messages so tests can check what a gateway announced.
import type { TCPSocketListener } from "bun";
import { BufferPool, DEFAULT_CLASSES } from "../net/buffer-pool.ts";
import { OpCode } from "../protocol/server-frame.ts";
import { DemoConnection, type DemoContext, type DemoEvent } from "./demo-connection.ts";
import { DemoSessionTable } from "./demo-session-table.ts";

export { DEMO_MAX_LENGTH, DemoMessage, type DemoEvent } from "./demo-connection.ts";

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
}

export class DemoBackend {
  private readonly conns = new Set<DemoConnection>();
  private listener: TCPSocketListener<DemoConnection> | null = null;
  private accepted = 0;
  private stopping: Promise<void> | null = null;

  private constructor(private readonly state: DemoState) {}

  static async start(opts: DemoBackendOptions = {}): Promise<DemoBackend> {
    const name = opts.name ?? "demo";
    const state = new DemoState(opts.traceHeader ?? false, `demo-backend ${name}: `, opts.log ?? (() => {}));
    const backend = new DemoBackend(state);
    backend.listen(opts.host ?? "127.0.0.1", opts.port ?? 0);
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
      connections: this.conns.size,
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
    for (const c of this.conns) {
      if (c.closing) continue;
      this.state.log(`dropping ${c.label} on request`);
      c.terminate();
      return true;
    }
    return false;
  }

  /** Stops listening and closes every connection; resolves once all have closed. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const open = [...this.conns];
    this.listener?.stop(true);
    for (const c of open) c.terminate();
    await Promise.all(open.map((c) => c.closed));
    this.state.log("stopped");
  }

  private listen(hostname: string, port: number): void {
    const state = this.state;
    this.listener = Bun.listen<DemoConnection>({
      hostname,
      port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => {
          socket.setNoDelay(true);
          const conn = new DemoConnection(state, socket, ++this.accepted);
          socket.data = conn;
          this.conns.add(conn);
          state.log(`accepted ${conn.label}`);
        },
        data: (socket, chunk) => socket.data.onData(chunk),
        drain: (socket) => socket.data.onDrain(),
        close: (socket) => {
          const conn = socket.data;
          // A socket that failed before open has no connection object.
          if (conn === undefined || !this.conns.delete(conn)) return;
          conn.onClosed();
          state.log(`closed ${conn.label}`);
        },
        error: (socket, error) => state.log(`socket error on ${socket.data?.label ?? "a connection"}: ${error.message}`),
      },
    });
  }
}
