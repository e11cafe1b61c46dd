// Turns a YAML file (plus the environment) into a validated, deeply frozen GatewayConfig.
// Every problem is collected, so one failed start shows everything to fix.

import { hostname } from "node:os";
import { type Document, LineCounter, parseDocument } from "yaml";
import { formatByteSize } from "./duration.ts";
import { GATEWAY_SCHEMA, LOG_LEVELS } from "./gateway-schema.ts";
import { locate, syntaxErrorPosition } from "./locate.ts";
import { readRules } from "./rules.ts";
import { notActedOnKeys, notActedOnWarning } from "./not-acted-on.ts";
import { plainScalarTexts } from "./plain-scalars.ts";
import { isMapping, newReadContext, readSection, type ConfigIssue, type Parsed, type ReadContext } from "./schema.ts";
import { REDACTED, shownValue } from "./secrets.ts";
import type { GatewayConfig, LogLevel, RouteRule } from "./types.ts";

export { parseHostPort } from "./host-port.ts";
export type { ConfigIssue } from "./schema.ts";

/**
 * Larger config files are refused unread: parsing YAML costs about 100x its size in memory, and a
 * reload must not be able to exhaust the process. 1 MiB holds ~10,000 routing rules.
 */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The issues with secret values already replaced: safe to log, show or send anywhere. */
  readonly issues: readonly ConfigIssue[];

  /** `source`: the file name the positions refer to, which starts each line of the message. */
  constructor(issues: readonly ConfigIssue[], readonly source?: string) {
    const safe = issues.map((i) => ({ ...i, value: shownValue(i.path, i.value) }));
    super(safe.map((i) => formatIssue(i, source)).join("\n"));
    this.issues = safe;
  }
}

export interface ParseOptions {
  /** The file name errors are reported against ("gateway.yaml:12:20 ..."). */
  readonly source?: string;
  /**
   * A file that is to run a gateway must route somewhere: with no rules every client is refused.
   * Off for in-process configs (tests, the embedded demo) that add their routes otherwise.
   */
  readonly requireRoutes?: boolean;
}

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /**
   * Accepted-but-adjusted values (e.g. a clamped max_message_size) for the operator's log, and
   * one warning naming every key set that this version does not act on (notActedOn).
   */
  readonly warnings: string[];
  /** The keys set but not acted on, as that warning names them ("redis.*", "server.metrics_port"). */
  readonly notActedOn: readonly string[];
}

export type Env = Record<string, string | undefined>;

/**
 * Parses and validates one YAML document; an empty one means all defaults (unless routes are
 * required). Throws ConfigError.
 */
export function parseConfig(yamlText: string, env: Env = process.env, options: ParseOptions = {}): LoadedConfig {
  const ctx = newReadContext();
  const lines = new LineCounter();
  const { root, doc } = readYaml(yamlText, lines, ctx);
  if (doc !== undefined) ctx.plainScalarText = plainScalarTexts(doc);
  const parsed = readSection(GATEWAY_SCHEMA, root, "", ctx);
  checkAcrossKeys(parsed, root, ctx);
  // Rules that failed to read (or a file that failed to parse) are already reported.
  if (options.requireRoutes && !ctx.issues.some((i) => i.path.startsWith("routing") || i.path.startsWith("("))) {
    checkServable(parsed, root, ctx);
  }
  const level = logLevel(root, parsed.log.level, env, ctx);
  if (ctx.issues.length > 0) {
    const issues = doc === undefined ? ctx.issues : ctx.issues.map((i) => (i.at !== undefined ? i : withPosition(i, doc, lines)));
    throw new ConfigError(inFileOrder(issues), options.source);
  }
  const config: GatewayConfig = {
    ...parsed,
    server: { ...parsed.server, gateway_name: gatewayName(parsed.server.gateway_name, env) },
    log: { ...parsed.log, level },
  };
  // Never silently ignored: an operator who set redis.addr must learn that nothing dials it.
  const unused = notActedOnKeys(GATEWAY_SCHEMA, ctx.notActedOn);
  const unusedWarning = notActedOnWarning(unused);
  const warnings = unusedWarning === undefined ? ctx.warnings : [...ctx.warnings, unusedWarning];
  const modeHint = referenceBackendModeHint(root);
  if (modeHint !== undefined) warnings.push(modeHint);
  return { config: deepFreeze(config), warnings, notActedOn: unused.map((u) => u.key) };
}

/**
 * Reads and validates a config file that is to run a gateway: it must route somewhere. A missing,
 * unreadable or over-large (MAX_CONFIG_FILE_BYTES) file is a ConfigError at "(file)".
 */
