// `game-gateway --check-config FILE` as an operator runs it: a real process, real files.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MAIN = join(import.meta.dir, "../../src/cli/main.ts");
const EXAMPLE = join(import.meta.dir, "../../config/gateway.example.yaml");
const dir = mkdtempSync(join(tmpdir(), "gw-check-"));

function check(text: string | null, name = "gateway.yaml"): { code: number | null; out: string; err: string; file: string } {
  const file = join(dir, name);
  if (text !== null) writeFileSync(file, text);
  const p = Bun.spawnSync([process.execPath, MAIN, "--check-config", file], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString(), file };
}

const ROUTE = "routing:\n  rules:\n    - { server_type: 10, endpoints: [\"127.0.0.1:9000\"] }\n";

describe("--check-config", () => {
  test("the shipped example is valid", () => {
    const p = Bun.spawnSync([process.execPath, MAIN, "--check-config", EXAMPLE], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString()).toMatch(/gateway\.example\.yaml: valid \(\d+ routing rules?\)/);
  });

  test("every error starts with file:line:column and reads as a sentence", () => {
    const r = check(["connection_pool:", "  max_connections: lots", "  dial_timeout: 5s", ROUTE].join("\n"));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${r.file}:2:20 connection_pool.max_connections: expected an integer >= 1, got "lots"\n`);
    expect(r.err).toContain(`${r.file}: invalid (1 problem)`);
  });

  // A timer cannot hold more than 2^31-1 ms: 1000h was accepted, then fired after 1 ms.
  test("a duration longer than a timer holds is refused, naming the bound", () => {
    const r = check(["connection_pool:", "  dial_timeout: 1000h", "admin:", "  idle_timeout: 99999999h", ROUTE].join("\n"));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${r.file}:2:17 connection_pool.dial_timeout: expected a duration of at most 596h31m23.647s (what a timer can hold), got "1000h"\n`);
    expect(r.err).toContain(`${r.file}:4:17 admin.idle_timeout: expected a duration of at most 596h31m23.647s (what a timer can hold), got "99999999h"\n`);
    expect(r.err).not.toContain("TimeoutOverflowWarning");
  });

  test("a misspelt key gets a suggestion, at the key's own position", () => {
    const r = check(["server:", '  listen_adr: ":8080"', ROUTE].join("\n"));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${r.file}:2:3 server.listen_adr: expected one of the keys under server:`);
    expect(r.err).toContain('got an unknown key; did you mean "listen_addr"?');
  });

  test("an empty file is not valid", () => {
    for (const text of ["", "\n  \n"]) {
      const r = check(text);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${r.file}: (file): expected a YAML mapping of config sections, with at least routing.rules, got an empty file`);
    }
  });

  test("a config with no routes is not valid: no client could be served", () => {
    const none = check("# comment\nserver:\n  listen_addr: \":8080\"\n");
    expect(none.code).toBe(1);
    expect(none.err).toContain("routing.rules: expected at least one rule with endpoints, or redis.addr / consul.enabled to take them from there (with none, every client would be refused with no_route;");
    expect(none.err).toContain("got no rules");
    // The reference's rules may leave endpoints to Consul; with only such rules nothing can be served.
    const consulOnly = check('routing:\n  rules: \'{"10": {"service_name": "account"}}\'\n');
    expect(consulOnly.code).toBe(1);
    expect(consulOnly.err).toContain("got only rules with no endpoints");
    const empty = check("routing:\n  rules: []\n");
    expect(empty.code).toBe(1);
    expect(empty.err).toContain(`${empty.file}:2:10 routing.rules: expected at least one rule`);
  });

  test("a YAML syntax error points at the line of the mistake, not the line after it", () => {
    const bracket = check(['server:', '  listen_addr: [":8080"', ROUTE].join("\n").replace(ROUTE, ""));
    expect(bracket.code).toBe(1);
    expect(bracket.err).toMatch(new RegExp(`${bracket.file}:2:\\d+ \\(yaml\\): expected a YAML mapping of config sections, got invalid YAML \\(`));
    const quote = check('server:\n  gateway_name: "gw-1\n');
    expect(quote.code).toBe(1);
    expect(quote.err).toMatch(new RegExp(`${quote.file}:2:\\d+ \\(yaml\\):`));
    expect(quote.err).not.toContain("at line");
  });

  test("every problem is listed, each with its own position", () => {
    const r = check(["server:", "  use_grpc: yes!", "redis:", "  db: -1", "routing:", "  rules:", "    - { server_type: 10, endpoints: [\"a:1\"], strategy: rand }"].join("\n"));
    expect(r.code).toBe(1);
    const lines = r.err.trim().split("\n");
    expect(lines.map((l) => l.slice(0, r.file.length + 6))).toEqual([
      `${r.file}:2:13 `,
      `${r.file}:4:7 r`,
      `${r.file}:7:56 `,
      `game-gateway: ${r.file}`.slice(0, r.file.length + 6),
    ]);
    expect(lines.at(-1)).toBe(`game-gateway: ${r.file}: invalid (3 problems)`);
  });
});
