// The ClientPort contract: what the session layer relies on from any client transport (raw TCP
// today, WebSocket next), as one suite each transport runs with a factory of its own (as Hono runs
// one suite over every router). Everything goes over real loopback sockets; the peer speaks in
// whole client frames, so a transport that wraps them (WebSocket messages) maps them itself.
import { afterEach, describe, expect, test } from "bun:test";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import type { ClientEvents, ClientPort, ClientProtocol } from "../../src/net/client-port.ts";
import { concat } from "../support/bytes.ts";
import { eventually } from "../support/eventually.ts";
import { RecordedEvents } from "../support/recorded-events.ts";

/** The client on the other end of a port: a real connection. */
export interface ClientPortPeer {
  /** Sends bytes of client frames; `pieces` splits them into that many writes, to test reassembly. */
  send(frames: Uint8Array, pieces?: number): Promise<void>;
  /** Every client frame byte received so far, in order. */
  received(): Uint8Array;
  readonly closed: boolean;
  /** Stops reading (the kernel's buffers then fill up and the port must queue). */
  pauseReading(): void;
  /** Closes from the client's side. */
  end(): void;
}

export interface ClientPortUnderTest {
  readonly peer: ClientPortPeer;
  /** Stops the listener and closes what is left. */
  dispose(): Promise<void>;
}

export interface ClientPortContractOptions {
  /** Output bytes the port may queue for a client that does not read (server.write_queue_limit). */
  readonly writeQueueLimit: number;
}

/**
 * Starts a real listener of the transport reporting to `events` and connects one client to it;
 * the port that connection becomes is the one events.onClientOpen receives.
 */
export type ClientPortFactory = (events: ClientEvents, options: ClientPortContractOptions) => Promise<ClientPortUnderTest>;

const SERVER_ID = 0x0001_0007;
const frame = (messageId: number, size: number, fill: number) => encodeClientFrame(messageId, SERVER_ID, new Uint8Array(size).fill(fill));

export function clientPortContract(transport: ClientProtocol, factory: ClientPortFactory): void {
  describe(`ClientPort contract: ${transport}`, () => {
    let open: ClientPortUnderTest[] = [];
    afterEach(async () => {
      for (const o of open) await o.dispose();
      open = [];
    });

    async function connect(options: Partial<ClientPortContractOptions> = {}) {
      const events = new RecordedEvents();
      const under = await factory(events, { writeQueueLimit: 256 * 1024, ...options });
      open.push(under);
      const port: ClientPort = await eventually(() => events.ports[0], "the listener to accept the connection");
      return { events, port, peer: under.peer };
    }

    test("names its transport and the peer's address", async () => {
      const { port } = await connect();
      expect(port.protocol).toBe(transport);
      expect(port.remoteAddress).toBe("127.0.0.1");
      expect(port.session).toBeNull();
      expect(port.closing).toBe(false);
    });

    test("frames from the client reach the session layer whole and in order, however the stream was split", async () => {
      const { events, peer } = await connect();
      const frames = [frame(1, 10, 1), frame(2, 0, 2), frame(3, 3000, 3)];
      await peer.send(concat(frames), 7);
      await eventually(() => events.frames.length === frames.length, "three frames");
      expect(events.frames).toEqual(frames);
    });

    test("send() copies: the caller may reuse its buffer at once, and frames arrive in order", async () => {
      const { port, peer } = await connect();
      const buf = new Uint8Array(64);
      const sent: Uint8Array[] = [];
      for (let i = 0; i < 10; i++) {
        const f = frame(i, 20 + i, i);
        buf.set(f);
        port.send(buf, 0, f.length);
        buf.fill(0xee);
        sent.push(f);
        if (i % 3 === 2) port.flush();
      }
      port.flush();
      const want = concat(sent);
      await eventually(() => peer.received().length >= want.length, "every frame at the client");
      expect(peer.received()).toEqual(want);
    });

    test("lend() then flush() before yielding: the lender may reuse its buffer after the flush", async () => {
      const { port, peer } = await connect();
      const lender = concat([frame(1, 100, 0xa1), frame(2, 5, 0xa2)]);
      const want = lender.slice();
      port.lend(lender, 0, 108);
      port.lend(lender, 108, lender.length - 108);
      port.flush();
      lender.fill(0);
      await eventually(() => peer.received().length >= want.length, "both lent frames at the client");
      expect(peer.received()).toEqual(want);
    });

    test("close() delivers what is queued, then closes; the first reason is the one reported", async () => {
      const { port, peer, events } = await connect();
      const big = frame(9, 60_000, 9);
      for (let i = 0; i < 4; i++) port.send(big, 0, big.length);
      port.close("kick");
      port.close("idle_timeout");
      expect(port.closing).toBe(true);
      await eventually(() => peer.closed, "the client to see the close");
      expect(peer.received()).toEqual(concat([big, big, big, big]));
      await eventually(() => events.closed.length === 1, "one close report");
      expect(events.closed).toEqual(["kick"]);
    });

    test("a client closing its side is reported once, as client_closed", async () => {
      const { port, peer, events } = await connect();
      peer.end();
      await eventually(() => events.closed.length > 0, "the close report");
      expect(events.closed).toEqual(["client_closed"]);
      expect(port.closing).toBe(true);
    });

    test("reading paused for backpressure loses nothing: resumed, the frames arrive in order", async () => {
      const { port, peer, events } = await connect();
      port.pauseReading();
      const frames = Array.from({ length: 20 }, (_, i) => frame(i, 100 * i, i));
      await peer.send(concat(frames), 3);
      port.resumeReading();
      await eventually(() => events.frames.length === frames.length, "every frame after resuming");
      expect(events.frames).toEqual(frames);
    });

    test("a client that does not read is closed as slow_reader once its queue passes the bound", async () => {
      const { port, peer, events } = await connect({ writeQueueLimit: 64 * 1024 });
      peer.pauseReading();
      const f = frame(1, 16 * 1024, 1);
      // The kernel's buffers take some megabytes first; 64 MiB is far past any of them.
      let accepted = 0;
      for (; accepted < 4096; accepted++) {
        if (!port.send(f, 0, f.length)) break;
        port.flush();
        if (accepted % 64 === 63) await Bun.sleep(0); // lets the kernel report a full buffer
      }
      expect(accepted).toBeLessThan(4096);
      expect(port.closing).toBe(true);
      await eventually(() => events.closed.length === 1, "the close report");
      expect(events.closed).toEqual(["slow_reader"]);
    });
  });
}
