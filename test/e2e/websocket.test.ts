// WebSocket clients end to end: the dedicated listener (server.ws_listen_addr) with a real gateway
// and a real demo backend. Clients are Bun's WebSocket (the browser API) and websocket-driver's
// client over a raw socket (an implementation that is not Bun's).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { CLIENT_HEADER_SIZE, encodeClientFrame, readClientBodyLength, readClientMessageId } from "../../src/protocol/client-frame.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { concat } from "../support/bytes.ts";
import { eventually, rule, startGateway, str, text, type TestGateway } from "../support/harness.ts";
import { clientFrame, handshakeRequest, readServerAnswer } from "../support/raw-ws.ts";
import { WsPeer } from "../support/ws-peer.ts";
import type { AdmissionGate } from "../../src/net/admission-gate.ts";

const GAME = 200;
const SERVER_ID = serverIdFor(GAME);

/** Splits a byte stream of client frames into [messageId, body text]. */
function framesOf(stream: Uint8Array): [number, string][] {
  const out: [number, string][] = [];
  for (let off = 0; off + CLIENT_HEADER_SIZE <= stream.length; ) {
    const len = readClientBodyLength(stream, off);
    out.push([readClientMessageId(stream, off), str(stream.subarray(off + CLIENT_HEADER_SIZE, off + CLIENT_HEADER_SIZE + len))]);
    off += CLIENT_HEADER_SIZE + len;
  }
  return out;
}

/** Bun's WebSocket client (the browser API), collecting binary bytes and the close. */
async function browserStyleClient(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const chunks: Uint8Array[] = [];
  const state: { close: CloseEvent | null } = { close: null };
  ws.onmessage = (e) => void chunks.push(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = (e) => void (state.close = e);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
  });
  return { ws, received: () => concat(chunks), state };
}

describe("dedicated WebSocket listener", () => {
  let backend: DemoBackend;
  let gw: TestGateway;
  let url: string;

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0, name: "game" });
    gw = startGateway({
      server: { ws_listen_addr: "127.0.0.1:0", ws_path: "/play" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    url = `ws://127.0.0.1:${gw.gateway.wsPort}/play`;
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
  });

  test("binary messages carry the framed stream both ways: several frames in a message, a frame across messages", async () => {
    const c = await browserStyleClient(url);
    const f1 = encodeClientFrame(1, SERVER_ID, text("one"));
    const f2 = encodeClientFrame(2, SERVER_ID, text("two"));
    const f3 = encodeClientFrame(3, SERVER_ID, text("three, split across two messages"));
    c.ws.send(concat([f1, f2])); // two frames, one message
    c.ws.send(f3.subarray(0, 5)); // a frame's header cut in two
    c.ws.send(f3.subarray(5));
    await eventually(() => framesOf(c.received()).length === 3, "three echoed frames");
    expect(framesOf(c.received())).toEqual([
      [1, "one"],
      [2, "two"],
      [3, "three, split across two messages"],
    ]);
    // The backend was told a WebSocket client connected, from where.
    const connect = backend.events.findLast((e) => e.opcode === OpCode.Connect)!;
    expect(connect.json).toMatchObject({ client_ip: "127.0.0.1", protocol: "ws", gateway: "test-gw" });
    c.ws.close();
    await eventually(() => c.state.close !== null, "the close");
  });

  test("an independent client (websocket-driver over a raw socket) gets the same answers", async () => {
    const peer = await WsPeer.connect(gw.gateway.wsPort, "/play");
    await peer.send(concat([encodeClientFrame(9, SERVER_ID, text("a")), encodeClientFrame(10, SERVER_ID, text("b"))]), 5);
    await eventually(() => framesOf(peer.received()).length === 2, "two echoed frames");
    expect(framesOf(peer.received())).toEqual([
      [9, "a"],
      [10, "b"],
    ]);
    peer.end();
    await eventually(() => peer.closed, "the closing handshake");
  });

  test("a text message is a protocol error: closed with code 1003 and a reason that says why", async () => {
    const c = await browserStyleClient(url);
    c.ws.send("hello");
    await eventually(() => c.state.close !== null, "the close");
    expect(c.state.close!.code).toBe(1003);
    expect(c.state.close!.reason).toContain("binary");
    await eventually(async () => (await gw.gateway.metrics.value("client_closes_total", { reason: "malformed_frame" })) >= 1, "the close counted");
  });

  test("upgrades to another path get 404; plain HTTP on the path gets 426", async () => {
    const base = `http://127.0.0.1:${gw.gateway.wsPort}`;
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
    const plain = await fetch(`${base}/play`);
    expect(plain.status).toBe(426);
  });

  test("a request whose Host makes no URL gets a plain 400: no error page, no source, no path, nothing logged", async () => {
    const upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    // The outside review's requests (each got Bun's development error page, with the cwd, the
    // file and its source lines, and a stack trace on stderr).
    const requests = [
      "GET /play HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET /play HTTP/1.1\r\nHost: [zz\r\n\r\n",
      "GET /play HTTP/1.1\r\nHost: x:99999\r\n\r\n",
      `GET /play HTTP/1.1\r\nHost: a b\r\n${upgrade}\r\n`,
      "GET /play HTTP/1.0\r\n\r\n",
      "GET /x HTTP/1.0\r\n\r\n",
      `GET /play HTTP/1.0\r\n${upgrade}\r\n`,
    ];
    const linesBefore = gw.log.lines.length;
    for (const request of requests) {
      const answer = await rawHttp(gw.gateway.wsPort, request);
      expect(answer, request).toStartWith("HTTP/1.1 400 ");
      expect(answer.length, request).toBeLessThan(400);
      for (const leak of ["src/", "ws-listener", "<html", "__bunfallback", process.cwd()]) expect(answer, request).not.toContain(leak);
    }
    expect(gw.log.lines.slice(linesBefore)).toEqual([]);
    // Still serving.
    const c = await browserStyleClient(url);
    c.ws.close();
  });
});

