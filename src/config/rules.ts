// routing.rules in the three shapes a deployment may hold them: a YAML list, the reference's
// Redis object keyed by server type, or that object still as the JSON string stored in Redis.

import type { RouteRule } from "./types.ts";
import { custom, int, isMapping, issue, joinPath, oneOf, readSection, str, type ReadContext } from "./schema.ts";
import { isDialableEndpoint } from "./host-port.ts";

const ENDPOINT = `"host:port" with a host and a port 1..65535`;

// Optional: the reference's rules may leave endpoints to Consul (consul.enabled fills them). Without
// Consul such a rule still claims its (server_type, world_id), so its players are refused rather
// than sent to the wildcard's servers.
const endpoints = custom<readonly string[]>(
  [],
  (v, p, ctx) => {
    if (!Array.isArray(v)) return issue(ctx, p, v, `a list of ${ENDPOINT} strings`);
    const before = ctx.issues.length;
    const seen = new Map<string, number>();
    v.forEach((e: unknown, i) => {
      const ep = `${p}[${i}]`;
      if (typeof e !== "string" || !isDialableEndpoint(e)) issue(ctx, ep, e, ENDPOINT);
      else if (seen.has(e)) issue(ctx, ep, e, `an endpoint not already listed (duplicate of ${p}[${seen.get(e)}])`);
      else seen.set(e, i);
    });
    return ctx.issues.length === before ? (v as string[]) : undefined;
  },
  `a list of ${ENDPOINT} strings`,
);

const RULE = {
  server_type: int(undefined, 0, 255),
  world_id: int(0, 0, 32767),
  service_name: str(""),
  strategy: oneOf("round_robin", ["round_robin", "consistent_hash", "realm_based", "rendezvous_instance", "rendezvous_world"]),
  hash_key: str("").notActedOn("rules' hash_key: used by no strategy, there or here"),
  // Ours: "" follows server.use_grpc; "tcp" or "grpc" fixes this rule's backends' transport.
  transport: oneOf<"" | "tcp" | "grpc">("", ["", "tcp", "grpc"]),
  endpoints,
};

/** Endpoint-less rules named in their warning; the rest are counted. */
const EMPTY_RULES_NAMED = 5;

const SHAPES = "a list of rules, a mapping keyed by server type, or a JSON string of either";

/**
 * How strictly a rule's keys are read. "file": an unknown key, or a server_type other than the key
 * a rule is stored under, is an error (a typo in our config file). "go_json": as the reference's
 * Go encoding/json reads the Redis value: unknown keys are ignored, and the rule's own server_type
 * wins over the key it is stored under; each is said once through `ignored` (the caller warns).
 */
export type RuleReading = { readonly mode: "file" } | { readonly mode: "go_json"; readonly ignored: (what: string) => void };

const FILE_READING: RuleReading = { mode: "file" };

