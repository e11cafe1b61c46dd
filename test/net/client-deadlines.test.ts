// The reference's read and write deadlines on client sockets (its connection_pool.read_timeout /
// write_timeout), available here as server.client_read_timeout / client_write_timeout (off by
// default). Real gateway, real demo backend, real sockets on loopback.
import { afterEach, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);

const closes = (gw: ReturnType<TestScope["gateway"]>, reason: string) => gw.gateway.metrics.value("client_closes_total", { reason });

describe("client socket deadlines", () => {
  test("client_read_timeout: a client that sends nothing for that long is closed; one that keeps sending is not", async () => {
    const be = await scope.backend();
    const gw = scope.gateway({ server: { client_read_timeout: "300ms" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } });
    const silent = await gw.connect();
    const chatty = await gw.connect();
    for (const c of [silent, chatty]) {
      c.send(1, serverIdFor(T), text("hello"));
      expect(str((await c.next()).body)).toBe("hello");
    }
    const keepSending = setInterval(() => chatty.send(1, serverIdFor(T), text("tick")), 50);
    try {
      await silent.closed;
      expect(await closes(gw, "read_timeout")).toBe(1);
      expect(chatty.isClosed).toBe(false);
    } finally {
      clearInterval(keepSending);
    }
    chatty.close();
  });

  test("client_write_timeout: a client whose socket takes none of its queued output for that long is closed", async () => {
    const be = await scope.backend();
    const gw = scope.gateway({
      // The byte bound set out of the way, so the deadline is what closes it.
      server: { client_write_timeout: "300ms", client_write_queue_limit: "256MiB" },
      routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
    });
    const stuck = await gw.connect();
    const other = await gw.connect();
    stuck.pause();
    const body = new Uint8Array(60_000);
    // Echoes far past what loopback socket buffers hold: the rest waits in the gateway's queue.
    for (let i = 0; i < 300; i++) stuck.send(1, serverIdFor(T), body);
    await eventually(async () => (await closes(gw, "write_timeout")) === 1, "the stuck client closed at its write deadline");
    expect(await closes(gw, "slow_reader")).toBe(0);
    other.send(1, serverIdFor(T), text("unaffected"));
    expect(str((await other.next()).body)).toBe("unaffected");
    other.close();
    stuck.close();
  });
});
