// Command-line parsing for the gateway executable. Accepts the reference gateway's Go-style
// single-dash flags (-config FILE) beside the usual --config FILE / --config=FILE.
import { DEFAULT_HEALTH_URL } from "./healthcheck.ts";
import { MAX_WORKERS } from "../session/session-id.ts";

export type Command =
  | {
      readonly kind: "run";
      /** --config's value; null: none given (main.ts then looks for DEFAULT_CONFIG_PATH, as the reference does). */
      readonly configPath: string | null;
      /** --demo: start the embedded demo backend and route the demo server types to it (also when there is no config at all). */
      readonly demo: boolean;
      /** --workers N: overrides server.workers (0 = one per CPU, 1 = a single process); null: the config decides. */
      readonly workers: number | null;
    }
  | { readonly kind: "check-config"; readonly configPath: string }
  | {
      readonly kind: "demo-backend";
      readonly host: string;
      readonly port: number;
      /** --trace-header: Trans frames carry the 33-byte gate header (tracing.enable_trace_propagation on the gateway). */
      readonly traceHeader: boolean;
    }
  | { readonly kind: "loadtest"; readonly argv: readonly string[] }
  /** The container HEALTHCHECK: GET url, exit 0 on 2xx (src/cli/healthcheck.ts). */
  | { readonly kind: "healthcheck"; readonly url: string }
  | { readonly kind: "version" }
  | { readonly kind: "help" };

export class UsageError extends Error {}

export const USAGE = `game-gateway: the front door of an online game

Usage:
  game-gateway [--config FILE]        run the gateway; without --config, config/config.yaml in the working
                                      directory if it exists (as the reference), else an embedded demo backend
  game-gateway --config FILE --demo   FILE's settings (ports, limits), but the embedded demo backend's
                                      routes instead of FILE's; FILE is read once, not watched
  game-gateway --config FILE --workers N
                                      N worker processes sharing the client ports under one supervisor and
                                      one admin port (0 = one per CPU within the CPU quota, 1 = one process);
                                      else server.workers
  game-gateway --check-config FILE    validate FILE and exit (0 valid, 1 invalid)
  game-gateway demo-backend [--host H] [--port N] [--trace-header]
                                      run the demo game backend alone (default 127.0.0.1:9000);
                                      --trace-header when the gateway runs tracing.enable_trace_propagation:
                                      its Trans frames then carry 24 trace bytes after the gate header
  game-gateway loadtest [flags]       round-trip load test of a gateway (loadtest --help)
  game-gateway healthcheck [--url URL] GET URL (default http://127.0.0.1:9090/health): exit 0 on 2xx, else 1;
                                      the container image's HEALTHCHECK (it has no shell or curl)
  game-gateway --version | --help

Flags may also be written with one dash (-config FILE) or as --flag=value.`;

/** Splits "--name=value" / "-name=value" and normalises the dash count. */
function* tokens(argv: readonly string[]): Generator<{ flag: string | null; value: string | null; raw: string }> {
  for (const raw of argv) {
    const m = /^--?([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(raw);
    if (m) yield { flag: m[1]!, value: m[2] ?? null, raw };
    else yield { flag: null, value: raw, raw };
  }
}

/**
 * The arguments with every flag spelled "--name" and any "=value" split off, for the dev tools
 * (bench, scripts) that look flags up by that spelling: -flag, --flag and --flag=v work alike.
 */
export function withTwoDashFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of tokens(argv)) {
    if (t.flag === null) out.push(t.raw);
    else out.push(`--${t.flag}`, ...(t.value === null ? [] : [t.value]));
  }
  return out;
}

/**
 * The dev tools' flag lookup over withTwoDashFlags' output: the value after `--name`, or
 * `fallback` when the flag is absent or has no value.
 */
export function flagValue(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

/** A switch: bare (on), or --name=true / --name=false. */
function booleanFlag(name: string, inline: string | null): boolean {
  if (inline === null || inline === "true") return true;
  if (inline === "false") return false;
  throw new UsageError(`--${name}: got "${inline}", expected no value, true or false`);
}

export function parseArgs(argv: readonly string[]): Command {
  const list = [...tokens(argv)];
  let i = 0;
  const valueOf = (name: string, inline: string | null): string => {
    if (inline !== null) return inline;
    const next = list[++i];
    if (next === undefined || next.flag !== null) throw new UsageError(`--${name} needs a value`);
    return next.raw;
  };

  // The load tester parses its own (reference-compatible) flags.
  if (list[0]?.flag === null && list[0].value === "loadtest") return { kind: "loadtest", argv: argv.slice(1) };
  if (list[0]?.flag === null && list[0].value === "demo-backend") {
    let host = "127.0.0.1";
    let port = 9000;
    let traceHeader = false;
    for (i = 1; i < list.length; i++) {
      const t = list[i]!;
      if (t.flag === "help" || t.flag === "h") return { kind: "help" };
      if (t.flag === "host") host = valueOf("host", t.value);
      else if (t.flag === "trace-header") traceHeader = booleanFlag("trace-header", t.value);
      else if (t.flag === "port") {
        const v = valueOf("port", t.value);
        port = Number(v);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: got "${v}", expected 0..65535`);
      } else throw new UsageError(`demo-backend: unknown argument "${t.raw}"`);
    }
    return { kind: "demo-backend", host, port, traceHeader };
  }

  if (list[0]?.flag === null && list[0].value === "healthcheck") {
    let url = DEFAULT_HEALTH_URL;
    for (i = 1; i < list.length; i++) {
      const t = list[i]!;
      if (t.flag === "url") url = valueOf("url", t.value);
      else throw new UsageError(`healthcheck: unknown argument "${t.raw}"`);
    }
    if (!/^https?:\/\//.test(url)) throw new UsageError(`healthcheck --url: got "${url}", expected an http:// or https:// URL`);
    return { kind: "healthcheck", url };
  }

  let configPath: string | null = null;
  let demo = false;
  let workers: number | null = null;
  for (i = 0; i < list.length; i++) {
    const t = list[i]!;
    switch (t.flag) {
      case "version":
      case "v":
        return { kind: "version" };
      case "help":
      case "h":
        return { kind: "help" };
      case "check-config":
        return { kind: "check-config", configPath: valueOf("check-config", t.value) };
      case "config":
      case "c":
        configPath = valueOf("config", t.value);
        break;
      case "demo":
        if (t.value !== null) throw new UsageError(`--demo takes no value (got "${t.raw}")`);
        demo = true;
        break;
      case "workers": {
        const v = valueOf("workers", t.value);
        workers = Number(v);
        if (!/^\d+$/.test(v) || workers > MAX_WORKERS) throw new UsageError(`--workers: got "${v}", expected 0 (one per CPU) or 1..${MAX_WORKERS}`);
        break;
      }
      default:
        throw new UsageError(`unknown argument "${t.raw}"`);
    }
  }
  return { kind: "run", configPath, demo, workers };
}