describe("an unexpected error on the dedicated listener", () => {
  test("the client gets a plain 500 with no details; the log one WARN line, no stack, throttled", async () => {
    // A gate that throws stands for any fault behind fetch (nothing there is meant to throw).
    const gate: AdmissionGate = {
      answersAtOnce: true,
      request: () => {
        throw new Error("gate failed reading /secret/state");
      },
      cancel: () => {},
      release: () => {},
      update: () => {},
    };
    const gw = startGateway({ server: { ws_listen_addr: "127.0.0.1:0" } }, { admissionGate: gate });
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await rawHttp(gw.gateway.wsPort, handshakeRequest("/ws"));
        expect(answer).toStartWith("HTTP/1.1 500 ");
        expect(answer).toEndWith("\r\n\r\ninternal error\n");
        for (const leak of ["secret", "src/", "<html", "__bunfallback", process.cwd()]) expect(answer).not.toContain(leak);
      }
      const lines = gw.log.find("unexpected error answering a request; answered 500");
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatchObject({ severity_text: "WARN", protocol: "ws", "error.message": "gate failed reading /secret/state" });
      expect(JSON.stringify(lines[0])).not.toContain("at ");
    } finally {
      await gw.stop();
    }
  });
});

/** Writes a raw HTTP request and collects the answer until the server closes or its body is complete. */
async function rawHttp(port: number, request: string): Promise<string> {
  let answer = "";
  let closed = false;
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, chunk) => void (answer += new TextDecoder().decode(chunk)), close: () => void (closed = true), error: () => {} },
  });
  s.write(request);
  // A server may keep an HTTP/1.1 connection open after a complete answer: stop at the body's end too.
  const complete = () => {
    const head = answer.indexOf("\r\n\r\n");
    const length = /content-length: *(\d+)/i.exec(answer);
    return head >= 0 && length !== null && answer.length >= head + 4 + Number(length[1]);
  };
  await eventually(() => closed || complete(), "the answer");
  s.end();
  return answer;
}

describe("WebSocket admission is TCP's", () => {
  test("past security.max_connections_per_ip the upgrade is refused and counted like a TCP refusal", async () => {
    const backend = await DemoBackend.start({ port: 0, name: "game" });
    const gw = startGateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      security: { max_connections_per_ip: 1 },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    try {
      const first = await WsPeer.connect(gw.gateway.wsPort);
      await expect(WsPeer.connect(gw.gateway.wsPort)).rejects.toThrow("status 429");
      expect(await gw.gateway.metrics.value("connection_rejected_total", { reason: "ip_rate_limit" })).toBe(1);
      // A TCP client from the same address is over the same limit.
      const tcp = await gw.connect();
      await tcp.closed;
      first.end();
    } finally {
      await gw.stop();
      await backend.stop();
    }
  });
});

