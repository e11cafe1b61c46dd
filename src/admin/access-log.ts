import type { LogSink } from "../log/logger.ts";

// One record per session end (and per refused connection), written in batches (at 100 records or every 5 s) so the data path
// never waits on logging. The queue is bounded: when it is full, records are dropped and counted.

export interface AccessRecord {
  readonly time: string;
  readonly client: string;
  readonly protocol: string;
  readonly session: string;
  readonly trace_id?: string;
  readonly server_type: number;
  readonly world: number;
  readonly backend: string | null;
  readonly bytes_in: number;
  readonly bytes_out: number;
  readonly msgs_in: number;
  readonly msgs_out: number;
  readonly duration_ms: number;
  readonly reason: string;
  /** Why the connection was refused, on records with reason "rejected". */
  readonly refusal?: string;
}

export interface AccessLogOptions {
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  /** Records that may wait for a flush; past it they are dropped. */
  readonly maxQueued: number;
}

export const DEFAULT_ACCESS_LOG: AccessLogOptions = { batchSize: 100, flushIntervalMs: 5000, maxQueued: 10_000 };

export class AccessLog {
  private queue: string[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private flushScheduled = false;
  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
  dropped = 0;

  constructor(
    private readonly sink: LogSink,
    private readonly onDrop: () => void,
    private readonly options: AccessLogOptions = DEFAULT_ACCESS_LOG,
  ) {
    this.timer = setInterval(() => this.flush(), options.flushIntervalMs);
    this.timer.unref();
  }

  record(r: AccessRecord): void {
    if (this.queue.length >= this.options.maxQueued) {
      this.dropped++;
      this.onDrop();
      return;
    }
    this.queue.push(JSON.stringify({ msg: "access", ...r }));
    // A full batch is written after the current event (a session ending must not wait on stdout).
    if (this.queue.length >= this.options.batchSize && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const lines = this.queue;
    this.queue = [];
    this.sink.write(lines.join("\n") + "\n");
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
