// WebSocket clients held to TCP's bounds and to one idle rule on both ways in: server pings and
// ws_idle_timeout on a handshake sniffed on the TCP port as Bun applies them on the dedicated
// listener (same close reason, same metric), and the dedicated listener's held input counted in
// server.pending_input_limit, one budget with TCP's. Real gateway, demo backend, loopback sockets;
// the WebSocket bytes of the silent client are RFC 6455 by hand (test/support/raw-ws.ts), the
// live one is websocket-driver's client, which answers pings as any client library does.
import { afterEach, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { concat } from "../support/bytes.ts";
import { eventually, rule, text, TestScope, type TestGateway } from "../support/harness.ts";
import { clientFrame, handshakeRequest, readServerAnswer } from "../support/raw-ws.ts";
import { WsPeer } from "../support/ws-peer.ts";

const GAME = 200;
const SERVER_ID = serverIdFor(GAME);
const scope = new TestScope();
afterEach(scope.release);

const closes = (gw: TestGateway, reason: string) => gw.gateway.metrics.value("client_closes_total", { reason });

/** A WebSocket client by hand that completes its handshake, sends one frame, and then never answers a ping. */
async function silentClient(port: number, path: string) {
  const chunks: Uint8Array[] = [];
  const state = { closed: false };
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, chunk) => void chunks.push(chunk.slice()), close: () => void (state.closed = true), error: () => {} },
  });
  socket.write(concat([new TextEncoder().encode(handshakeRequest(path)), clientFrame(encodeClientFrame(1, SERVER_ID, text("hello")))]));
  const answer = () => readServerAnswer(concat(chunks));
  await eventually(() => answer().binary.length === 1, "the handshake and the echo");
  scope.defer(() => void socket.terminate());
  return { answer, state, socket };
}

describe("idle WebSocket clients: pings and server.ws_idle_timeout", () => {
  test("on the TCP port (sniffed): a quiet client is pinged; one that answers stays, one that does not is closed as idle_timeout", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_idle_timeout: "600ms" },
      session: { sweep_interval: "50ms" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    const live = await WsPeer.connect(gw.gateway.port, "/game");
    await live.send(encodeClientFrame(1, SERVER_ID, text("hello")));
    await eventually(() => live.received().length > 0, "the live client's echo");
    const silent = await silentClient(gw.gateway.port, "/game");
    await eventually(() => silent.state.closed, "the silent client closed");
    const answer = silent.answer();
    expect(answer.pings).toBeGreaterThanOrEqual(1);
    expect([answer.closeCode, answer.closeReason]).toEqual([1000, "idle_timeout"]);
    expect(await closes(gw, "idle_timeout")).toBe(1);
    // The live client was pinged as often and answered each time: still open, two idle timeouts on.
    await Bun.sleep(1_200);
    expect(live.closed).toBe(false);
    const before = live.received().length;
    await live.send(encodeClientFrame(2, SERVER_ID, text("still here")));
    await eventually(() => live.received().length > before, "the live client's second echo");
    live.end();
  });

  test("ws_send_pings false: no pings, so a quiet client is closed even though it would have answered", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { ws_idle_timeout: "600ms", ws_send_pings: false },
      session: { sweep_interval: "50ms" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    const quiet = await WsPeer.connect(gw.gateway.port, "/game");
    await eventually(() => quiet.closed, "the quiet client closed");
    expect(quiet.closeEvent).toEqual({ code: 1000, reason: "idle_timeout" });
    expect(await closes(gw, "idle_timeout")).toBe(1);
  });

  test("on the dedicated listener a silent client is still open just before ws_idle_timeout, then Bun closes it as idle_timeout", async () => {
    const backend = await scope.backend();
    // Bun's timer fires on a 4 s tick, up to 4 s before what it is given: given 8 s as it was, a
    // silent client was closed 4-8 s after its last message, depending on where in the tick that
    // message fell. Four clients a second apart fall at four places in the tick, so with the old
    // setting at least three of them were closed before 7.5 s.
    const gw = scope.gateway({ server: { ws_listen_addr: "127.0.0.1:0", ws_idle_timeout: "8s" }, routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] } });
    const clients: { silent: Awaited<ReturnType<typeof silentClient>>; lastHeard: number }[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0) await Bun.sleep(1_000);
      const silent = await silentClient(gw.gateway.wsPort, "/ws");
      // The echo came after its frame arrived: the silence counts from no later than now.
      clients.push({ silent, lastHeard: performance.now() });
    }
    for (const [i, { silent, lastHeard }] of clients.entries()) {
      await Bun.sleep(Math.max(0, lastHeard + 7_500 - performance.now()));
      expect(silent.state.closed, `client ${i}, 7.5 s after its last message`).toBe(false);
    }
    await eventually(() => clients.every((c) => c.silent.state.closed), "Bun to close the silent clients", 30_000);
    for (const { silent } of clients) expect(silent.answer().pings).toBeGreaterThanOrEqual(1);
    expect(await closes(gw, "idle_timeout")).toBe(4);
    expect(await closes(gw, "client_error")).toBe(0);
  }, 50_000);
});