describe("WebSocket on the TCP client port (the reference's sniffing)", () => {
  let backend: DemoBackend;
  let gw: TestGateway;

  beforeAll(async () => {
    backend = await DemoBackend.start({ port: 0, name: "game" });
    gw = startGateway({
      server: { first_message_timeout: "300ms" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
  });

  test("a handshake on any path becomes a WebSocket client: frames both ways, protocol ws in Connect", async () => {
    const c = await browserStyleClient(`ws://127.0.0.1:${gw.gateway.port}/any/path?x=1`);
    const f1 = encodeClientFrame(1, SERVER_ID, text("sniffed"));
    const f2 = encodeClientFrame(2, SERVER_ID, text("split"));
    c.ws.send(concat([f1, f2.subarray(0, 3)]));
    c.ws.send(f2.subarray(3));
    await eventually(() => framesOf(c.received()).length === 2, "two echoed frames");
    expect(framesOf(c.received())).toEqual([
      [1, "sniffed"],
      [2, "split"],
    ]);
    const connect = backend.events.findLast((e) => e.opcode === OpCode.Connect)!;
    expect(connect.json).toMatchObject({ client_ip: "127.0.0.1", protocol: "ws" });
    c.ws.send("text is not the contract");
    await eventually(() => c.state.close !== null, "the close");
    expect(c.state.close!.code).toBe(1003);
  });

  test("a game client on the same port is served as before", async () => {
    const tcp = await gw.connect();
    tcp.send(5, SERVER_ID, text("plain tcp"));
    const reply = await tcp.next();
    expect(str(reply.body)).toBe("plain tcp");
    const connect = backend.events.findLast((e) => e.opcode === OpCode.Connect)!;
    expect(connect.json).toMatchObject({ protocol: "tcp" });
    tcp.close();
  });

  test("plain HTTP on the client port gets 426 Upgrade Required", async () => {
    const res = await fetch(`http://127.0.0.1:${gw.gateway.port}/`);
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("websocket");
  });

  /** Writes raw bytes to the client port and collects the answer until the gateway closes. */
  async function rawExchange(request: string | Uint8Array): Promise<string> {
    let answer = "";
    let closed = false;
    const s = await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.gateway.port,
      socket: { data: (_s, chunk) => void (answer += new TextDecoder().decode(chunk)), close: () => void (closed = true), error: () => {} },
    });
    s.write(request);
    await eventually(() => closed, "the gateway to answer and close");
    return answer;
  }

  test("a handshake header past 8 KiB gets 431 and is closed", async () => {
    const answer = await rawExchange(`GET / HTTP/1.1\r\nUpgrade: websocket\r\nX-Filler: ${"a".repeat(9000)}`);
    expect(answer).toStartWith("HTTP/1.1 431 ");
  });

  /** A complete handshake whose header is `size` bytes, written at once or in `chunk`-byte writes. */
  async function handshakeOfSize(size: number, chunk: number): Promise<string> {
    const bare = handshakeRequest("/game", "X-Pad: \r\n");
    const request = new TextEncoder().encode(handshakeRequest("/game", `X-Pad: ${"p".repeat(size - bare.length)}\r\n`));
    expect(request.length).toBe(size);
    let answer = "";
    let closed = false;
    const s = await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.gateway.port,
      socket: { data: (_s, data) => void (answer += new TextDecoder().decode(data)), close: () => void (closed = true), error: () => {} },
    });
    s.setNoDelay(true);
    for (let off = 0; off < request.length; off += chunk) {
      s.write(request.subarray(off, off + chunk));
      await Bun.sleep(5);
    }
    await eventually(() => closed || answer.includes("\r\n\r\n"), "the answer");
    s.end();
    return answer;
  }

  test("the 8 KiB header bound holds however the header is cut into writes: 431 past it, 101 within it", async () => {
    for (const size of [9000, 20_000, 60_000]) {
      expect(await handshakeOfSize(size, size), `${size} bytes in one write`).toStartWith("HTTP/1.1 431 ");
      expect(await handshakeOfSize(size, 4096), `${size} bytes in 4 KiB writes`).toStartWith("HTTP/1.1 431 ");
    }
    expect(await handshakeOfSize(7 * 1024, 7 * 1024), "7 KiB in one write").toStartWith("HTTP/1.1 101 ");
    expect(await handshakeOfSize(7 * 1024, 4096), "7 KiB in 4 KiB writes").toStartWith("HTTP/1.1 101 ");
  });

  test("a game client whose first frame starts with the bytes \"GET \" is HTTP, as in the reference: 426 once 8 KiB came with no blank line", async () => {
    // Body length 0x4547 ("GE") and message ID 0x2054 ("T "): the frame's first 4 bytes read "GET ".
    const body = new Uint8Array(0x4547).fill(0x61);
    const frame = encodeClientFrame(0x2054, SERVER_ID, body);
    expect(str(frame.subarray(0, 4))).toBe("GET ");
    let answer = "";
    let closed = false;
    const s = await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.gateway.port,
      socket: { data: (_s, chunk) => void (answer += new TextDecoder().decode(chunk)), close: () => void (closed = true), error: () => {} },
    });
    s.write(frame);
    await eventually(() => closed, "the gateway to answer and close");
    expect(answer).toStartWith("HTTP/1.1 426 ");
  });

  /** A raw socket to the client port collecting every byte the gateway sends, and whether it closed. */
  async function rawClient() {
    const chunks: Uint8Array[] = [];
    const state = { closed: false };
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.gateway.port,
      socket: { data: (_s, chunk) => void chunks.push(chunk.slice()), close: () => void (state.closed = true), error: () => {} },
    });
    socket.setNoDelay(true);
    return { socket, state, answer: () => readServerAnswer(concat(chunks)) };
  }

  test("a handshake with its first two frames in one write: 101, then both frames echoed in order", async () => {
    const c = await rawClient();
    const f1 = encodeClientFrame(1, SERVER_ID, text("pipelined one"));
    const f2 = encodeClientFrame(2, SERVER_ID, text("pipelined two"));
    c.socket.write(concat([new TextEncoder().encode(handshakeRequest("/game")), clientFrame(f1), clientFrame(f2)]));
    await eventually(() => framesOf(concat(c.answer().binary)).length === 2, "both pipelined frames echoed");
    expect(c.answer().statusLine).toStartWith("HTTP/1.1 101 ");
    expect(framesOf(concat(c.answer().binary))).toEqual([
      [1, "pipelined one"],
      [2, "pipelined two"],
    ]);
    c.socket.end();
  });

  test("a handshake split across writes, a frame in the write that completes it: 101, then the echo", async () => {
    const c = await rawClient();
    const request = new TextEncoder().encode(handshakeRequest("/game"));
    const f1 = encodeClientFrame(1, SERVER_ID, text("after a split handshake"));
    const pieces = [request.subarray(0, 2), request.subarray(2, 40), concat([request.subarray(40), clientFrame(f1)])];
    for (const piece of pieces) {
      c.socket.write(piece);
      c.socket.flush();
      await Bun.sleep(20); // separate reads on the gateway's side
    }
    await eventually(() => framesOf(concat(c.answer().binary)).length === 1, "the echo");
    expect(c.answer().statusLine).toStartWith("HTTP/1.1 101 ");
    expect(framesOf(concat(c.answer().binary))).toEqual([[1, "after a split handshake"]]);
    c.socket.end();
  });

  test("an offered subprotocol is answered: the first offered", async () => {
    const c = await rawClient();
    c.socket.write(handshakeRequest("/game", "Sec-WebSocket-Protocol: game, chat\r\n"));
    await eventually(() => c.answer().statusLine !== "", "the handshake's answer");
    expect(c.answer().statusLine).toStartWith("HTTP/1.1 101 ");
    expect(c.answer().headers.get("sec-websocket-protocol")).toBe("game");
    c.socket.end();
  });

  test("an unmasked client frame is a protocol error: closed with 1002, as on the dedicated listener", async () => {
    const c = await rawClient();
    c.socket.write(handshakeRequest("/game"));
    await eventually(() => c.answer().statusLine !== "", "the handshake's answer");
    c.socket.write(clientFrame(encodeClientFrame(1, SERVER_ID, text("unmasked")), false));
    await eventually(() => c.answer().closeCode !== null, "the close frame");
    expect(c.answer().closeCode).toBe(1002);
    expect(c.answer().binary).toEqual([]);
  });

  test("a handshake the WebSocket library refuses (no Sec-WebSocket-Key) gets 400 and is closed", async () => {
    const answer = await rawExchange("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n");
    expect(answer).toStartWith("HTTP/1.1 400 ");
  });

  test("a refused handshake with a frame pipelined behind it still gets 400 and is closed", async () => {
    const refused = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const frame = clientFrame(encodeClientFrame(1, SERVER_ID, text("behind a refused handshake")));
    const answer = await rawExchange(concat([new TextEncoder().encode(refused), frame]));
    expect(answer).toStartWith("HTTP/1.1 400 ");
  });

  test("an HTTP header that never completes is closed by first_message_timeout, not held", async () => {
    let closed = false;
    const s = await Bun.connect({
      hostname: "127.0.0.1",
      port: gw.gateway.port,
      socket: { data: () => {}, close: () => void (closed = true), error: () => {} },
    });
    s.write("GET / HTTP/1.1\r\nUpgrade: websocket\r\n");
    await eventually(() => closed, "the gateway to close the silent client");
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "first_message_timeout" })).toBeGreaterThanOrEqual(1);
  });
});

