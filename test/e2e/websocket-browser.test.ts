// WebSocket clients in a real headless Chromium (an implementation that is neither Bun's nor
// ours), through a real gateway to a real demo backend: on the dedicated listener and on the TCP
// client port (the reference's sniffing); and over TLS (wss) on both, with a self-signed
// certificate Chromium is told to accept (--ignore-certificate-errors).
//
// Chromium is Debian's /usr/bin/chromium (CHROMIUM_PATH overrides), driven by playwright-core.
// Without it the test fails when CI is set and is skipped otherwise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { rule, startGateway, type TestGateway } from "../support/harness.ts";
import { makeCertificates } from "../support/tls-certificates.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"];
const inCI = (process.env.CI ?? "") !== "" && !["0", "false"].includes(process.env.CI!.toLowerCase());
const haveChromium = existsSync(CHROMIUM);
const browserTest = haveChromium || inCI ? test : test.skip;
const GAME = 200;

/** What the page reports: the echoed frames as [messageId, body], and how a text message was closed. */
interface PageResult {
  readonly frames: [number, string][];
  readonly textClose: { code: number; reason: string };
}

/**
 * Runs in the page: sends two frames in one message and a third split across two, reads the
 * echoes, then sends text on a second connection and reports its close. Plain browser APIs only.
 */
const pageScript = async ({ url, serverId }: { url: string; serverId: number }): Promise<PageResult> => {
  const frame = (id: number, body: string): Uint8Array => {
    const b = new TextEncoder().encode(body);
    const f = new Uint8Array(8 + b.length);
    const dv = new DataView(f.buffer);
    dv.setUint16(0, b.length, true);
    dv.setUint16(2, id, true);
    dv.setUint32(4, serverId, true);
    f.set(b, 8);
    return f;
  };
  const open = (u: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(u);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error(`cannot open ${u}`));
    });
  const ws = await open(url);
  const got: number[] = [];
  const frames: [number, string][] = [];
  const done = new Promise<void>((resolve) => {
    ws.onmessage = (e) => {
      got.push(...new Uint8Array(e.data as ArrayBuffer));
      while (got.length >= 8) {
        const len = got[0]! | (got[1]! << 8);
        if (got.length < 8 + len) break;
        const f = got.splice(0, 8 + len);
        frames.push([f[2]! | (f[3]! << 8), new TextDecoder().decode(new Uint8Array(f.slice(8)))]);
      }
      if (frames.length === 3) resolve();
    };
  });
  const a = frame(1, "from chromium");
  const b = frame(2, "two in one message");
  const c = frame(3, "split across two messages");
  const both = new Uint8Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  ws.send(both);
  ws.send(c.subarray(0, 5));
  ws.send(c.subarray(5));
  await done;
  ws.close();
  const texter = await open(url);
  const textClose = await new Promise<{ code: number; reason: string }>((resolve) => {
    texter.onclose = (e) => resolve({ code: e.code, reason: e.reason });
    texter.send("hello as text");
  });
  return { frames, textClose };
};

for (const secure of [false, true]) describe(`WebSocket clients in Chromium${secure ? " over TLS (wss)" : ""}`, () => {
  let backend: DemoBackend;
  let gw: TestGateway;
  let browser: Browser;
  const scheme = secure ? "wss" : "ws";

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0, name: "game" });
    const dir = secure ? makeCertificates() : "";
    const tls = secure ? { tls: { cert_file: join(dir, "server.crt"), key_file: join(dir, "server.key") } } : {};
    gw = startGateway({ server: { ws_listen_addr: "127.0.0.1:0", ...tls }, routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] } });
    const args = secure ? [...CHROMIUM_ARGS, "--ignore-certificate-errors"] : CHROMIUM_ARGS;
    if (haveChromium || inCI) browser = await chromium.launch({ executablePath: CHROMIUM, args, timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await gw.stop();
    await backend.stop();
  });

  for (const [name, url] of [
    ["the dedicated listener", () => `${scheme}://127.0.0.1:${gw.gateway.wsPort}/ws`],
    ["the TCP client port (sniffed)", () => `${scheme}://127.0.0.1:${gw.gateway.port}/game`],
  ] as const) {
    browserTest(`${name}: framed stream both ways, Connect says ws, text closed with 1003`, async () => {
      const page = await browser.newPage();
      try {
        const connectsBefore = backend.events.filter((e) => e.opcode === OpCode.Connect).length;
        const result = await page.evaluate(pageScript, { url: url(), serverId: serverIdFor(GAME) });
        expect(result.frames).toEqual([
          [1, "from chromium"],
          [2, "two in one message"],
          [3, "split across two messages"],
        ]);
        expect(result.textClose.code).toBe(1003);
        expect(result.textClose.reason).toContain("binary");
        const connects = backend.events.filter((e) => e.opcode === OpCode.Connect).slice(connectsBefore);
        expect(connects.length).toBeGreaterThanOrEqual(1);
        expect(connects[0]!.json).toMatchObject({ client_ip: "127.0.0.1", protocol: "ws" });
      } finally {
        await page.close();
      }
    });

    // Chromium fails the connection when it offered subprotocols and the 101 names none.
    browserTest(`${name}: a client offering subprotocols ["game", "chat"] is answered the first, "game"`, async () => {
      const page = await browser.newPage();
      try {
        const chosen = await page.evaluate(
          (u) =>
            new Promise<string>((resolve, reject) => {
              const ws = new WebSocket(u, ["game", "chat"]);
              ws.onopen = () => {
                resolve(ws.protocol);
                ws.close();
              };
              ws.onerror = () => reject(new Error(`cannot open ${u} with subprotocols`));
            }),
          url(),
        );
        expect(chosen).toBe("game");
      } finally {
        await page.close();
      }
    });
  }
});
