// Flags of `game-gateway loadtest`. The reference tool's flags keep its names and defaults (Go's
// flag package: one dash, -flag value or -flag=value, booleans never take the next argument), so
// its command lines run unchanged; two dashes work too. Flags it did not have are documented
// with two dashes but accept one as well.
import { formatDuration, parseDuration } from "../config/duration.ts";
import { MAX_CLIENT_BODY, MAX_WORLD_ID } from "../protocol/client-frame.ts";

/** Body bytes needed for the sequence number (u32), send time (f64) and connection id (u32). */
export const MIN_BODY_SIZE = 16;

/**
 * Connections per source address under "auto". The gateway admits at most
 * security.max_connections_per_ip (default 10) concurrent and connection_rate_limit (default 5,
 * also the burst) new connections per second from one IP; 5 per address stays inside both even
 * when every connection is dialled at once. Real players come from many addresses too.
 */
export const CONNECTIONS_PER_SOURCE_ADDRESS = 5;

/** 127.0.0.1 .. 127.255.255.254: the whole loopback /8 but its network and broadcast addresses. */
export const MAX_SOURCE_ADDRESSES = 0xfffffe;

export interface LoadtestOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly durationMs: number;
  /** Messages per second per connection; 0 = closed loop. */
  readonly rate: number;
  /** Body bytes (already clamped to MIN_BODY_SIZE). */
  readonly messageSize: number;
  readonly serverType: number;
  readonly worldId: number;
  readonly instId: number;
  readonly dialTimeoutMs: number;
  readonly replyTimeoutMs: number;
  readonly verbose: boolean;
  /** Connections opened per second; 0 = all at once. */
  readonly ramp: number;
  /** Closed loop: messages in flight per connection. */
  readonly inFlight: number;
  readonly json: boolean;
  /** Fraction (0.001 = 0.1%). */
  readonly maxErrorRate: number;
  readonly processes: number;
  /** Source addresses to spread connections over, from 127.0.0.1 up; "auto" decides from the target. */
  readonly sourceAddresses: number | "auto";
  readonly ws: boolean;
  /** --ws: the path of the gateway's WebSocket endpoint (server.ws_path). */
  readonly wsPath: string;
  /** TLS to the listener (server.tls.*): TCP clients over TLS, or wss:// with --ws. */
  readonly tls: boolean;
  /** --tls: accept any server certificate (a self-signed one in a test or benchmark). */
  readonly tlsInsecure: boolean;
  /** --tls: a PEM file of the CA that signed the server's certificate ("" = the system's CAs). */
  readonly tlsCa: string;
  // Internal: set by a parent for its worker processes.
  readonly worker: boolean;
  /** Global id of this process's first connection. */
  readonly connBase: number;
  /** Worker: emit a progress line every second. */
  readonly workerProgress: boolean;
}

export type ParsedLoadtestArgs =
  | { readonly kind: "run"; readonly options: LoadtestOptions; readonly notes: readonly string[] }
  | { readonly kind: "help" };

export class LoadtestUsageError extends Error {}

export const LOADTEST_USAGE = `game-gateway loadtest: round-trip load through the gateway (echoed by the demo backend)

Usage: game-gateway loadtest [flags]

  -host HOST             gateway host (localhost)
  -port N                gateway client port (8080)
  -connections N         concurrent client connections (100)
  -duration D            sending time, Go duration (30s)
  -rate R                messages/s per connection; 0 = closed loop (10)
  -message-size N        body bytes, at least ${MIN_BODY_SIZE} (${MIN_BODY_SIZE})
  -server-type N         ServerID server type (10)
  -world-id N            ServerID world id (0)
  -timeout D             dial timeout (5s)
  -verbose               log each failure (the first ones of each kind)
  --inst-id N            ServerID instance id (0)
  --ramp R               connections opened per second; 0 = all at once (0)
  --in-flight N          closed loop: messages in flight per connection (1)
  --reply-timeout D      a reply later than this is an error (5s)
  --json                 print the result as JSON on stdout
  --max-error-rate F     exit 1 when errors / messages sent, or failed or dropped
                         connections / connections dialled, exceeds F (0.001 = 0.1%)
  --processes N          spread connections over N worker processes (1)
  --source-addresses N   spread connections over N source addresses from 127.0.0.1 up
                         (loopback targets only; auto, the default: on Linux one per
                         ${CONNECTIONS_PER_SOURCE_ADDRESS} connections, so the gateway's default per-IP admission
                         limits let every connection in; elsewhere 1)
  --ws                   WebSocket clients: -port is then the gateway's WebSocket listener
                         (server.ws_listen_addr), or its client port, which accepts them too
  --ws-path PATH         the WebSocket endpoint's path (/ws, as server.ws_path)
  --tls                  TLS to the listener (server.tls.*): TCP clients over TLS, or wss://
                         with --ws; the certificate is verified against the system's CAs
  --tls-ca FILE          --tls: verify against this CA's PEM instead (a private CA)
  --tls-insecure         --tls: accept any certificate (a self-signed one on a test machine)
  -h, --help

Exit status: 0 pass, 1 an error rate above --max-error-rate, 2 usage error.`;