describe("connection_pool.max_connections covers both listeners", () => {
  test("a WebSocket client takes a slot a TCP client then cannot have, and the other way round", async () => {
    const backend = await DemoBackend.start({ port: 0, name: "game" });
    const gw = startGateway({
      server: { ws_listen_addr: "127.0.0.1:0" },
      connection_pool: { max_connections: 1 },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    try {
      const ws = await WsPeer.connect(gw.gateway.wsPort);
      const tcp = await gw.connect();
      await tcp.closed; // refused: the WebSocket client holds the one slot
      ws.terminate();
      await eventually(() => gw.gateway.clientConnections === 0, "the WebSocket client to be gone");
      const tcp2 = await gw.connect();
      tcp2.send(1, SERVER_ID, text("holds the slot"));
      await tcp2.next();
      await expect(WsPeer.connect(gw.gateway.wsPort)).rejects.toThrow("status 503");
      expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "max_connections" })).toBe(2);
      tcp2.close();
    } finally {
      await gw.stop();
      await backend.stop();
    }
  });
});

describe("server.ws_max_payload_length", () => {
  test("a larger message closes the client with 1009, on the dedicated listener and on the TCP port", async () => {
    const backend = await DemoBackend.start({ port: 0, name: "game" });
    const gw = startGateway({
      server: { ws_listen_addr: "127.0.0.1:0", ws_max_payload_length: "1KiB" },
      routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] },
    });
    try {
      for (const [port, path] of [
        [gw.gateway.wsPort, "/ws"],
        [gw.gateway.port, "/"],
      ] as const) {
        const c = await browserStyleClient(`ws://127.0.0.1:${port}${path}`);
        const fits = encodeClientFrame(1, SERVER_ID, new Uint8Array(1024 - 8));
        c.ws.send(fits);
        await eventually(() => c.received().length === fits.length, "the echo of a message at the limit");
        c.ws.send(encodeClientFrame(2, SERVER_ID, new Uint8Array(1024)));
        await eventually(() => c.state.close !== null, "the close");
        expect(c.state.close!.code).toBe(1009);
      }
    } finally {
      await gw.stop();
      await backend.stop();
    }
  });
});

