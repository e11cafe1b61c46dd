// Secrets in a config file that a reload refuses: the error names the key, never the value, in
// the reload record, the log, /api/status and /debug/stats.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import { TestScope } from "../support/harness.ts";

const scope = new TestScope();
afterEach(scope.release);

const PASSWORD = "31415926535";
const TOKEN = "987654321012";

describe("secret values never leave the config loader", () => {
  test("a refused reload with secrets of the wrong type, a secret under an unknown key and a whole mis-shaped section", async () => {
    const gw = scope.gateway({ admin: { listen_addr: "127.0.0.1:0", debug_token: "debug-s3cret" } });
    const file = join(mkdtempSync(join(tmpdir(), "gw-secrets-")), "gw.yaml");
    writeFileSync(
      file,
      [
        "redis:",
        `  password: [${PASSWORD}]`, // a list where a string is expected: refused, so shown in the error
        "  sentinel:", // a section where the schema has none; its secret must not be quoted either
        `    sentinel_password: ${PASSWORD}`,
        "admin:",
        `  debug_token: { t: ${TOKEN} }`,
        "server: [ { auth_token: " + TOKEN + " } ]", // a whole section shown as the bad value
      ].join("\n"),
    );
    const record = await gw.gateway.reloadFromFile(file);
    expect(record.ok).toBe(false);
    expect(record.error).toContain("redis.password: expected a string, got <redacted>");
    expect(record.error).toContain("admin.debug_token: expected a string, got <redacted>");
    expect(record.error).toContain('server: expected a mapping with keys listen_addr');
    expect(record.error).toContain('got [{"auth_token":"<redacted>"}]');

    const api = await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/api/status`)).text();
    const debug = await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/debug/stats`, { headers: { authorization: "Bearer debug-s3cret" } })).text();
    const logged = JSON.stringify(gw.log.lines);
    expect(api).toContain("redis.password");
    expect(logged).toContain("redis.password");
    for (const shown of [record.error!, api, debug, logged]) {
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(TOKEN);
    }
  });

  // Go's yaml.v3 reads an unquoted number into a string field as written; so does this loader.
  test("unquoted numeric secrets load as written and stay hidden", async () => {
    const gw = scope.gateway({ admin: { listen_addr: "127.0.0.1:0", debug_token: "debug-s3cret" } });
    const file = join(mkdtempSync(join(tmpdir(), "gw-secrets-")), "gw.yaml");
    writeFileSync(
      file,
      [
        "redis:",
        `  password: 0${PASSWORD}`, // the leading zero is part of the secret
        "admin:",
        '  listen_addr: "127.0.0.1:0"',
        `  debug_token: ${TOKEN}`,
        "routing:",
        '  rules: [ { server_type: 10, endpoints: ["127.0.0.1:1"] } ]',
      ].join("\n"),
    );
    // redis.* needs a restart to take effect, so the value as read is checked at the loader.
    expect(parseConfig(await Bun.file(file).text()).config.redis.password).toBe(`0${PASSWORD}`);
    const record = await gw.gateway.reloadFromFile(file);
    expect(record).toMatchObject({ ok: true });
    const debug = await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/debug/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(debug.status).toBe(200);
    const api = await (await fetch(`http://127.0.0.1:${gw.gateway.adminPort}/api/status`)).text();
    for (const shown of [JSON.stringify(record), api, await debug.text(), JSON.stringify(gw.log.lines)]) {
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(TOKEN);
    }
  });
});
