// End to end over loopback: real gateway, real demo backends, real clients.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { DemoBackend, DemoMessage } from "../../src/demo/demo-backend.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { eventually, rule, startGateway, str, text, type TestGateway } from "../support/harness.ts";

const ACCOUNT = 10;
const GAME = 200;

describe("relay through two backends", () => {
  let a: DemoBackend;
  let b: DemoBackend;
  let gw: TestGateway;

  beforeAll(async () => {
    a = await DemoBackend.start({ port: 0, name: "a" });
    b = await DemoBackend.start({ port: 0, name: "b" });
    gw = startGateway({
      connection_pool: { max_connections: 2000 },
      routing: { rules: [rule(ACCOUNT, [`127.0.0.1:${a.port}`]), rule(GAME, [`127.0.0.1:${b.port}`])] },
    });
  });

  afterAll(async () => {
    await gw.stop();
    await a.stop();
    await b.stop();
  });

  test("500 concurrent clients x 100 messages: every reply reaches exactly its sender, in order", async () => {
    const CLIENTS = 500;
    const MESSAGES = 100;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => gw.connect()));
    await Promise.all(
      clients.map(async (c, i) => {
        const serverId = serverIdFor(i % 2 === 0 ? ACCOUNT : GAME, 1 + (i % 50), i % 256);
        for (let m = 0; m < MESSAGES; m++) c.send(m, serverId, text(`client-${i}-msg-${m}`));
        const replies = await c.frames(MESSAGES, 30_000);
        for (let m = 0; m < MESSAGES; m++) {
          expect(str(replies[m]!.body)).toBe(`client-${i}-msg-${m}`);
          expect(replies[m]!.messageId).toBe(m);
          expect(replies[m]!.serverId).toBe(serverId);
        }
      }),
    );
    // Both backends carried their half, over a handful of shared connections.
    expect(a.stats().framesByOpcode[OpCode.Trans]).toBeGreaterThanOrEqual((CLIENTS / 2) * MESSAGES);
    expect(b.stats().framesByOpcode[OpCode.Trans]).toBeGreaterThanOrEqual((CLIENTS / 2) * MESSAGES);
    expect(a.stats().connections).toBeLessThanOrEqual(2);
    expect(await gw.gateway.metrics.value("messages_processed_total", { direction: "client_to_backend" })).toBeGreaterThanOrEqual(CLIENTS * MESSAGES);
    // 500 idle clients with live sessions hold no pooled input buffer.
    expect(gw.gateway.sessions.size).toBe(CLIENTS);
    expect(gw.gateway.buffers.stats().outstanding).toBe(0);
    for (const c of clients) c.close();
    await eventually(() => gw.gateway.sessions.size === 0, "all sessions to end");
  });

  test("bodies of 0 and 65,535 bytes and the isZip flag pass through untouched", async () => {
    const c = await gw.connect();
    const zipped = (serverIdFor(GAME, 32767, 255) | 0x80000000) >>> 0;
    const big = new Uint8Array(65535).map((_, i) => (i * 31) & 0xff);
    c.send(0xffff, zipped, new Uint8Array(0));
    c.send(1, zipped, big);
    const [empty, full] = await c.frames(2, 10_000);
    expect(empty!.body.length).toBe(0);
    expect(empty!.messageId).toBe(0xffff);
    expect(empty!.serverId).toBe(zipped);
    expect(full!.body).toEqual(big);
    c.close();
  });

  test("Connect precedes the first Trans and Disconnect follows the client's close", async () => {
    const c = await gw.connect();
    c.send(7, serverIdFor(ACCOUNT), text("hello"));
    await c.next();
    const connect = a.events.findLast((e) => e.opcode === OpCode.Connect)!;
    expect(connect.json).toMatchObject({ client_ip: "127.0.0.1", protocol: "tcp", gateway: "test-gw" });
    expect(typeof (connect.json as { connect_time: unknown }).connect_time).toBe("number");
    const sid = connect.sessionId;
    expect(sid).toBeGreaterThan(0n);
    c.close();
    const disconnect = await eventually(
      () => a.events.find((e) => e.opcode === OpCode.Disconnect && e.sessionId === sid),
      "Disconnect for the closed session",
    );
    expect(disconnect.json).toMatchObject({ reason: "client_closed" });
    expect(typeof (disconnect.json as { disconnect_time: unknown }).disconnect_time).toBe("number");
  });

  test("Kick delivers what was queued, then closes the client", async () => {
    const c = await gw.connect();
    const bystander = await gw.connect();
    c.send(DemoMessage.KickMe, serverIdFor(GAME), text("cheating"));
    bystander.send(1, serverIdFor(GAME), text("still here"));
    const bye = await c.next();
    expect(str(bye.body)).toBe("bye");
    await c.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "kick" })).toBeGreaterThanOrEqual(1);
    expect(str((await bystander.next()).body)).toBe("still here");
    bystander.send(2, serverIdFor(GAME), text("and still"));
    expect(str((await bystander.next()).body)).toBe("and still");
    bystander.close();
  });

  test("Multicast reaches each listed session; Broadcast reaches every session of that backend only", async () => {
    const [p1, p2, p3, other, elsewhere] = await Promise.all([1, 2, 3, 4, 5].map(() => gw.connect()));
    for (const p of [p1!, p2!, p3!]) {
      p.send(DemoMessage.Join, serverIdFor(GAME), text("room-1"));
      expect(str((await p.next()).body)).toBe("joined room-1");
    }
    other!.send(DemoMessage.Join, serverIdFor(GAME), text("room-2"));
    await other!.next();
    elsewhere!.send(1, serverIdFor(ACCOUNT), text("on backend a"));
    await elsewhere!.next();

    p2!.send(DemoMessage.Say, serverIdFor(GAME, 3), text("hi room"));
    for (const p of [p1!, p2!, p3!]) {
      const f = await p.next();
      expect(str(f.body)).toBe("hi room");
      expect(f.messageId).toBe(DemoMessage.Say);
    }

    other!.send(DemoMessage.Shout, serverIdFor(GAME), text("everyone on b"));
    for (const p of [p1!, p2!, p3!, other!]) expect(str((await p.next()).body)).toBe("everyone on b");
    // The client on backend a heard neither: its next frame is the reply to its own next message.
    elsewhere!.send(2, serverIdFor(ACCOUNT), text("ping"));
    expect(str((await elsewhere!.next()).body)).toBe("ping");
    for (const p of [p1!, p2!, p3!, other!, elsewhere!]) p.close();
  });
});
