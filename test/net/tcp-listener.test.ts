// The client listener against hostile connection patterns, over real loopback sockets: silent
// sockets in PROXY mode, peers that reset before accept, half-sent frames, clients that close
// while paused, and the trace a refused connection leaves.
import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import type { Socket, TCPSocketConnectOptions } from "bun";
import { type GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { proxyV1 } from "../support/proxy-header.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { eventually, rule, str, text, TestScope, type TestGateway } from "../support/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);

/** A raw client socket, optionally from another loopback source address. */
interface Raw {
  readonly socket: Socket<undefined>;
  received: number;
  closed: boolean;
}

async function raw(port: number, localAddress?: string): Promise<Raw> {
  const r = { received: 0, closed: false } as Raw & { socket: Socket<undefined> };
  const opts: TCPSocketConnectOptions<undefined> & { localAddress?: string } = {
    hostname: "127.0.0.1",
    port,
    localAddress,
    socket: {
      data(_s, chunk) {
        r.received += chunk.length;
      },
      close() {
        r.closed = true;
      },
      error() {},
    },
  };
  (r as { socket: Socket<undefined> }).socket = await Bun.connect(opts);
  return r;
}

const rejected = (gw: TestGateway, refusal: string) => gw.gateway.metrics.value("connection_refusals_total", { refusal });
const closes = (gw: TestGateway, reason: string) => gw.gateway.metrics.value("client_closes_total", { reason });

describe("PROXY mode admission", () => {
  test("silent sockets from an untrusted peer are held to its per-IP limits at accept; another address still gets in", async () => {
    const a = await scope.backend();
    // Per-IP limits at their defaults (10 live, 5/s); a small global cap stands for max_connections.
    const gw = scope.gateway({
      security: { proxy_protocol: "optional", trusted_proxies: ["10.0.0.0/8"], max_connections_per_ip: 10, connection_rate_limit: 5 },
      connection_pool: { max_connections: 40 },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const silent = await Promise.all(Array.from({ length: 60 }, () => raw(gw.gateway.port)));
    const settled = async () => {
      let refusals = 0;
      for (const r of ["per_ip_limit", "rate_limited", "max_connections"]) refusals += await rejected(gw, r);
      return refusals + gw.gateway.clientConnections === silent.length;
    };
    await eventually(settled, "every silent socket to be admitted or refused");
    // Before: admission waited for a header that never came, so 40 silent sockets held every slot.
    expect(gw.gateway.clientConnections).toBeLessThanOrEqual(10);
    expect(await rejected(gw, "max_connections")).toBe(0);

    const player = await raw(gw.gateway.port, "127.0.0.9");
    player.socket.write(encodeClientFrame(1, serverIdFor(T), text("let me in")));
    await eventually(() => player.received > 0 || player.closed, "a reply or a close");
    expect(player.closed).toBe(false);
    const connects = a.events.filter((e) => e.opcode === OpCode.Connect).map((e) => (e.json as { client_ip: string }).client_ip);
    expect(connects).toEqual(["127.0.0.9"]);
    player.socket.end();
    for (const s of silent) s.socket.end();

    // Each refusal leaves an access record; the log has one line per reason, not one per refusal.
    const refusals = (await rejected(gw, "per_ip_limit")) + (await rejected(gw, "rate_limited"));
    const logged = gw.log.find("connection refused");
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.length).toBeLessThanOrEqual(2);
    expect(logged[0]).toMatchObject({ client: "127.0.0.1" });
    await gw.gateway.stop();
    const records = gw.accessLog.lines.filter((l) => l.status === "rejected");
    expect(records).toHaveLength(refusals);
    expect(new Set(records.map((r) => r.refusal))).toEqual(new Set(logged.map((l) => l.reason)));
  });

  test("a trusted peer's header wait is bounded in time and in number", async () => {
    const a = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      {
        security: { proxy_protocol: "optional", trusted_proxies: ["127.0.0.0/8"], proxy_header_timeout: "200ms", max_pending_proxy_headers: 3 },
        routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
      },
      { clock },
    );
    const waiting = await Promise.all(Array.from({ length: 5 }, () => raw(gw.gateway.port)));
    await eventually(async () => (await rejected(gw, "proxy_pending_limit")) === 2, "two refusals past the bound");
    await eventually(() => gw.gateway.clientConnections === 3, "only the three waiting to be open");
    expect(await rejected(gw, "proxy_timeout")).toBe(0); // the clock has not moved, however slow the machine
    clock.tick(200);
    await eventually(async () => (await rejected(gw, "proxy_timeout")) === 3, "the three waiting to time out");
    await eventually(() => waiting.every((w) => w.closed), "every silent socket closed");
    expect(gw.gateway.clientConnections).toBe(0);
    // The slots they held are free again: a balancer's connection with a header gets through.
    const lb = await raw(gw.gateway.port);
    lb.socket.write(new Uint8Array([...proxyV1("203.0.113.7", "10.0.0.1", 1, 2), ...encodeClientFrame(1, serverIdFor(T), text("hi"))]));
    await eventually(() => lb.received > 0, "the proxied client's reply");
    lb.socket.end();
  });
});

