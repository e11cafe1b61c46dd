// Reloading a config file on a live gateway: the size cap, and reading, parsing and validating
// off the event loop that carries client traffic.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serverIdFor } from "../../src/client/game-client.ts";
import { loadConfigFile, MAX_CONFIG_FILE_BYTES } from "../../src/config/load.ts";
import { loadConfigFileOffThread } from "../../src/config/load-off-thread.ts";
import { rule, str, text, TestScope } from "../support/harness.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);
const EXAMPLE = join(import.meta.dir, "../../config/gateway.example.yaml");

/** A valid config of about `bytes` bytes: the route for T plus filler rules (one per server type and world) to the same endpoint. */
function configOfSize(endpoint: string, bytes: number): string {
  const lines = ["routing:", "  rules:", `    - { server_type: ${T}, endpoints: ["${endpoint}"] }`];
  let size = lines.join("\n").length + 1;
  for (let i = 0; ; i++) {
    const l = `    - { server_type: ${i % 256}, world_id: ${Math.floor(i / 256) + 1}, endpoints: ["${endpoint}"] }`;
    if (size + l.length + 1 > bytes) break;
    lines.push(l);
    size += l.length + 1;
  }
  return `${lines.join("\n")}\n`;
}

describe("reloading a config file", () => {
  test("a file over the cap is refused unread, naming the cap; the old config and traffic carry on", async () => {
    const be = await scope.backend();
    const gw = scope.gateway({ routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const file = join(mkdtempSync(join(tmpdir(), "gw-cap-")), "gw.yaml");
    // Valid YAML throughout: only its size is wrong.
    const valid = `routing:\n  rules: [{ server_type: 15, endpoints: ["127.0.0.1:${be.port}"] }]\n`;
    writeFileSync(file, valid + "#".repeat(MAX_CONFIG_FILE_BYTES + 1 - valid.length));
    const record = await gw.gateway.reloadFromFile(file);
    expect(record.ok).toBe(false);
    expect(record.error).toBe(`${file}: (file): expected a config file of at most 1MiB (1048576 bytes), got a file of ${MAX_CONFIG_FILE_BYTES + 1} bytes`);
    expect(gw.gateway.configVersion).toBe(1);
    expect(gw.gateway.config.routing.rules.map((r) => r.server_type)).toEqual([T]);
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("still served"));
    expect(str((await c.next()).body)).toBe("still served");
    c.close();

    // One byte less is within the cap and applies.
    writeFileSync(file, valid + "#".repeat(MAX_CONFIG_FILE_BYTES - valid.length));
    expect(await gw.gateway.reloadFromFile(file)).toMatchObject({ ok: true, version: 2 });
  });

  test("clients keep getting replies while the largest allowed file is parsed", async () => {
    const be = await scope.backend();
    const endpoint = `127.0.0.1:${be.port}`;
    const gw = scope.gateway({ routing: { rules: [rule(T, [endpoint])] } });
    const file = join(mkdtempSync(join(tmpdir(), "gw-big-")), "gw.yaml");
    writeFileSync(file, configOfSize(endpoint, MAX_CONFIG_FILE_BYTES));
    const c = await gw.connect();

    let settled = false;
    const reload = gw.gateway.reloadFromFile(file).finally(() => {
      settled = true;
    });
    // Parsing ~9,000 rules takes the loader seconds; on the event loop it froze every client
    // until it was done. Count the round trips that complete while the reload is still running.
    let whileReloading = 0;
    for (let i = 0; !settled; i++) {
      c.send(1, serverIdFor(T), text(`during ${i}`));
      expect(str((await c.next()).body)).toBe(`during ${i}`);
      if (!settled) whileReloading++;
    }
    const record = await reload;
    expect(record.ok).toBe(true);
    expect(gw.gateway.config.routing.rules.length).toBeGreaterThan(8000);
    expect(whileReloading).toBeGreaterThanOrEqual(10);
    c.close();
  }, 60_000);

  test("reloads asked for while one runs are served by one more run, with the file's latest content", async () => {
    const be = await scope.backend();
    const endpoint = `127.0.0.1:${be.port}`;
    const gw = scope.gateway({ routing: { rules: [rule(T, [endpoint])] } });
    const file = join(mkdtempSync(join(tmpdir(), "gw-burst-")), "gw.yaml");
    writeFileSync(file, `routing:\n  rules: [{ server_type: 11, endpoints: ["${endpoint}"] }]\n`);
    const first = gw.gateway.reloadFromFile(file);
    const burst = Array.from({ length: 10 }, () => gw.gateway.reloadFromFile(file));
    writeFileSync(file, `routing:\n  rules: [{ server_type: 12, endpoints: ["${endpoint}"] }]\n`);
    const records = await Promise.all([first, ...burst]);
    expect(records.every((r) => r.ok)).toBe(true);
    // Eleven asks, two loads: the one running and one for everything asked meanwhile.
    expect(gw.gateway.configVersion).toBe(3);
    expect(new Set(burst.map((p) => p))).toHaveProperty("size", 1);
    expect(gw.gateway.config.routing.rules.map((r) => r.server_type)).toEqual([12]);
  });

  test("off the event loop, the loader returns the same deeply frozen config, and the same errors", async () => {
    const here = await loadConfigFile(EXAMPLE);
    const there = await loadConfigFileOffThread(EXAMPLE);
    expect(there).toEqual(here);
    expect(Object.isFrozen(there.config.routing.rules[0]!.endpoints)).toBe(true);
    expect(Object.isFrozen(there.config.server)).toBe(true);

    const bad = join(mkdtempSync(join(tmpdir(), "gw-bad-")), "gw.yaml");
    writeFileSync(bad, "server:\n  listen_adr: 1\n");
    const [a, b] = await Promise.all([loadConfigFile(bad).catch((e: Error) => e), loadConfigFileOffThread(bad).catch((e: Error) => e)]);
    expect(b).toBeInstanceOf(a.constructor as new () => Error);
    expect((b as Error).message).toBe((a as Error).message);
    expect((b as Error).message).toContain('did you mean "listen_addr"?');
  });
});
