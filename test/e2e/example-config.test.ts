// config/gateway.example.yaml as the README says to run it: beside `game-gateway demo-backend`,
// both real processes. Only the ports are moved (ephemeral instead of 8080/9000/9090) so that
// parallel test runs do not collide; everything else is the shipped file.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { str, text } from "../support/harness.ts";

const ROOT = join(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/cli/main.ts");
const procs: Subprocess[] = [];
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
});

/** Starts `bun main.ts ...args` and returns the first stdout match of `pattern`. */
async function start(args: string[], pattern: RegExp): Promise<RegExpMatchArray> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  procs.push(proc);
  const reader = proc.stdout.getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args.join(" ")} exited:\n${seen}\n${await new Response(proc.stderr).text()}`);
    seen += new TextDecoder().decode(value);
    const m = seen.match(pattern);
    if (m) {
      reader.releaseLock();
      return m;
    }
  }
}

/** Replaces every occurrence of `from` (at least one) in `s`. */
function moved(s: string, from: string, to: string): string {
  expect(s).toContain(from);
  return s.split(from).join(to);
}

describe("config/gateway.example.yaml with the demo backend", () => {
  test("serves every server type it routes, out of the box", async () => {
    const [, demoPort] = await start(["demo-backend", "--port", "0"], /demo backend listening on 127\.0\.0\.1:(\d+)/);
    let yaml = readFileSync(join(ROOT, "config/gateway.example.yaml"), "utf8");
    yaml = moved(yaml, '"127.0.0.1:9000"', `"127.0.0.1:${demoPort}"`);
    yaml = moved(yaml, 'listen_addr: ":8080"', 'listen_addr: "127.0.0.1:0"');
    yaml = moved(yaml, "health_check_port: 9090", "health_check_port: -1");
    const file = join(mkdtempSync(join(tmpdir(), "gw-example-")), "gateway.yaml");
    writeFileSync(file, yaml);
    const [, port] = await start(["--config", file], /"listen":"127\.0\.0\.1:(\d+)"/);

    // World 3 of type 10 has its own rule; world 7 takes the wildcard; 15 and 200 have one each.
    for (const [type, world] of [[10, 3], [10, 7], [15, 1], [200, 2]] as const) {
      const c = await GameClient.connect("127.0.0.1", Number(port));
      c.send(1, serverIdFor(type, world), text(`type ${type} world ${world}`));
      expect(str((await c.next()).body)).toBe(`type ${type} world ${world}`);
      c.close();
    }
  });
});