describe("a client that drops without a close frame", () => {
  test("is counted client_closed on both ways in, as a TCP game client's FIN is", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({ server: { ws_listen_addr: "127.0.0.1:0" }, routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] } });
    for (const [port, path] of [[gw.gateway.wsPort, "/ws"], [gw.gateway.port, "/game"]] as const) {
      const peer = await WsPeer.connect(port, path);
      await peer.send(encodeClientFrame(1, SERVER_ID, text("hello")));
      await eventually(() => peer.received().length > 0, "the echo");
      peer.dropConnection();
    }
    await eventually(() => gw.gateway.clientConnections === 0, "both clients gone");
    expect(await closes(gw, "client_closed")).toBe(2);
    expect(await closes(gw, "client_error")).toBe(0);
    await eventually(() => gw.accessLog.lines.length === 2, "both access records");
    for (const r of gw.accessLog.lines) expect(r).toMatchObject({ reason: "client_closed", status: "success" });
  });
});

describe("server.pending_input_limit covers the dedicated WebSocket listener", () => {
  test("held partial frames of TCP and WebSocket clients share one budget: the WebSocket client that would pass it is closed with 1009", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      // Room for three 64 KiB-class buffers, not four.
      server: { ws_listen_addr: "127.0.0.1:0", pending_input_limit: "200KiB", first_message_timeout: "1m" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    const half = encodeClientFrame(1, SERVER_ID, new Uint8Array(65_000)).subarray(0, 60_000);
    const tcp = [];
    for (let i = 0; i < 2; i++) {
      const c = await gw.connect();
      c.sendRaw(half);
      tcp.push(c);
    }
    await eventually(() => gw.gateway.buffers.stats().outstanding === 2, "two TCP clients' partial frames held");
    const held = await WsPeer.connect(gw.gateway.wsPort);
    await held.send(half);
    await eventually(() => gw.gateway.buffers.stats().outstanding === 3, "the first WebSocket client's partial frame held");
    const over = await WsPeer.connect(gw.gateway.wsPort);
    await over.send(half);
    await eventually(() => over.closed, "the client past the budget closed");
    expect(over.closeEvent).toEqual({ code: 1009, reason: "pending_input_limit" });
    expect(await closes(gw, "pending_input_limit")).toBe(1);
    expect(held.closed).toBe(false);
    expect(gw.gateway.buffers.stats().outstandingBytes).toBeLessThanOrEqual(200 * 1024);
    // Closing gives the budget back.
    held.end();
    for (const c of tcp) c.close();
    await eventually(() => gw.gateway.buffers.stats().outstanding === 0, "every buffer back");
    const again = await WsPeer.connect(gw.gateway.wsPort);
    await again.send(half);
    await eventually(() => gw.gateway.buffers.stats().outstanding === 1, "a new client's partial frame held");
    expect(again.closed).toBe(false);
    again.end();
  });
});

describe("a sniffed WebSocket client's unfinished message is held input (websocket-driver keeps it until whole)", () => {
  /** Most of one 60,000-byte binary message: its frame with the last 1,000 payload bytes not sent. */
  const unfinishedMessage = () => clientFrame(new Uint8Array(60_000)).subarray(0, 60_008 - 1_000);

  test("it counts in server.pending_input_limit: the client whose message passes the budget is closed with 1009", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      // Room for one unfinished 60 KB message, not two.
      server: { pending_input_limit: "100KiB", first_message_timeout: "1m" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    const first = await silentClient(gw.gateway.port, "/game");
    first.socket.write(unfinishedMessage());
    await Bun.sleep(100); // nothing to wait for: the first client must stay open
    const second = await silentClient(gw.gateway.port, "/game");
    second.socket.write(unfinishedMessage());
    await eventually(() => second.state.closed, "the client past the budget closed");
    expect([second.answer().closeCode, second.answer().closeReason]).toEqual([1009, "pending_input_limit"]);
    expect(await closes(gw, "pending_input_limit")).toBe(1);
    expect(first.state.closed).toBe(false);
    // The second client's share went back with it: a third fits beside the first.
    const third = await silentClient(gw.gateway.port, "/game");
    third.socket.write(clientFrame(new Uint8Array(30_000), true, 2, false)); // a whole fragment of an unfinished message
    await Bun.sleep(100);
    expect(third.state.closed).toBe(false);
    expect(await closes(gw, "pending_input_limit")).toBe(1);
  });

  test("it is timed by server.partial_frame_timeout, a partial frame or a fragment alike", async () => {
    const backend = await scope.backend();
    const gw = scope.gateway({
      server: { partial_frame_timeout: "300ms", first_message_timeout: "1m" },
      session: { sweep_interval: "50ms" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    const partialFrame = await silentClient(gw.gateway.port, "/game");
    partialFrame.socket.write(unfinishedMessage());
    const fragment = await silentClient(gw.gateway.port, "/game");
    fragment.socket.write(clientFrame(new Uint8Array(1_000), true, 2, false));
    // A client whose messages are whole holds nothing and is not timed.
    const whole = await silentClient(gw.gateway.port, "/game");
    for (const c of [partialFrame, fragment]) {
      await eventually(() => c.state.closed, "the unfinished message's client closed");
      expect([c.answer().closeCode, c.answer().closeReason]).toEqual([1008, "partial_frame_timeout"]);
    }
    expect(await closes(gw, "partial_frame_timeout")).toBe(2);
    expect(whole.state.closed).toBe(false);
  });
});