export async function loadConfigFile(
  path: string,
  env: Env = process.env,
  { requireRoutes = true }: Pick<ParseOptions, "requireRoutes"> = {},
): Promise<LoadedConfig> {
  const fileIssue = (got: string, expected = "a readable YAML config file"): ConfigError =>
    new ConfigError([{ path: "(file)", value: path, got, expected }], path);
  let bytes: Uint8Array;
  try {
    const file = Bun.file(path);
    // Read one byte past the cap, never more: the size on disk may change while we read.
    bytes = await file.slice(0, MAX_CONFIG_FILE_BYTES + 1).bytes();
    if (bytes.length > MAX_CONFIG_FILE_BYTES) {
      // A device or pipe has no size of its own (Bun says Infinity or 0).
      const got = Number.isFinite(file.size) && file.size > MAX_CONFIG_FILE_BYTES ? `a file of ${file.size} bytes` : "a larger file";
      throw fileIssue(got, `a config file of at most ${formatByteSize(MAX_CONFIG_FILE_BYTES)} (${MAX_CONFIG_FILE_BYTES} bytes)`);
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw fileIssue(err.code === "ENOENT" ? `"${path}", which does not exist` : `"${path}" (${err.message})`);
  }
  const text = new TextDecoder().decode(bytes);
  if (requireRoutes && text.trim() === "") throw fileIssue("an empty file", "a YAML mapping of config sections, with at least routing.rules");
  return parseConfig(text, env, { source: path, requireRoutes });
}

export function defaultConfig(env: Env = process.env): GatewayConfig {
  return parseConfig("", env).config;
}

/**
 * Validates routing rules from outside the file (the Redis key `{key_prefix}routing:rules`,
 * in any shape routing.rules accepts). Throws ConfigError; the result is frozen. With `ignored`,
 * read as the reference's Go encoding/json reads them (RuleReading "go_json"): what it would
 * silently drop is named to `ignored` instead of refused.
 */
export function parseRouteRules(value: unknown, path = "routing.rules", ignored?: (what: string) => void): readonly RouteRule[] {
  const ctx = newReadContext();
  const rules = readRules(value, path, ctx, ignored === undefined ? undefined : { mode: "go_json", ignored });
  if (rules === undefined || ctx.issues.length > 0) throw new ConfigError(ctx.issues);
  return deepFreeze(rules);
}

// ---- steps ----

function readYaml(text: string, lines: LineCounter, ctx: ReadContext): { root: unknown; doc?: Document } {
  const yamlIssue = (message: string, offset?: number): { root: undefined } => {
    // The parser's own "at line N, column M" is dropped: the position leads the line instead.
    const first = (message.split("\n")[0] ?? "").replace(/:$/, "").replace(/ at line \d+, column \d+$/, "");
    ctx.issues.push({
      path: "(yaml)",
      value: undefined,
      got: `invalid YAML (${first})`,
      expected: "a YAML mapping of config sections",
      ...(offset === undefined ? {} : { at: syntaxErrorPosition(text, lines, offset) }),
    });
    return { root: undefined };
  };
  // merge: Go's yaml.v3 honours "<<" keys, so reference files may use them.
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, lineCounter: lines });
  for (const w of doc.warnings) ctx.warnings.push(`(yaml): ${w.message.split("\n")[0]}`);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) yamlIssue(e.message, e.pos[0]);
    return { root: undefined };
  }
  try {
    return { root: doc.toJS(), doc }; // throws on unresolved aliases and alias bombs
  } catch (e) {
    return yamlIssue((e as Error).message);
  }
}

function withPosition(i: ConfigIssue, doc: Document, lines: LineCounter): ConfigIssue {
  const at = locate(doc, lines, i.path, i.atKey);
  return at === undefined ? i : { ...i, at };
}

/** Problems in the order they appear in the file; those with no position (env) last. */
function inFileOrder(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const key = (i: ConfigIssue): number => (i.at === undefined ? Number.MAX_SAFE_INTEGER : i.at.line * 1e6 + i.at.col);
  return [...issues].sort((a, b) => key(a) - key(b));
}

/** A file with no routing rules would refuse every client it accepted. */
function checkServable(c: Parsed<typeof GATEWAY_SCHEMA>, root: unknown, ctx: ReadContext): void {
  const rules = c.routing.rules;
  if (rules.some((r) => r.endpoints.length > 0)) return;
  // Routes from Redis or Consul arrive after start; /ready says so until they do.
  if (c.redis.addr !== "" || c.consul.enabled) return;
  const raw = rawAt(root, "routing", "rules");
  ctx.issues.push({
    path: "routing.rules",
    value: raw,
    got: rules.length > 0 ? "only rules with no endpoints" : raw === undefined ? "no rules" : "an empty list",
    expected:
      "at least one rule with endpoints, or redis.addr / consul.enabled to take them from there (with none, every client would be refused with no_route; rules the reference keeps in Redis may go here, in the same JSON)",
  });
}