type Kind = "string" | "int" | "float" | "duration" | "bool";

interface FlagSpec {
  readonly kind: Kind;
  readonly key: keyof Mutable;
}

type Mutable = { -readonly [K in keyof LoadtestOptions]: LoadtestOptions[K] };

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  host: { kind: "string", key: "host" },
  port: { kind: "int", key: "port" },
  connections: { kind: "int", key: "connections" },
  duration: { kind: "duration", key: "durationMs" },
  rate: { kind: "float", key: "rate" },
  "message-size": { kind: "int", key: "messageSize" },
  "server-type": { kind: "int", key: "serverType" },
  "world-id": { kind: "int", key: "worldId" },
  "inst-id": { kind: "int", key: "instId" },
  timeout: { kind: "duration", key: "dialTimeoutMs" },
  "reply-timeout": { kind: "duration", key: "replyTimeoutMs" },
  verbose: { kind: "bool", key: "verbose" },
  ramp: { kind: "float", key: "ramp" },
  "in-flight": { kind: "int", key: "inFlight" },
  json: { kind: "bool", key: "json" },
  "max-error-rate": { kind: "float", key: "maxErrorRate" },
  processes: { kind: "int", key: "processes" },
  "source-addresses": { kind: "string", key: "sourceAddresses" },
  ws: { kind: "bool", key: "ws" },
  "ws-path": { kind: "string", key: "wsPath" },
  tls: { kind: "bool", key: "tls" },
  "tls-insecure": { kind: "bool", key: "tlsInsecure" },
  "tls-ca": { kind: "string", key: "tlsCa" },
  worker: { kind: "bool", key: "worker" },
  "conn-base": { kind: "int", key: "connBase" },
  "worker-progress": { kind: "bool", key: "workerProgress" },
};

export function defaultOptions(): LoadtestOptions {
  return {
    host: "localhost",
    port: 8080,
    connections: 100,
    durationMs: 30_000,
    rate: 10,
    // The reference's 8 cannot hold the payload; 16 is the smallest body that can.
    messageSize: MIN_BODY_SIZE,
    serverType: 10,
    worldId: 0,
    instId: 0,
    dialTimeoutMs: 5000,
    replyTimeoutMs: 5000,
    verbose: false,
    ramp: 0,
    inFlight: 1,
    json: false,
    maxErrorRate: 0.001,
    processes: 1,
    sourceAddresses: "auto",
    ws: false,
    wsPath: "/ws",
    tls: false,
    tlsInsecure: false,
    tlsCa: "",
    worker: false,
    connBase: 0,
    workerProgress: false,
  };
}

function parseValue(name: string, kind: Kind, text: string): string | number | boolean {
  switch (kind) {
    case "string":
      return text;
    case "bool":
      // Go's strconv.ParseBool spellings.
      if (["1", "t", "T", "true", "TRUE", "True"].includes(text)) return true;
      if (["0", "f", "F", "false", "FALSE", "False"].includes(text)) return false;
      throw new LoadtestUsageError(`-${name}: got "${text}", expected true or false`);
    case "int": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isSafeInteger(n)) throw new LoadtestUsageError(`-${name}: got "${text}", expected an integer`);
      return n;
    }
    case "float": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n)) throw new LoadtestUsageError(`-${name}: got "${text}", expected a number`);
      return n;
    }
    case "duration": {
      const ms = parseDuration(text);
      if (ms === undefined) throw new LoadtestUsageError(`-${name}: got "${text}", expected a Go duration such as 30s, 1m or 500ms`);
      if (!Number.isFinite(ms)) throw new LoadtestUsageError(`-${name}: got "${text}", too large for a Go duration`);
      return ms;
    }
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new LoadtestUsageError(message);
}

