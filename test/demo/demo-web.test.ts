// The browser example's files as the demo serves them: the committed bundle is what
// `bun build` makes of game.ts today, and the page's slots are all filled.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBrowserExample } from "../../scripts/build-browser-example.ts";
import { DemoWeb, demoPageHtml } from "../../src/demo/demo-web.ts";

const root = join(import.meta.dir, "../..");

describe("demo web page", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-demo-web-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("examples/browser/dist/game.js is up to date with game.ts (else: bun scripts/build-browser-example.ts)", async () => {
    const fresh = readFileSync(await buildBrowserExample(dir), "utf8");
    expect(readFileSync(join(root, "examples/browser/dist/game.js"), "utf8")).toBe(fresh);
  });

  test("the page names the WebSocket port, path and ServerID; no slot is left", () => {
    const html = demoPageHtml({ wsPort: 4321, wsPath: "/play", serverId: 51200 });
    expect(html).toContain('<meta name="game-ws-port" content="4321">');
    expect(html).toContain('<meta name="game-ws-path" content="/play">');
    expect(html).toContain('<meta name="game-server-id" content="51200">');
    expect(html).not.toContain("{{");
  });

  test("serves / and /game.js on an ephemeral loopback port; the script is the committed bundle", async () => {
    const web = DemoWeb.start({ wsPort: 1, wsPath: "/ws", serverId: 51200 });
    try {
      expect(web.url).toBe(`http://127.0.0.1:${web.port}/`);
      const script = await fetch(`${web.url}game.js`);
      expect(script.headers.get("x-content-type-options")).toBe("nosniff");
      expect(await script.text()).toBe(readFileSync(join(root, "examples/browser/dist/game.js"), "utf8"));
      expect((await fetch(`${web.url}nothing`)).status).toBe(404);
    } finally {
      await web.stop();
    }
  });
});