describe("TCP's socket deadlines apply to WebSocket clients (dedicated listener)", () => {
  async function gatewayWith(server: Record<string, unknown>) {
    const backend = await DemoBackend.start({ port: 0, name: "game" });
    const gw = startGateway({ server: { ws_listen_addr: "127.0.0.1:0", ...server }, routing: { rules: [rule(GAME, [`127.0.0.1:${backend.port}`])] } });
    const closes = (reason: string) => gw.gateway.metrics.value("client_closes_total", { reason });
    return { gw, closes, stop: async () => (await gw.stop(), await backend.stop()) };
  }

  test("client_read_timeout closes a client that sends nothing for that long, with 1008 and the reason", async () => {
    const { gw, closes, stop } = await gatewayWith({ client_read_timeout: "300ms" });
    try {
      const silent = await WsPeer.connect(gw.gateway.wsPort);
      await silent.send(encodeClientFrame(1, SERVER_ID, text("hello")));
      await eventually(() => silent.received().length > 0, "the echo");
      await eventually(() => silent.closed, "the silent client closed");
      expect(silent.closeEvent).toEqual({ code: 1008, reason: "read_timeout" });
      expect(await closes("read_timeout")).toBe(1);
    } finally {
      await stop();
    }
  });

  test("client_write_timeout closes a client whose output Bun could not send for that long", async () => {
    // The byte bound set out of the way, so the deadline is what closes it.
    const { gw, closes, stop } = await gatewayWith({ client_write_timeout: "300ms", client_write_queue_limit: "256MiB" });
    try {
      const stuck = await WsPeer.connect(gw.gateway.wsPort);
      stuck.pauseReading();
      // Echoes far past what loopback socket buffers and Bun's buffer hold: the rest waits in the port's queue.
      const f = encodeClientFrame(1, SERVER_ID, new Uint8Array(60_000));
      for (let i = 0; i < 300; i++) await stuck.send(f);
      await eventually(async () => (await closes("write_timeout")) === 1, "the stuck client closed at its write deadline");
      expect(await closes("slow_reader")).toBe(0);
    } finally {
      await stop();
    }
  });
});