function checkAcrossKeys(c: Parsed<typeof GATEWAY_SCHEMA>, root: unknown, ctx: ReadContext): void {
  const b = c.backend;
  if (b.write_queue_high_water > b.write_queue_limit) {
    ctx.issues.push({
      path: "backend.write_queue_high_water",
      value: rawAt(root, "backend", "write_queue_high_water") ?? b.write_queue_high_water,
      expected: `a size no larger than backend.write_queue_limit (${formatByteSize(b.write_queue_limit)})`,
    });
  }
}

/**
 * An explicit log.level wins; otherwise env LOG_LEVEL. Like the reference gateway, an unknown
 * LOG_LEVEL means info rather than a refusal to start (a deployment's env must not stop the swap),
 * but it is warned about whenever set, so a typo never goes unnoticed.
 */
function logLevel(root: unknown, fromFile: LogLevel, env: Env, ctx: ReadContext): LogLevel {
  const raw = env.LOG_LEVEL;
  let fromEnv: LogLevel | undefined;
  if (raw !== undefined && raw !== "") {
    fromEnv = LOG_LEVELS.find((l) => l === raw.toLowerCase());
    if (fromEnv === undefined) {
      fromEnv = "info";
      ctx.warnings.push(`env LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(raw)}; logging at info`);
    }
  }
  const explicit = rawAt(root, "log", "level");
  return explicit === undefined || explicit === null ? (fromEnv ?? fromFile) : fromFile;
}

function gatewayName(configured: string, env: Env): string {
  // The name seeds session IDs and is sent to backends, so it must never be empty.
  return configured || env.POD_NAME || hostname() || "game-gateway";
}

/** Keys only the reference Go gateway's files carry: a file with one of them was probably written for it. */
const REFERENCE_ONLY_KEYS: readonly (readonly [string, string])[] = [
  ["server", "use_grpc"],
  ["connection_pool", "max_goroutines"],
  ["connection_pool", "goroutine_expiry"],
  ["connection_pool", "connection_queue_size"],
  ["backend", "account_service"],
  ["backend", "version_service"],
  ["backend", "game_service"],
];

/**
 * A file written for the reference gateway, with no backend.mode of ours: its TCP game servers
 * expect one connection per player and Trans only, which is backend.mode per_session, while the
 * default here is multiplexed. Said once at load rather than left for the first player to find.
 */
function referenceBackendModeHint(root: unknown): string | undefined {
  // backend.mode is the TCP backends' mode: with use_grpc every backend speaks gRPC instead.
  if (rawAt(root, "backend", "mode") !== undefined || rawAt(root, "server", "use_grpc") === true) return undefined;
  const marker = REFERENCE_ONLY_KEYS.find(([section, key]) => rawAt(root, section, key) !== undefined);
  if (marker === undefined) return undefined;
  return (
    `backend.mode: not set, so multiplexed (sessions share connections; Connect, Disconnect and Ping are sent), ` +
    `but this file has ${marker.join(".")}, a key of the reference Go gateway: game servers written for its TCP mode ` +
    `need backend.mode: per_session (set backend.mode either way to silence this; docs/migrating.md)`
  );
}

function rawAt(root: unknown, section: string, key: string): unknown {
  const s = isMapping(root) ? root[section] : undefined;
  return isMapping(s) ? s[key] : undefined;
}

/** "gateway.yaml:12:20 connection_pool.max_connections: expected an integer >= 1, got "lots"". */
function formatIssue(i: ConfigIssue, source: string | undefined): string {
  const where = source === undefined ? "" : i.at === undefined ? `${source}: ` : `${source}:${i.at.line}:${i.at.col} `;
  const hint = i.hint === undefined ? "" : `; ${i.hint}`;
  return `${where}${i.path}: expected ${i.expected}, got ${i.got ?? describe(i.value)}${hint}`;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === REDACTED) return REDACTED;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

// Compile-time guard: the schema yields exactly the GatewayConfig shape of types.ts.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export type SchemaMatchesTypes = Equals<Parsed<typeof GATEWAY_SCHEMA>, GatewayConfig> extends true ? true : never;
const schemaMatchesTypes: SchemaMatchesTypes = true;
void schemaMatchesTypes;
