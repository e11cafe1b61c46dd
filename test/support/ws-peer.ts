// A WebSocket client built from parts that are not the gateway's: a raw Bun TCP socket carrying
// websocket-driver's client (its own handshake, masking and framing). Unlike a browser-style
// WebSocket it can stop reading, so tests can make the gateway's output back up.
import type { Socket } from "bun";
import websocket from "websocket-driver";
import { concat } from "./bytes.ts";
import { eventually } from "./eventually.ts";
import type { ClientPortUnderTest } from "../contracts/client-port.contract.ts";

export class WsPeer {
  private readonly messages: Uint8Array[] = [];
  readonly texts: string[] = [];
  /** The close code and reason the server sent, once closed. */
  closeEvent: { code: number; reason: string } | null = null;
  /** The TCP connection is gone. */
  socketClosed = false;
  opened = false;
  private constructor(
    private readonly socket: Socket<undefined>,
    private readonly driver: ReturnType<typeof websocket.client>,
  ) {}

  /**
   * Connects and completes the handshake, with `headers` added to the upgrade request (Origin,
   * X-Forwarded-For, traceparent); rejects when the server answers with anything but 101.
   */
  static async connect(port: number, path = "/ws", host = "127.0.0.1", headers: Record<string, string> = {}): Promise<WsPeer> {
    const driver = websocket.client(`ws://${host}:${port}${path}`);
    for (const [name, value] of Object.entries(headers)) driver.setHeader(name, value);
    let peer: WsPeer | null = null;
    // What the socket has not taken yet, written on its drain (frames must reach the wire whole).
    const unsent: Uint8Array[] = [];
    const flush = (s: Socket<undefined>) => {
      while (unsent.length > 0) {
        const head = unsent[0]!;
        const n = Math.max(0, s.write(head));
        if (n < head.length) {
          unsent[0] = head.subarray(n);
          return;
        }
        unsent.shift();
      }
    };
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => void driver.io.write(Buffer.from(chunk)),
        drain: (s) => flush(s),
        close: () => {
          if (peer !== null) peer.socketClosed = true;
        },
        error: () => {},
      },
    });
    peer = new WsPeer(socket, driver);
    const p = peer;
    driver.io.on("data", (chunk) => {
      unsent.push(new Uint8Array(chunk));
      if (unsent.length === 1) flush(socket);
    });
    driver.messages.on("data", (m) => {
      if (typeof m === "string") p.texts.push(m);
      else p.messages.push(new Uint8Array(m));
    });
    driver.on("open", () => void (p.opened = true));
    driver.on("close", (e) => {
      p.closeEvent = { code: e.code, reason: e.reason };
      socket.end();
    });
    driver.on("error", () => {});
    driver.start();
    await eventually(() => p.opened || p.closeEvent !== null || p.socketClosed, "the WebSocket handshake");
    if (!p.opened) throw new Error(`WebSocket handshake refused (status ${driver.statusCode ?? "none"})`);
    return p;
  }

  /** Sends bytes as binary messages; `pieces` splits them into that many messages. */
  async send(bytes: Uint8Array, pieces = 1): Promise<void> {
    const step = Math.max(1, Math.ceil(bytes.length / pieces));
    for (let at = 0; at < bytes.length; at += step) {
      this.driver.binary(Buffer.from(bytes.subarray(at, Math.min(bytes.length, at + step))));
      await Bun.sleep(0);
    }
  }

  sendText(text: string): void {
    this.driver.text(text);
  }

  /** Every binary byte received so far, in order. */
  received(): Uint8Array {
    return concat(this.messages);
  }

  get messageCount(): number {
    return this.messages.length;
  }

  get closed(): boolean {
    return this.closeEvent !== null || this.socketClosed;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  /** Starts the closing handshake. */
  end(): void {
    this.driver.close();
  }

  terminate(): void {
    this.socket.terminate();
  }

  /** Ends the TCP connection (FIN) with no close frame: a client that just drops off. */
  dropConnection(): void {
    this.socket.end();
  }
}

/** A WsPeer as the ClientPort contract suite drives it; disposing it also stops the listener it reached. */
export function wsPortUnderTest(ws: WsPeer, listener: { stop(): void; readonly connections: number }): ClientPortUnderTest {
  return {
    peer: {
      send: (frames, pieces) => ws.send(frames, pieces),
      received: () => ws.received(),
      get closed() {
        return ws.closed;
      },
      pauseReading: () => ws.pauseReading(),
      end: () => ws.end(),
    },
    async dispose() {
      ws.terminate();
      listener.stop();
      await eventually(() => listener.connections === 0, "the listener's connections to close");
    },
  };
}
