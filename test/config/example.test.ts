import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { GATEWAY_SCHEMA } from "../../src/config/gateway-schema.ts";
import { defaultConfig, loadConfigFile, parseConfig } from "../../src/config/load.ts";
import { Field, isMapping, type Section } from "../../src/config/schema.ts";
import type { GatewayConfig } from "../../src/config/types.ts";
import { parseArgs } from "../../src/cli/args.ts";

const EXAMPLE = new URL("../../config/gateway.example.yaml", import.meta.url);
const ENV = { POD_NAME: "gw-0" };

/** Every key path of the schema, e.g. "server.listen_addr". */
function keyPaths(section: Section, prefix = ""): string[] {
  return Object.entries(section).flatMap(([k, v]) => (v instanceof Field ? [`${prefix}${k}`] : keyPaths(v, `${prefix}${k}.`)));
}

function fieldAt(path: string): Field<unknown> {
  let node: Field<unknown> | Section = GATEWAY_SCHEMA;
  for (const k of path.split(".")) node = (node as Section)[k]!;
  return node as Field<unknown>;
}

function has(doc: unknown, path: string): boolean {
  let node = doc;
  for (const k of path.split(".")) {
    if (!isMapping(node) || !Object.hasOwn(node, k)) return false;
    node = node[k];
  }
  return true;
}

describe("config/gateway.example.yaml", () => {
  test("parses, and apart from its example rules equals the defaults", async () => {
    const { config, warnings, notActedOn } = await loadConfigFile(EXAMPLE.pathname, ENV);
    // It sets every key, so its one warning names every key this version accepts but does not act on.
    const unusedInSchema = keyPaths(GATEWAY_SCHEMA).filter((p) => fieldAt(p).traits.notActedOn !== undefined);
    expect(unusedInSchema.filter((p) => !notActedOn.some((k) => k === p || (k.endsWith(".*") && p.startsWith(k.slice(0, -1)))))).toEqual([]);
    expect(notActedOn).toContain("server.metrics_port");
    // Redis and Consul are acted on; only Redis' connection tuning is not.
    expect(notActedOn.filter((k) => k.startsWith("redis.") || k.startsWith("consul."))).toEqual(["redis.pool_size", "redis.min_idle_conns", "redis.write_timeout"]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toStartWith("config keys accepted but not used by this version: ");
    const withoutRules: GatewayConfig = { ...config, routing: { ...config.routing, rules: [] } };
    expect(withoutRules).toEqual(defaultConfig(ENV));
  });

  test("its rules show an exact world and a wildcard for one server type, all on the demo backend's default address", async () => {
    const { config } = await loadConfigFile(EXAMPLE.pathname, ENV);
    expect(config.routing.rules.map((r) => [r.server_type, r.world_id])).toEqual([
      [10, 3],
      [10, 0],
      [15, 0],
      [200, 0],
    ]);
    const demo = parseArgs(["demo-backend"]);
    if (demo.kind !== "demo-backend") throw new Error("demo-backend did not parse");
    expect(new Set(config.routing.rules.flatMap((r) => r.endpoints))).toEqual(new Set([`${demo.host}:${demo.port}`]));
  });

  test("documents every key", async () => {
    const text = await Bun.file(EXAMPLE).text();
    const doc: unknown = parse(text);
    // log.level is commented out on purpose: set in the file, it would override env LOG_LEVEL.
    const missing = keyPaths(GATEWAY_SCHEMA).filter((p) => !has(doc, p) && p !== "log.level");
    expect(missing).toEqual([]);
    expect(text).toContain("# level: info");
  });

  test("has no key the schema does not know", async () => {
    const doc: unknown = parse(await Bun.file(EXAMPLE).text());
    const known = new Set(keyPaths(GATEWAY_SCHEMA));
    // Every leaf of the example, down to a schema field (routing.rules is one field: its items are rules).
    const leaves = (node: unknown, prefix: string): string[] =>
      isMapping(node) && !known.has(prefix.slice(0, -1))
        ? Object.entries(node).flatMap(([k, v]) => leaves(v, `${prefix}${k}.`))
        : [prefix.slice(0, -1)];
    const unknown = leaves(doc, "").filter((p) => !known.has(p));
    expect(unknown).toEqual([]);
  });

  test("its commented-out Redis JSON example is valid too", async () => {
    const text = await Bun.file(EXAMPLE).text();
    const line = text.split("\n").find((l) => l.trimStart().startsWith("# rules: '{"));
    expect(line).toBeDefined();
    const rules = parseConfig(`routing:\n  ${line!.trimStart().slice(2)}\n`, ENV).config.routing.rules;
    expect(rules).toEqual([{ server_type: 10, world_id: 0, service_name: "account", strategy: "round_robin", endpoints: ["account:19711"] }]);
  });
});