describe("a trusted proxy's connections wait for their first bytes within max_pending_proxy_headers", () => {
  test("silent connections from a trusted X-Forwarded-For proxy: past the bound refused as proxy_pending_limit; a decided one frees its slot", async () => {
    const a = await scope.backend();
    const gw = scope.gateway({
      // proxy_protocol off: these wait because an upgrade's X-Forwarded-For may name the client.
      security: { trusted_proxies: ["127.0.0.2/32"], max_pending_proxy_headers: 3, max_connections_per_ip: 5, connection_rate_limit: 100 },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const silent: Raw[] = [];
    for (let i = 0; i < 5; i++) silent.push(await raw(gw.gateway.port, "127.0.0.2"));
    await eventually(async () => (await rejected(gw, "proxy_pending_limit")) === 2, "two refusals past the bound");
    await eventually(() => silent.filter((s) => s.closed).length === 2, "the two refused closed");
    expect(gw.gateway.clientConnections).toBe(3);
    // A waiting one speaks (a game client behind the proxy): admitted, and its slot is free again.
    const speaker = silent.find((s) => !s.closed)!;
    speaker.socket.write(encodeClientFrame(1, serverIdFor(T), text("hi")));
    await eventually(() => speaker.received > 0, "the game client's reply");
    const next = await raw(gw.gateway.port, "127.0.0.2");
    await Bun.sleep(100); // a refusal would come at accept
    expect(next.closed).toBe(false);
    expect(await rejected(gw, "proxy_pending_limit")).toBe(2);
    // Another one past the bound again, and closing the waiting ones gives every slot back.
    const over = await raw(gw.gateway.port, "127.0.0.2");
    await eventually(() => over.closed, "the connection past the bound closed");
    expect(await rejected(gw, "proxy_pending_limit")).toBe(3);
    for (const s of [...silent, next]) if (s !== speaker) s.socket.end();
    await eventually(() => gw.gateway.clientConnections === 1, "only the game client left");
    const after = await Promise.all(Array.from({ length: 3 }, () => raw(gw.gateway.port, "127.0.0.2")));
    await Bun.sleep(100);
    expect(after.some((s) => s.closed)).toBe(false);
    expect(await rejected(gw, "proxy_pending_limit")).toBe(3);
    speaker.socket.end();
    for (const s of after) s.socket.end();
  });
});

describe("peers without an address", () => {
  test("a peer that sends and resets before accept is refused and counted; nothing it sent is forwarded", async () => {
    const a = await scope.backend();
    const gw = scope.gateway({
      security: { max_connections_per_ip: 10, connection_rate_limit: 5 },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const N = 20;
    // spawnSync blocks this process, gateway included: the kernel completes each handshake, the
    // child sends a frame and resets, and only then does the gateway get to accept.
    const child = Bun.spawnSync({
      cmd: [
        process.execPath,
        "-e",
        `const net = require("node:net");
         const frame = Buffer.from(${JSON.stringify(Array.from(encodeClientFrame(1, serverIdFor(T), text("ghost"))))});
         let left = ${N};
         for (let i = 0; i < ${N}; i++) {
           const s = net.connect(${gw.gateway.port}, "127.0.0.1", () => {
             s.write(frame, () => { s.resetAndDestroy(); if (--left === 0) setTimeout(() => process.exit(0), 50); });
           });
           s.on("error", () => {});
         }`,
      ],
      timeout: 20_000,
    });
    expect(child.exitCode).toBe(0);
    await eventually(async () => (await gw.gateway.metrics.value("connections_total")) >= N, "every reset connection to be accepted");
    await eventually(() => gw.gateway.clientConnections === 0, "them all to close");
    // Before: all 20 shared one admission bucket (15 refused as rate_limited) and the 5 admitted
    // had their frame forwarded with no client_ip.
    expect(await rejected(gw, "no_peer_address")).toBe(N);
    expect(await rejected(gw, "rate_limited")).toBe(0);
    expect(a.events.filter((e) => e.opcode === OpCode.Connect || e.opcode === OpCode.Trans)).toEqual([]);
    expect(gw.log.find("connection refused").length).toBeGreaterThan(0);
  });
});

describe("half-sent frames", () => {
  test("a frame not completed within partial_frame_timeout closes the client and gives its buffer back", async () => {
    const a = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      {
        server: { partial_frame_timeout: "300ms", first_message_timeout: "1m" },
        routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
      },
      { clock },
    );
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("whole"));
    expect(str((await c.next()).body)).toBe("whole");
    const big = encodeClientFrame(2, serverIdFor(T), new Uint8Array(65_000));
    c.sendRaw(big.subarray(0, 60_000));
    await eventually(() => gw.gateway.buffers.stats().outstandingBytes > 0, "the partial frame to be held");
    expect(await closes(gw, "partial_frame_timeout")).toBe(0);
    clock.tick(300); // the deadline is a step the test takes: the next sweep closes the client
    await c.closed;
    expect(await closes(gw, "partial_frame_timeout")).toBe(1);
    expect(gw.gateway.buffers.stats().outstandingBytes).toBe(0);
  });

  test("a client streaming large frames in unaligned pieces is not mistaken for a stalled one", async () => {
    const a = await scope.backend();
    const gw = scope.gateway({
      // Each frame takes at most two pieces (~300 ms); the whole stream about 3.3 s: a timer kept
      // from the first byte would fire, one restarted per frame would need a 1.7 s stall to.
      server: { partial_frame_timeout: "2s" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const c = await gw.connect();
    const frames = Array.from({ length: 16 }, (_, i) => encodeClientFrame(i, serverIdFor(T), new Uint8Array(40_000).fill(i)));
    const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) (stream.set(f, at), (at += f.length));
    // Pieces of 30,000 bytes: after every piece some frame is incomplete, but each completes.
    for (let off = 0; off < stream.length; off += 30_000) {
      c.sendRaw(stream.subarray(off, off + 30_000));
      await Bun.sleep(150); // pacing, not an assertion: how fast the pieces go
    }
    const replies = await c.frames(16, 10_000);
    expect(replies.map((f) => f.body[0])).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(await closes(gw, "partial_frame_timeout")).toBe(0);
    c.close();
  });

  test("the bytes held by all clients' partial frames are capped: the client that would pass the cap is closed", async () => {
    const a = await scope.backend();
    const gw = scope.gateway({
      // Room for three 64 KiB-class buffers, not four.
      server: { pending_input_limit: "200KiB", first_message_timeout: "1m" },
      routing: { rules: [rule(T, [`127.0.0.1:${a.port}`])] },
    });
    const half = encodeClientFrame(1, serverIdFor(T), new Uint8Array(65_000)).subarray(0, 60_000);
    const clients = [];
    for (let i = 0; i < 5; i++) {
      const c = await gw.connect();
      c.sendRaw(half);
      await eventually(async () => gw.gateway.buffers.stats().outstanding === Math.min(i + 1, 3) && (i < 3 || (await closes(gw, "pending_input_limit")) === i - 2), `client ${i} to be held or closed`);
      clients.push(c);
    }
    expect(clients.filter((c) => c.isClosed)).toHaveLength(2);
    expect(gw.gateway.buffers.stats().outstandingBytes).toBeLessThanOrEqual(200 * 1024);
    for (const c of clients) c.close();
    await eventually(() => gw.gateway.buffers.stats().outstanding === 0, "every buffer back");
  });
});

describe("clients paused for a stalled backend", () => {
  test("a paused client's close is noticed at once, with reason client_closed, and frees its slot", async () => {
    const stalled = scope.stalledBackend();
    const gw = scope.gateway({
      // No Ping timeout to come to the rescue: before, a paused client's close went unseen until then.
      backend: { connections_per_endpoint: 1, write_queue_high_water: "64KiB", write_queue_limit: "8MiB", ping_interval: "10m", ping_timeout: "10m" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    await eventually(() => stalled.connected, "gateway to connect");
    const pool = [...gw.gateway.backends.all()][0]!;
    const body = new Uint8Array(1_000);
    // Past twice high water every sender is paused, light ones too (below it only heavy ones
    // are), and a paused filler stops adding: so fillers are added until the queue is past it.
    const fillers: GameClient[] = [];
    for (let round = 0; round < 200 && pool.queuedBytes <= 2 * 64 * 1024; round++) {
      const filler = await gw.connect();
      fillers.push(filler);
      for (let i = 0; i < 100; i++) filler.send(1, serverIdFor(T), body);
      await Bun.sleep(20);
    }
    expect(pool.queuedBytes).toBeGreaterThan(2 * 64 * 1024);
    const pauses = () => gw.gateway.metrics.value("backend_backpressure_pauses_total");
    const clients = await Promise.all(Array.from({ length: 50 }, () => gw.connect()));
    const before = await pauses();
    for (const c of clients) c.send(1, serverIdFor(T), body);
    // A session bound while the queue is past that has its client paused.
    await eventually(() => gw.gateway.sessions.size === clients.length + fillers.length, "every client's session");
    await eventually(async () => (await pauses()) >= before + clients.length, "every client to be paused");
    // Frames sent while paused, then the player leaves.
    for (const c of clients) for (let i = 0; i < 10; i++) c.send(1, serverIdFor(T), body);
    await Bun.sleep(50);
    for (const c of clients) c.close();
    await eventually(() => gw.gateway.clientConnections === fillers.length, "the paused clients' closes to be seen");
    expect(await closes(gw, "client_closed")).toBe(clients.length);
    expect(await closes(gw, "backend_lost")).toBe(0);
    expect(gw.gateway.sessions.size).toBe(fillers.length);
    for (const f of fillers) f.close();
    stalled.resume(); // so the gateway's stop can deliver what is queued
  }, 30_000);

  test("a paused client that resets with bytes still unread is closed as client_error, not for the input budget", async () => {
    const stalled = scope.stalledBackend();
    const gw = scope.gateway({
      backend: { mode: "dedicated", write_queue_high_water: "64KiB", ping_interval: "10m", ping_timeout: "10m" },
      routing: { rules: [rule(T, [`127.0.0.1:${stalled.port}`])] },
    });
    const frame = encodeClientFrame(1, serverIdFor(T), new Uint8Array(65_000));
    const clients = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<net.Socket>((ok) => { const c = net.connect(gw.gateway.port, "127.0.0.1", () => ok(c)); })),
    );
    // Each pumps until the gateway has paused it and the kernel buffers between them are full.
    const pump = (c: net.Socket): void => {
      while (c.writableLength < 16 * 1024 * 1024 && c.write(frame));
    };
    for (const c of clients) pump(c);
    await eventually(async () => (await gw.gateway.metrics.value("backend_backpressure_pauses_total")) >= clients.length, "every client to be paused");
    let flushed = -1;
    await eventually(async () => {
      await Bun.sleep(100); // a poll interval: a few of them with no progress is what "stopped" means
      const now = clients.reduce((n, c) => n + c.bytesWritten - c.writableLength, 0);
      const settled = now === flushed;
      flushed = now;
      return settled;
    }, "the clients' bytes to stop moving");
    expect(flushed).toBeGreaterThan(clients.length * 1024 * 1024);
    for (const c of clients) c.resetAndDestroy();
    await eventually(() => gw.gateway.clientConnections === 0, "the resets to be seen");
    expect(await closes(gw, "client_error")).toBe(clients.length);
    // With more unread (1.2 MB each, an outside review's Python clients), Bun's read of the reset
    // socket overflowed the paused buffer and every one was counted here; in-process clients
    // leave less unread, so this guards the reason rather than reproducing that overflow.
    expect(await closes(gw, "pending_input_limit")).toBe(0);
    stalled.stop(); // its connections go too, so the gateway's stop does not wait on them
  }, 30_000);
});
