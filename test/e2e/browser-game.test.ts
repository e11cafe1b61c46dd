// The browser example (examples/browser/) as a new user meets it: the gateway started in demo
// mode prints the page's URL; two headless Chromium pages open it, choose names, see each other
// online, and a line sent from one arrives in the other through gateway and demo backend.
// A screenshot of the receiving page is saved under a temp directory (its path is printed).
//
// Chromium is Debian's /usr/bin/chromium (CHROMIUM_PATH overrides), driven by playwright-core.
// Without it the test fails when CI is set and is skipped otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ChildOutput, eventually } from "../support/harness.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"];
const inCI = (process.env.CI ?? "") !== "" && !["0", "false"].includes(process.env.CI!.toLowerCase());
const haveChromium = existsSync(CHROMIUM);
const browserTest = haveChromium || inCI ? test : test.skip;
const main = join(import.meta.dir, "../../src/cli/main.ts");

describe("the browser game served by the demo", () => {
  const dir = mkdtempSync(join(tmpdir(), "gw-browser-game-"));
  let child: ChildOutput;
  let pageUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    const cfg = join(dir, "gateway.yaml");
    writeFileSync(cfg, ["server:", '  listen_addr: "127.0.0.1:0"', "  health_check_port: -1", ""].join("\n"));
    const proc = Bun.spawn(["bun", main, "--config", cfg, "--demo"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    child = new ChildOutput(proc);
    [, pageUrl] = (await child.line(/Play the chat room in a browser: (http:\/\/\S+)/)) as [string, string];
    if (haveChromium || inCI) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    child.proc.kill("SIGTERM");
    await child.proc.exited;
  });

  async function enter(name: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(pageUrl);
    await page.getByTestId("name").fill(name);
    await page.getByTestId("join").click();
    await page.waitForSelector("body[data-state=open]", { timeout: 10_000 });
    return page;
  }

  const online = (page: Page) => page.locator("[data-testid=player]").allTextContents();
  /** Waits until the page's online list reads `names` (presence arrives asynchronously). */
  async function onlineIs(page: Page, names: string[]): Promise<void> {
    const want = JSON.stringify(names);
    await eventually(async () => JSON.stringify(await online(page)) === want || null, `online list ${want}`);
  }

  browserTest("two players: both online, a line from one arrives in the other; screenshot saved", async () => {
    const alice = await enter("alice");
    const bob = await enter("bob");
    await onlineIs(alice, ["alice", "bob"]);
    await onlineIs(bob, ["alice", "bob"]);

    await alice.getByTestId("message").fill("hello from alice");
    await alice.getByTestId("send").click();
    const line = bob.locator("[data-testid=line][data-from=alice]");
    await line.waitFor({ timeout: 10_000 });
    expect(await line.textContent()).toBe("alice: hello from alice");

    const shots = mkdtempSync(join(tmpdir(), "gw-browser-game-shots-"));
    const shot = join(shots, "chat-room.png");
    await bob.screenshot({ path: shot, fullPage: true });
    console.log(`browser game screenshot: ${shot}`);
    expect(existsSync(shot)).toBe(true);

    // Alice leaves: bob sees her gone (the gateway's Disconnect reaches the backend's room).
    await alice.close();
    await onlineIs(bob, ["bob"]);
    await bob.close();
  });

  test("the page and its script are served without a token; anything else is 404", async () => {
    const page = await fetch(pageUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain('<script src="game.js"></script>');
    expect(html).not.toContain("{{");
    const script = await fetch(new URL("game.js", pageUrl));
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await fetch(new URL("metrics", pageUrl))).status).toBe(404);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});
