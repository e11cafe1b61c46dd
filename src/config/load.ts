// Turns a YAML file (plus the environment) into a validated, deeply frozen GatewayConfig.
// Every problem is collected, so one failed start shows everything to fix.

import { hostname } from "node:os";
import { parseDocument } from "yaml";
import { formatByteSize } from "./duration.ts";
import { GATEWAY_SCHEMA, LOG_LEVELS } from "./gateway-schema.ts";
import { readRules } from "./rules.ts";
import { isMapping, readSection, type ConfigIssue, type Parsed, type ReadContext } from "./schema.ts";
import type { GatewayConfig, LogLevel, RouteRule } from "./types.ts";

export { parseHostPort } from "./host-port.ts";
export type { ConfigIssue } from "./schema.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
  }
}

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Accepted-but-adjusted values (e.g. a clamped max_message_size), for the operator's log. */
  readonly warnings: string[];
}

export type Env = Record<string, string | undefined>;

/** Parses and validates one YAML document; an empty one means all defaults. Throws ConfigError. */
export function parseConfig(yamlText: string, env: Env = process.env): LoadedConfig {
  const ctx: ReadContext = { issues: [], warnings: [] };
  const root = readYaml(yamlText, ctx);
  const parsed = readSection(GATEWAY_SCHEMA, root, "", ctx);
  checkAcrossKeys(parsed, root, ctx);
  const level = logLevel(root, parsed.log.level, env, ctx);
  if (ctx.issues.length > 0) throw new ConfigError(ctx.issues);
  const config: GatewayConfig = {
    ...parsed,
    server: { ...parsed.server, gateway_name: gatewayName(parsed.server.gateway_name, env) },
    log: { ...parsed.log, level },
  };
  return { config: deepFreeze(config), warnings: ctx.warnings };
}

/** Reads and parses a config file; a missing or unreadable file is a ConfigError at "(file)". */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const got = err.code === "ENOENT" ? `"${path}", which does not exist` : `"${path}" (${err.message})`;
    throw new ConfigError([{ path: "(file)", value: path, got, expected: "a readable YAML config file" }]);
  }
  return parseConfig(text, env);
}

export function defaultConfig(env: Env = process.env): GatewayConfig {
  return parseConfig("", env).config;
}

/**
 * Validates routing rules from outside the file (the Redis key `{key_prefix}routing:rules`,
 * in any shape routing.rules accepts). Throws ConfigError; the result is frozen.
 */
export function parseRouteRules(value: unknown, path = "routing.rules"): readonly RouteRule[] {
  const ctx: ReadContext = { issues: [], warnings: [] };
  const rules = readRules(value, path, ctx);
  if (rules === undefined || ctx.issues.length > 0) throw new ConfigError(ctx.issues);
  return deepFreeze(rules);
}

// ---- steps ----

function readYaml(text: string, ctx: ReadContext): unknown {
  const yamlIssue = (message: string): undefined => {
    const first = (message.split("\n")[0] ?? "").replace(/:$/, "");
    ctx.issues.push({ path: "(yaml)", value: undefined, got: `invalid YAML (${first})`, expected: "a YAML mapping of config sections" });
    return undefined;
  };
  // merge: Go's yaml.v3 honours "<<" keys, so reference files may use them.
  const doc = parseDocument(text, { merge: true, uniqueKeys: true });
  for (const w of doc.warnings) ctx.warnings.push(`(yaml): ${w.message.split("\n")[0]}`);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) yamlIssue(e.message);
    return undefined;
  }
  try {
    return doc.toJS(); // throws on unresolved aliases and alias bombs
  } catch (e) {
    return yamlIssue((e as Error).message);
  }
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

/** An explicit log.level wins; otherwise env LOG_LEVEL (checked whenever set, so a typo never goes unnoticed). */
function logLevel(root: unknown, fromFile: LogLevel, env: Env, ctx: ReadContext): LogLevel {
  const raw = env.LOG_LEVEL;
  let fromEnv: LogLevel | undefined;
  if (raw !== undefined && raw !== "") {
    fromEnv = LOG_LEVELS.find((l) => l === raw.toLowerCase());
    if (fromEnv === undefined) ctx.issues.push({ path: "env LOG_LEVEL", value: raw, expected: `one of ${LOG_LEVELS.join(", ")}` });
  }
  const explicit = rawAt(root, "log", "level");
  return explicit === undefined || explicit === null ? (fromEnv ?? fromFile) : fromFile;
}

function gatewayName(configured: string, env: Env): string {
  // The name seeds session IDs and is sent to backends, so it must never be empty.
  return configured || env.POD_NAME || hostname() || "game-gateway";
}

function rawAt(root: unknown, section: string, key: string): unknown {
  const s = isMapping(root) ? root[section] : undefined;
  return isMapping(s) ? s[key] : undefined;
}

function formatIssue(i: ConfigIssue): string {
  return `${i.path}: got ${i.got ?? describe(i.value)}, expected ${i.expected}`;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
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