/** Reads routing.rules; reports problems to ctx and returns undefined when there were any. */
export function readRules(value: unknown, path: string, ctx: ReadContext, reading: RuleReading = FILE_READING): readonly RouteRule[] | undefined {
  const before = ctx.issues.length;
  let raw = value;
  if (typeof raw === "string") {
    try {
      raw = JSON.parse(raw);
    } catch (e) {
      return issue(ctx, path, value, `${SHAPES} (JSON.parse: ${(e as Error).message})`);
    }
  }
  const rules: { rule?: RouteRule; path: string }[] = [];
  if (Array.isArray(raw)) {
    raw.forEach((r, i) => rules.push(readRule(r, `${path}[${i}]`, undefined, ctx, reading)));
  } else if (isMapping(raw)) {
    for (const [key, r] of Object.entries(raw)) {
      const rp = joinPath(path, key);
      // Strict decimal, so "10" and "010" cannot both name server type 10.
      const type = /^(?:0|[1-9]\d{0,2})$/.test(key) ? Number(key) : 256;
      if (type > 255) issue(ctx, rp, r, `a server type key 0..255 in decimal (got key "${key}")`);
      else rules.push(readRule(r, rp, type, ctx, reading));
    }
  } else return issue(ctx, path, value, SHAPES);

  const firstAt = new Map<string, string>();
  for (const { rule, path: rp } of rules) {
    if (rule === undefined) continue;
    const id = `${rule.server_type}/${rule.world_id}`;
    const prior = firstAt.get(id);
    if (prior !== undefined) {
      issue(ctx, rp, { server_type: rule.server_type, world_id: rule.world_id }, `a (server_type, world_id) pair not already used by ${prior}`);
    } else firstAt.set(id, rp);
  }
  const transportAt = new Map<string, { transport: string; path: string }>();
  for (const { rule, path: rp } of rules) {
    if (rule === undefined) continue;
    const t = rule.transport ?? "";
    for (const e of rule.endpoints) {
      const prior = transportAt.get(e);
      if (prior === undefined) transportAt.set(e, { transport: t, path: rp });
      else if (prior.transport !== t) {
        issue(ctx, joinPath(rp, "transport"), rule.transport ?? "(unset)", `the transport ${prior.path} gives endpoint ${e} ("${prior.transport}"): an endpoint speaks one transport`);
      }
    }
  }
  if (ctx.issues.length > before) return undefined;
  const empty = rules.filter((r) => r.rule!.endpoints.length === 0).map((r) => r.path);
  if (empty.length > 0) {
    // One warning however many: a file of thousands of Consul-filled rules must not flood the log.
    const named = empty.length > EMPTY_RULES_NAMED ? `${empty.slice(0, EMPTY_RULES_NAMED).join(", ")} and ${empty.length - EMPTY_RULES_NAMED} more` : empty.join(", ");
    ctx.warnings.push(
      `${named}: no endpoints (the reference takes them from Consul, as this gateway does with consul.enabled): without Consul their clients are refused with no_route`,
    );
  }
  return rules.map((r) => r.rule!);
}

/** `keyType` is the server type of the Redis-shape key the rule is stored under. */
function readRule(raw: unknown, path: string, keyType: number | undefined, ctx: ReadContext, reading: RuleReading): { rule?: RouteRule; path: string } {
  if (!isMapping(raw)) {
    issue(ctx, path, raw, `a rule mapping with keys ${Object.keys(RULE).join(", ")}`);
    return { path };
  }
  const fields = reading.mode === "go_json" ? withoutUnknownKeys(raw, path, reading.ignored) : raw;
  const given = fields.server_type;
  const rule = readSection(RULE, keyType !== undefined && (given === undefined || given === null) ? { ...fields, server_type: keyType } : fields, path, ctx);
  if (keyType !== undefined && rule.server_type === given && given !== keyType) {
    if (reading.mode === "file") issue(ctx, joinPath(path, "server_type"), given, `${keyType}, the key this rule is stored under`);
    else reading.ignored(`${path}: stored under key "${keyType}" but server_type is ${String(given)} (the rule's server_type is used)`);
  }
  // server_type is undefined only when it was invalid, which has been reported.
  if (rule.server_type === undefined) return { path };
  // An absent hash_key is left out, not "": a rule reads the same with or without the key.
  const { hash_key, transport, ...rest } = rule;
  return { rule: { ...rest, ...(hash_key === "" ? {} : { hash_key }), ...(transport === "" ? {} : { transport }) } as RouteRule, path };
}

/** The rule's keys that a rule has, the others named through `ignored` (Go's encoding/json drops them silently). */
function withoutUnknownKeys(raw: Record<string, unknown>, path: string, ignored: (what: string) => void): Record<string, unknown> {
  const unknown = Object.keys(raw).filter((k) => !Object.hasOwn(RULE, k));
  if (unknown.length === 0) return raw;
  ignored(`${path}: unknown keys ignored: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ""}`);
  const known: Record<string, unknown> = {};
  for (const k of Object.keys(RULE)) if (Object.hasOwn(raw, k)) known[k] = raw[k];
  return known;
}
