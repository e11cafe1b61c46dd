// The one startup warning about keys this version accepts (so the reference's files load) but does
// not act on. The schema marks such keys (Field.notActedOn); reading records each one set in the
// file; this names them once, a whole section as "redis.*", grouped by why.

import { Field, type NotActedOn, type Section } from "./schema.ts";

export const NOT_ACTED_ON_PREFIX = "config keys accepted but not used by this version:";

/** "routing.rules[3].hash_key" and "routing.rules.10.hash_key" (the Redis shape) -> "routing.rules[].hash_key". */
function generic(path: string): string {
  return path.replace(/\[\d+\]/g, "[]").replace(/\.\d+(?=\.|$)/g, "[]");
}

/** The section at `path` in the schema, when there is one. */
function sectionAt(schema: Section, path: string): Section | undefined {
  let node: Field<unknown> | Section | undefined = schema;
  for (const k of path.split(".")) {
    if (node === undefined || node instanceof Field || !Object.hasOwn(node, k)) return undefined;
    node = node[k];
  }
  return node instanceof Field ? undefined : node;
}

/** Whether every key of the section is not acted on, for this one reason. */
function wholeSection(section: Section, reason: string): boolean {
  return Object.values(section).every((v) => (v instanceof Field ? v.traits.notActedOn === reason : wholeSection(v, reason)));
}

/** The keys to name ("redis.*", "server.metrics_port", "routing.rules[].hash_key"), each once, in file-read order. */
export function notActedOnKeys(schema: Section, found: readonly NotActedOn[]): { key: string; reason: string }[] {
  const out = new Map<string, string>();
  for (const { path, reason } of found) {
    let key = generic(path);
    // Walk up while the enclosing section is wholly unused for the same reason: "redis.*".
    for (let parent = key.slice(0, key.lastIndexOf(".")); parent !== "" && !parent.includes("["); parent = parent.slice(0, Math.max(0, parent.lastIndexOf(".")))) {
      const section = sectionAt(schema, parent);
      if (section === undefined || !wholeSection(section, reason)) break;
      key = `${parent}.*`;
    }
    if (!out.has(key)) out.set(key, reason);
  }
  return [...out].map(([key, reason]) => ({ key, reason }));
}

/** One line: "config keys accepted but not used by this version: redis.*, routing.refresh_interval (why); grpc.* (why)". */
export function notActedOnWarning(keys: readonly { key: string; reason: string }[]): string | undefined {
  if (keys.length === 0) return undefined;
  const byReason = new Map<string, string[]>();
  for (const { key, reason } of keys) byReason.set(reason, [...(byReason.get(reason) ?? []), key]);
  const groups = [...byReason].map(([reason, ks]) => `${ks.join(", ")} (${reason})`);
  return `${NOT_ACTED_ON_PREFIX} ${groups.join("; ")}`;
}
