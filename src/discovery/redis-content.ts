// The reference's Redis values, read as a unit: {key_prefix}routing:rules (one JSON string, an
// object keyed by server type) and {key_prefix}realm:mapping (a hash, realm ID -> "host:port").
// Anything wrong refuses the whole value, so a half-written or hostile value never half-applies.

import type { RouteRule } from "../config/types.ts";
import { parseRouteRules } from "../config/load.ts";
import { isDialableEndpoint } from "../config/host-port.ts";
import type { RealmMap } from "../routing/router.ts";

/** Bounds on what one refresh may hold: beyond them the value is refused, the old one kept. */
export const MAX_RULES_JSON_BYTES = 4 * 1024 * 1024;
export const MAX_REDIS_RULES = 10_000;
/** Realm IDs are world IDs (0..32767), so no valid map is larger. */
export const MAX_REALM_ID = 32_767;
/**
 * Fields of the realm hash read at most (HLEN first): twice the realm IDs, room for the
 * non-numeric fields the reference skips. A larger hash is refused unread, the old map kept:
 * reading it (HGETALL) would stall the event loop every realm_refresh_interval.
 */
export const MAX_REALM_FIELDS = 65_536;
/** A refusal's text is cut here: it goes to /ready, a log line and the status page. */
const ERROR_CHARS = 600;

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** What a rules load read: the rules, and what of the value was ignored as Go's encoding/json ignores it. */
export interface RedisRules {
  readonly rules: readonly RouteRule[];
  /** Unknown keys, and rules stored under another key than their server_type (said in a warning). */
  readonly ignored: readonly string[];
}

/** Ignored parts named in one warning; the rest are counted. */
const IGNORED_NAMED = 5;

/**
 * The value of the rules key (a missing key is not read here: it is not "no rules", see
 * RedisRouteSource.loadRules). Read as the reference reads it: unknown keys ignored, and a rule's
 * own server_type used when it differs from the key it is stored under.
 */
export function parseRedisRules(json: string, key: string): Parsed<RedisRules> {
  if (json.length > MAX_RULES_JSON_BYTES) return { ok: false, error: `${key}: ${json.length} characters, more than the ${MAX_RULES_JSON_BYTES} allowed` };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    return { ok: false, error: `${key}: not JSON (${(e as Error).message})` };
  }
  // Counted before each rule is read: 100k rules are refused without validating any of them.
  const count = Array.isArray(raw) ? raw.length : raw !== null && typeof raw === "object" ? Object.keys(raw).length : 0;
  if (count > MAX_REDIS_RULES) return { ok: false, error: `${key}: ${count} rules, more than the ${MAX_REDIS_RULES} allowed` };
  const ignored: string[] = [];
  let ignoredMore = 0;
  const note = (what: string): void => {
    if (ignored.length < IGNORED_NAMED) ignored.push(what);
    else ignoredMore++;
  };
  try {
    const rules = parseRouteRules(raw, key, note);
    if (ignoredMore > 0) ignored.push(`and ${ignoredMore} more`);
    return { ok: true, value: { rules, ignored } };
  } catch (e) {
    const text = (e as Error).message;
    return { ok: false, error: text.length > ERROR_CHARS ? `${text.slice(0, ERROR_CHARS)}...` : text };
  }
}

/** Non-numeric fields are skipped, as the reference does; a bad address refuses the map. */
export function parseRealmMap(hash: Readonly<Record<string, string>>, key: string): Parsed<RealmMap> {
  const map = new Map<number, string>();
  for (const [field, addr] of Object.entries(hash)) {
    if (!/^\d+$/.test(field)) continue;
    const realm = Number(field);
    if (realm < 1 || realm > MAX_REALM_ID) return { ok: false, error: `${key}.${field}: expected a realm ID 1..${MAX_REALM_ID}` };
    if (!isDialableEndpoint(addr)) return { ok: false, error: `${key}.${field}: expected "host:port" with a host and a port 1..65535, got ${JSON.stringify(addr.slice(0, 100))}` };
    map.set(realm, addr);
  }
  return { ok: true, value: map };
}