export function parseLoadtestArgs(argv: readonly string[]): ParsedLoadtestArgs {
  const o: Mutable = { ...defaultOptions() };
  const notes: string[] = [];
  let rawInFlight = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const m = /^--?([a-zA-Z][\w-]*)(?:=([\s\S]*))?$/.exec(raw);
    if (m === null) throw new LoadtestUsageError(`unexpected argument "${raw}" (flags start with - or --)`);
    const name = m[1]!;
    const inline = m[2];
    if (name === "h" || name === "help") return { kind: "help" };
    const spec = FLAGS[name];
    if (spec === undefined) throw new LoadtestUsageError(`unknown flag "${raw}"`);
    let text: string;
    if (inline !== undefined) text = inline;
    else if (spec.kind === "bool") text = "true";
    else {
      const next = argv[++i];
      if (next === undefined) throw new LoadtestUsageError(`-${name} needs a value`);
      text = next;
    }
    if (name === "in-flight") rawInFlight = true;
    if (name === "source-addresses") {
      o.sourceAddresses = text === "auto" ? "auto" : (parseValue(name, "int", text) as number);
      continue;
    }
    (o as Record<string, unknown>)[spec.key] = parseValue(name, spec.kind, text);
  }

  check(o.host !== "", "-host must not be empty");
  check(o.port >= 1 && o.port <= 65535, `-port: got ${o.port}, expected 1..65535`);
  check(o.connections >= 1 && o.connections <= 1_000_000, `-connections: got ${o.connections}, expected 1..1000000`);
  check(o.durationMs > 0, `-duration: got ${formatDuration(o.durationMs)}, expected more than 0`);
  check(o.rate >= 0 && o.rate <= 1_000_000, `-rate: got ${o.rate}, expected 0 (closed loop) .. 1000000`);
  check(o.messageSize >= 0 && o.messageSize <= MAX_CLIENT_BODY, `-message-size: got ${o.messageSize}, expected 0..${MAX_CLIENT_BODY}`);
  check(o.serverType >= 0 && o.serverType <= 0xff, `-server-type: got ${o.serverType}, expected 0..255`);
  check(o.worldId >= 0 && o.worldId <= MAX_WORLD_ID, `-world-id: got ${o.worldId}, expected 0..${MAX_WORLD_ID}`);
  check(o.instId >= 0 && o.instId <= 0xff, `--inst-id: got ${o.instId}, expected 0..255`);
  check(o.dialTimeoutMs > 0, `-timeout: got ${formatDuration(o.dialTimeoutMs)}, expected more than 0`);
  check(o.replyTimeoutMs > 0, `--reply-timeout: got ${formatDuration(o.replyTimeoutMs)}, expected more than 0`);
  check(o.ramp >= 0, `--ramp: got ${o.ramp}, expected 0 (all at once) or more`);
  check(o.inFlight >= 1 && o.inFlight <= 4096, `--in-flight: got ${o.inFlight}, expected 1..4096`);
  check(o.maxErrorRate >= 0, `--max-error-rate: got ${o.maxErrorRate}, expected 0 or more`);
  check(o.processes >= 1 && o.processes <= 64, `--processes: got ${o.processes}, expected 1..64`);
  check(o.processes <= o.connections, `--processes ${o.processes} is more than -connections ${o.connections}`);
  if (o.sourceAddresses !== "auto") {
    check(
      o.sourceAddresses >= 1 && o.sourceAddresses <= MAX_SOURCE_ADDRESSES,
      `--source-addresses: got ${o.sourceAddresses}, expected 1..${MAX_SOURCE_ADDRESSES} or auto`,
    );
  }
  check(o.tls || !o.tlsInsecure, "--tls-insecure applies to --tls only: add --tls");
  check(o.tls || o.tlsCa === "", "--tls-ca applies to --tls only: add --tls");
  check(!(o.tlsInsecure && o.tlsCa !== ""), "--tls-insecure and --tls-ca contradict each other: verify against the CA, or accept any certificate");
  check(o.connBase >= 0, `--conn-base: got ${o.connBase}, expected 0 or more`);

  if (o.messageSize < MIN_BODY_SIZE) {
    // Workers get the clamped size from their parent, so only the parent says this.
    notes.push(
      `-message-size ${o.messageSize} is below ${MIN_BODY_SIZE} (a body carries a sequence number, send time and connection id): using ${MIN_BODY_SIZE}`,
    );
    o.messageSize = MIN_BODY_SIZE;
  }
  if (rawInFlight && o.rate > 0) notes.push(`--in-flight applies to the closed loop (-rate 0) only; ignored at -rate ${o.rate}`);
  return { kind: "run", options: o, notes };
}

/** True for the IPv4 loopback range and "localhost", where source addresses can be spread. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** How many source addresses to spread over (1 = leave it to the kernel). */
export function resolveSourceAddresses(o: LoadtestOptions): number {
  if (!isLoopbackHost(o.host)) return 1;
  if (o.sourceAddresses !== "auto") return Math.min(o.sourceAddresses, o.connections);
  // Linux answers on all of 127/8; macOS, for one, has only 127.0.0.1 unless aliases are added.
  if (process.platform !== "linux") return 1;
  return Math.max(o.processes, Math.ceil(o.connections / CONNECTIONS_PER_SOURCE_ADDRESS));
}

/** The k-th source address (0-based): 127.0.0.1 + k, as dotted quad. */
export function sourceAddress(k: number): string {
  const a = 1 + k;
  return `127.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}
