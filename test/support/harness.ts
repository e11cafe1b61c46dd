// Shared set-up for end-to-end tests: a real gateway on an ephemeral loopback port, configured
// through the real YAML loader, in front of real demo backends.
import type { Socket, Subprocess } from "bun";
import YAML from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import type { GatewayConfig } from "../../src/config/types.ts";
import { Gateway, type GatewayOptions } from "../../src/gateway.ts";
import { Logger, type LogSink } from "../../src/log/logger.ts";
import { GameClient } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";

export type Overrides = Record<string, unknown>;

function merge(base: Overrides, extra: Overrides): Overrides {
  const out: Overrides = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? merge(b as Overrides, v as Overrides)
        : v;
  }
  return out;
}

/** A config for tests: loopback, ephemeral ports, admin off, fast sweeps; then the overrides. */
export function testConfig(overrides: Overrides = {}): GatewayConfig {
  const base: Overrides = {
    server: { listen_addr: "127.0.0.1:0", health_check_port: -1, gateway_name: "test-gw", first_message_timeout: "10s" },
    session: { sweep_interval: "50ms", idle_check_interval: "50ms" },
    // Every test client comes from 127.0.0.1: per-IP limits are tested on purpose, not by accident.
    security: { max_connections_per_ip: 100_000, connection_rate_limit: 100_000 },
    connection_pool: { max_connections: 100_000 },
    log: { level: "warn" },
  };
  return parseConfig(YAML.stringify(merge(base, overrides))).config;
}

export type LogRecord = Record<string, unknown>;

/**
 * The log lines in `text` whose message is `body` (or all of them), JSON-parsed. Lines are
 * OpenTelemetry log records: the message is `body`, the level `severity_text`. The one way tests
 * find a log line by message, in a captured log or a child's stdout.
 */
export function logRecords(text: string, body?: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const record = JSON.parse(line) as LogRecord;
    if (body === undefined || record.body === body) out.push(record);
  }
  return out;
}

/** The access log's body: every access record has it. */
export const ACCESS_LOG_BODY = "access_log";

/** Log lines a test can read back (JSON-parsed). */
export class CapturedLog implements LogSink {
  readonly lines: LogRecord[] = [];
  write(text: string): void {
    this.lines.push(...logRecords(text));
  }
  /** The lines whose message (`body`) is exactly `body`. */
  find(body: string): LogRecord[] {
    return this.lines.filter((l) => l.body === body);
  }
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly log: CapturedLog;
  readonly accessLog: CapturedLog;
  connect(): Promise<GameClient>;
  stop(): Promise<void>;
}

/** What a test may set beyond the config: an injected clock; a span tracer; defaultMetrics (process_*, off unless asked for); the per-IP admission gate. */
export type TestGatewayOptions = Pick<GatewayOptions, "clock" | "defaultMetrics" | "tracer" | "grpc" | "admissionGate">;

export function startGateway(overrides: Overrides = {}, options: TestGatewayOptions = {}): TestGateway {
  const config = testConfig(overrides);
  const log = new CapturedLog();
  const accessLog = new CapturedLog();
  const gateway = Gateway.start(config, { logger: new Logger(config.log.level, log), defaultMetrics: false, accessLogSink: accessLog, ...options });
  return {
    gateway,
    log,
    accessLog,
    connect: () => GameClient.connect("127.0.0.1", gateway.port),
    stop: () => gateway.stop(),
  };
}

/** A routing rule to `endpoints` for a server type, any world. */
export function rule(serverType: number, endpoints: string[], strategy = "round_robin"): Overrides {
  return { server_type: serverType, world_id: 0, service_name: `svc-${serverType}`, strategy, endpoints };
}

// The end-to-end tests import everything from here, eventually included.
export { eventually } from "./eventually.ts";

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * Resources one test starts (backends, gateways, listeners), stopped after it in reverse order:
 * `const scope = new TestScope(); afterEach(scope.release);`
 */
export class TestScope {
  private readonly releases: (() => Promise<void> | void)[] = [];

  defer(release: () => Promise<void> | void): void {
    this.releases.push(release);
  }

