// The live status page (`/` of the admin server) in a real headless Chromium, against a real
// gateway carrying real client traffic: the numbers it shows must be the ones /metrics exports.
//
// Chromium is Debian's /usr/bin/chromium (CHROMIUM_PATH overrides), driven by playwright-core.
// Without it the test fails when CI is set and is skipped otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { eventually, rule, startGateway, str, text, type TestGateway } from "../support/harness.ts";
import { parseExposition, sumOf } from "../support/prom-text.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = "/tmp/status-page.png";
const SCREENSHOT_DARK = "/tmp/status-page-dark.png";
const T = 10;

/** The few DOM members the in-page reader uses (the project's lib has no DOM types). */
interface PageNode {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): Iterable<PageNode> & { readonly length: number };
}

const inCI = (process.env.CI ?? "") !== "" && !["0", "false"].includes(process.env.CI!.toLowerCase());
const haveChromium = existsSync(CHROMIUM);
// In CI a missing browser is a failure (the test runs and says why); locally it is a skip.
const browserTest = haveChromium || inCI ? test : test.skip;

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) {
    try {
      await f();
    } catch {
      // keep cleaning up
    }
  }
});

async function launch(): Promise<Browser> {
  if (!haveChromium) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the status page test needs a headless browser. ` +
        "Install Debian's package (apt-get install -y --no-install-recommends chromium; .ci/run does) or set CHROMIUM_PATH.",
    );
  }
  // launch() gives every browser a fresh temporary profile of its own and deletes it on close.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  cleanup.push(() => browser.close());
  return browser;
}

/** The raw number a page element carries in data-value (NaN when absent). */
async function numberAt(page: Page, testId: string): Promise<number> {
  return Number((await page.getByTestId(testId).getAttribute("data-value")) ?? Number.NaN);
}

async function polls(page: Page): Promise<number> {
  return Number(await page.locator("body").getAttribute("data-polls"));
}

/** Waits until the page has completed `n` more successful polls than now. */
async function morePolls(page: Page, n: number): Promise<void> {
  const start = await polls(page);
  await eventually(async () => (await polls(page)) >= start + n, `${n} more status polls`, 10_000);
}

async function roundTrips(c: GameClient, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) c.send(i, serverIdFor(T), text(`${tag}-${i}`));
  const replies = await c.frames(n, 10_000);
  expect(replies.map((f) => str(f.body))).toEqual(Array.from({ length: n }, (_, i) => `${tag}-${i}`));
}

describe("status page", () => {
  browserTest(
    "shows live connections, sessions, message totals, config version and backends that match /metrics",
    async () => {
      const browser = await launch();

      const a = await DemoBackend.start({ port: 0 });
      cleanup.push(() => a.stop());
      const b = await DemoBackend.start({ port: 0 });
      cleanup.push(() => b.stop());
      const endpointA = `127.0.0.1:${a.port}`;
      const endpointB = `127.0.0.1:${b.port}`;
      const endpoints = [endpointA, endpointB];
      const gw: TestGateway = startGateway({
        // The idle client must outlive the test however slow the machine is.
        server: { first_message_timeout: "5m" },
        admin: { listen_addr: "127.0.0.1:0" },
        routing: { rules: [rule(T, endpoints)] },
      });
      cleanup.push(() => gw.stop());
      const base = `http://127.0.0.1:${gw.gateway.adminPort}`;

      // Five clients with sessions (round robin: 3 on one endpoint, 2 on the other) and one that
      // has connected but not sent its first frame (a connection without a session).
      const clients: GameClient[] = [];
      for (let i = 0; i < 5; i++) {
        const c = await gw.connect();
        cleanup.push(() => c.close());
        clients.push(c);
        await roundTrips(c, 3, `warm${i}`);
      }
      const idle = await gw.connect();
      cleanup.push(() => idle.close());

      // Config history: one applied reload (version 2), one applied with a key that needs a restart
      // (version 3), one refused whose error quotes hostile text.
      expect(gw.gateway.reload(gw.gateway.config)).toMatchObject({ ok: true, version: 2 });
      const dedicated = { ...gw.gateway.config, backend: { ...gw.gateway.config.backend, mode: "dedicated" as const } };
      expect(gw.gateway.reload(dedicated)).toMatchObject({ ok: true, version: 3, needsRestart: ["backend"] });
      const dir = mkdtempSync(join(tmpdir(), "gw-status-page-"));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const bad = join(dir, "bad.yaml");
      const hostile = "<img src=x onerror=window.__pwned=1>";
      // It also holds secrets of the wrong type: the page must name the key and never show the value.
      writeFileSync(bad, `log:\n  level: "${hostile}"\nredis:\n  password: [31415926535]\nadmin:\n  debug_token: { t: 987654321012 }\n`);
      expect(await gw.gateway.reloadFromFile(bad)).toMatchObject({ ok: false, version: 3 });

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") pageErrors.push(m.text());
      });
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      const response = await page.goto(`${base}/`);
      expect(response?.status()).toBe(200);
      expect(response?.headers()["content-type"]).toContain("text/html");

      // The page fills in from /api/status.
      await page.locator('body[data-state="ok"]').waitFor({ timeout: 10_000 });
      await eventually(async () => (await numberAt(page, "sessions")) === 5, "the page to show 5 sessions");

      // Live traffic: messages/s goes above zero while clients send.
      let sending = true;
      const traffic = (async () => {
        let round = 0;
        while (sending) await Promise.all(clients.map((c, i) => roundTrips(c, 20, `live${i}-${round++}`)));
      })();
      try {
        await eventually(async () => (await numberAt(page, "messages-in-rate")) > 0, "a non-zero messages-in rate", 15_000);
        await eventually(async () => (await numberAt(page, "messages-out-rate")) > 0, "a non-zero messages-out rate", 15_000);
      } finally {
        sending = false;
        await traffic; // every round trip completed: nothing left in flight
      }

      // Traffic stopped: the numbers settle, the rate falls to 0 after two quiet polls.
      await morePolls(page, 2);
      await eventually(async () => (await numberAt(page, "messages-in-rate")) === 0, "the messages-in rate to fall to 0");
      await morePolls(page, 1);

      // Read the page and /metrics at the same moment.
      const [shown, metricsText] = await Promise.all([
        page.evaluate(() => {
          const document = (globalThis as unknown as { document: PageNode }).document;
          const value = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute("data-value") ?? null;
          const textOf = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? null;
          return {
            connections: value("connections"),
            connectionsText: textOf("connections"),
            sessions: value("sessions"),
            pending: value("pending"),
            messagesIn: value("messages-in-total"),
            messagesInText: textOf("messages-in-total"),
            messagesOut: value("messages-out-total"),
            configVersion: value("config-version"),
            configVersionText: textOf("config-version"),
            ready: textOf("ready"),
            latencyUpCount: value("latency-upstream-count"),
            latencyUpP50: value("latency-upstream-p50"),
            backends: [...document.querySelectorAll('[data-testid="backend-row"]')].map((row) => ({
              endpoint: row.getAttribute("data-endpoint"),
              endpointText: row.querySelector('[data-testid="backend-endpoint"]')?.textContent,
              sessions: row.querySelector('[data-testid="backend-sessions"]')?.getAttribute("data-value"),
              connections: row.querySelector('[data-testid="backend-connections"]')?.getAttribute("data-value"),
              breaker: row.querySelector('[data-testid="backend-breaker"]')?.textContent,
            })),
            routes: [...document.querySelectorAll('[data-testid="route-row"]')].map((row) => ({
              name: row.querySelector('[data-testid="route-name"]')?.textContent,
              reachable: row.querySelector('[data-testid="route-reachable"]')?.getAttribute("data-value"),
              text: row.querySelector('[data-testid="route-reachable"]')?.textContent,
            })),
            reloads: [...document.querySelectorAll('[data-testid="reload-row"]')].map((row) => ({
              ok: row.querySelector('[data-testid="reload-ok"]')?.getAttribute("data-value"),
              version: row.querySelector('[data-testid="reload-version"]')?.getAttribute("data-value"),
              detail: row.querySelector('[data-testid="reload-detail"]')?.textContent,
            })),
            injectedImages: document.querySelectorAll("img").length,
            pwned: (globalThis as { __pwned?: unknown }).__pwned ?? null,
          };
        }),
        fetch(`${base}/metrics`).then((r) => r.text()),
      ]);
      const metrics = parseExposition(metricsText);

      const connections = sumOf(metrics, "game_gateway_connections_active");
      const sessions = sumOf(metrics, "game_gateway_sessions_active");
      const messagesIn = sumOf(metrics, "game_gateway_messages_processed_total", { direction: "client_to_backend" });
      const messagesOut = sumOf(metrics, "game_gateway_messages_processed_total", { direction: "backend_to_client" });
      const configVersion = sumOf(metrics, "game_gateway_config_version");

      // The scenario itself, so a comparison of zeros cannot pass by accident.
      expect(connections).toBe(6);
      expect(sessions).toBe(5);
      expect(messagesIn).toBeGreaterThan(15);
      expect(messagesOut).toBe(messagesIn); // the demo backend echoes every message
      expect(configVersion).toBe(3);

      expect(Number(shown.connections)).toBe(connections);
      expect(shown.connectionsText).toBe(String(connections));
      expect(Number(shown.sessions)).toBe(sessions);
      expect(Number(shown.pending)).toBe(1);
      expect(Number(shown.messagesIn)).toBe(messagesIn);
      expect(shown.messagesInText!.replace(/,/g, "")).toBe(String(messagesIn)); // formatted with separators
      expect(Number(shown.messagesOut)).toBe(messagesOut);
      expect(Number(shown.configVersion)).toBe(configVersion);
      expect(shown.configVersionText).toBe(`v${configVersion}`);
      expect(shown.ready).toBe("ready");
      expect(Number(shown.latencyUpCount)).toBe(sumOf(metrics, "game_gateway_request_latency_seconds_count", { direction: "upstream" }));
      expect(Number(shown.latencyUpP50)).toBeGreaterThan(0);

      // One row per endpoint, with the sessions each backend itself reports.
      const rows = [...shown.backends].sort((x, y) => String(x.endpoint).localeCompare(String(y.endpoint)));
      const expected = [
        { endpoint: endpointA, sessions: a.stats().sessions },
        { endpoint: endpointB, sessions: b.stats().sessions },
      ].sort((x, y) => String(x.endpoint).localeCompare(String(y.endpoint)));
      expect(expected.map((e) => e.sessions).sort()).toEqual([2, 3]);
      expect(rows.map((r) => ({ endpoint: r.endpoint, sessions: Number(r.sessions) }))).toEqual(expected);
      for (const r of rows) {
        expect(r.endpointText).toBe(r.endpoint);
        expect(r.breaker).toBe("closed");
        expect(Number(r.connections)).toBe(sumOf(metrics, "game_gateway_backend_connections_active", { backend: r.endpoint! }));
      }

      // The route and how many of its endpoints answer: both demo backends are up.
      expect(shown.routes).toEqual([{ name: `${T} / any`, reachable: "2", text: "2 / 2" }]);

      // Reloads, newest first; the hostile error text is shown as text, never parsed as HTML.
      expect(shown.reloads.map((r) => [r.ok, Number(r.version)])).toEqual([
        ["false", 3],
        ["true", 3],
        ["true", 2],
      ]);
      expect(shown.reloads[0]!.detail).toContain(hostile);
      expect(shown.reloads[0]!.detail).toContain("redis.password: expected a string, got <redacted>");
      expect(shown.reloads[0]!.detail).not.toContain("31415926535");
      expect(shown.reloads[0]!.detail).not.toContain("987654321012");
      expect(shown.reloads[1]!.detail).toBe("needs restart (old values kept): backend");
      expect(shown.reloads[2]!.detail).toBe("");
      expect(shown.injectedImages).toBe(0);
      expect(shown.pwned).toBeNull();

      // Self-contained: every request the page made went to the admin server itself.
      expect(requests.length).toBeGreaterThan(1);
      for (const url of requests) expect(url.startsWith(`${base}/`)).toBe(true);
      expect(pageErrors).toEqual([]);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      await page.emulateMedia({ colorScheme: "dark" });
      await page.screenshot({ path: SCREENSHOT_DARK, fullPage: true });

      // When the gateway goes away the page says so instead of showing stale numbers as live.
      await gw.stop();
      await page.locator('body[data-state="error"]').waitFor({ timeout: 10_000 });
      expect(await page.getByTestId("error").textContent()).toContain("Cannot reach /api/status");
      await page.close();
    },
    60_000,
  );

  browserTest(
    "shows message rates from its first paint, not a dash until a second poll",
    async () => {
      const browser = await launch();
      const be = await DemoBackend.start({ port: 0 });
      cleanup.push(() => be.stop());
      const gw = startGateway({ admin: { listen_addr: "127.0.0.1:0" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
      cleanup.push(() => gw.stop());
      const client = await gw.connect();
      cleanup.push(() => client.close());
      await roundTrips(client, 20, "before the page"); // counted before the page's first poll
      let sending = true;
      const traffic = (async () => {
        for (let round = 0; sending; round++) await roundTrips(client, 20, `first${round}`);
      })();

      const page = await browser.newPage();
      // Every poll gets the first poll's answer: what the page shows is then what it made of one
      // response, however many polls a slow machine lets through before the checks.
      let first: string | null = null;
      await page.route("**/api/status", async (route) => {
        first ??= await (await route.fetch()).text();
        await route.fulfill({ status: 200, contentType: "application/json", body: first });
      });
      try {
        await page.goto(`http://127.0.0.1:${gw.gateway.adminPort}/`);
        await page.locator('body[data-state="ok"]').waitFor({ timeout: 10_000 });
      } finally {
        sending = false;
        await traffic;
      }
      const answered = JSON.parse(first!) as { messages: { in_per_s: number; out_per_s: number } };
      expect(answered.messages.in_per_s).toBeGreaterThan(0);
      expect(await numberAt(page, "messages-in-rate")).toBeCloseTo(answered.messages.in_per_s, 6);
      expect(await numberAt(page, "messages-out-rate")).toBeCloseTo(answered.messages.out_per_s, 6);
      expect(await page.getByTestId("messages-in-rate").textContent()).not.toBe("\u2013");
      await page.close();
    },
    60_000,
  );
});