  readonly backend = async (opts: { port?: number; traceHeader?: boolean } = {}): Promise<DemoBackend> => {
    const b = await DemoBackend.start({ port: 0, ...opts });
    this.defer(() => b.stop());
    return b;
  };

  /**
   * A backend that accepts the gateway's connections and reads nothing until resume(), so what
   * the gateway sends it piles up in the kernel and then in the gateway's queue. stop() closes
   * its connections (the gateway's stop would otherwise wait on what it cannot deliver).
   */
  readonly stalledBackend = (): StalledBackend => {
    const held: Socket<undefined>[] = [];
    const state: StalledBackend = {
      port: 0,
      received: 0,
      get connected(): boolean {
        return held.length > 0;
      },
      resume(): void {
        for (const s of held) s.resume();
      },
      stop(): void {
        listener.stop(true);
      },
    };
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          held.push(s);
          s.pause();
        },
        data(_s, chunk) {
          state.received += chunk.length;
        },
      },
    });
    this.defer(() => listener.stop(true));
    state.port = listener.port;
    return state;
  };

  readonly gateway = (overrides: Overrides = {}, options: TestGatewayOptions = {}): TestGateway => {
    const gw = startGateway(overrides, options);
    this.defer(() => gw.stop());
    return gw;
  };

  readonly release = async (): Promise<void> => {
    for (const f of this.releases.splice(0).reverse()) await f();
  };
}

export interface StalledBackend {
  port: number;
  /** Bytes read since resume(). */
  received: number;
  readonly connected: boolean;
  resume(): void;
  stop(): void;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Output a ChildOutput keeps per stream; past it the oldest text is dropped. */
const CHILD_OUTPUT_KEPT = 1 << 20;

/**
 * Collects a child process's stdout and stderr as they come, so a test can wait for a line (the
 * start banner, a log record) and, when none comes, report what the process did print and
 * whether it exited: "address already in use" beats "no line matching".
 */
export class ChildOutput {
  stdout = "";
  stderr = "";
  exitCode: number | null = null;
  /** Settles once both pipes have delivered their last bytes (the process has closed them). */
  readonly ended: Promise<void>;

  constructor(readonly proc: Subprocess<"ignore" | "pipe" | "inherit", "pipe", "pipe">) {
    this.ended = Promise.all([
      this.pump(proc.stdout, (s) => (this.stdout = (this.stdout + s).slice(-CHILD_OUTPUT_KEPT))),
      this.pump(proc.stderr, (s) => (this.stderr = (this.stderr + s).slice(-CHILD_OUTPUT_KEPT))),
    ]).then(() => {});
    void proc.exited.then((code) => (this.exitCode = code));
  }

  private async pump(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  }

  /** Waits for a log line on stdout whose message (`body`) is `body`, and returns it parsed. */
  async logLine(body: string, timeoutMs = 15_000, from = 0): Promise<LogRecord> {
    const [line] = await this.line(new RegExp(`^\\{[^\\n]*"body":${escapeRegExp(JSON.stringify(body))}[,}][^\\n]*$`, "m"), timeoutMs, from);
    return JSON.parse(line) as LogRecord;
  }

  /**
   * Every complete log line on stdout whose message is `body` (all of them without one); other
   * text (a demo banner) is passed over: checking that every line is JSON is a test of its own.
   */
  logRecords(body?: string): LogRecord[] {
    const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
    return logRecords(complete.split("\n").filter((l) => l.startsWith("{")).join("\n"), body);
  }

  /** Waits until stdout (from `from` on) matches; on exit or timeout, fails showing both streams. */
  async line(pattern: RegExp, timeoutMs = 15_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.slice(from).match(pattern);
      if (m) return m;
      const exited = this.exitCode !== null;
      if (exited || Date.now() > deadline) {
        await Bun.sleep(50); // let the pipes deliver the last words
        const late = this.stdout.slice(from).match(pattern);
        if (late) return late;
        throw new Error(
          `no line matching ${pattern} (${exited ? `the process exited with status ${this.exitCode}` : `still running after ${timeoutMs} ms`})\n` +
            `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`,
        );
      }
      await Bun.sleep(10);
    }
  }
}
