import websocket, { type Driver } from "websocket-driver";
import type { BufferPool } from "./buffer-pool.ts";
import { type ByteSink, QueuedSocketWriter } from "./socket-writer.ts";

// A WebSocket spoken over a byte stream the gateway already accepted (the TCP client port, after
// protocol sniffing): websocket-driver parses the handshake and frames, both ways. Bun cannot hand
// an accepted socket to its native WebSocket server, so this path costs more per message than the
// dedicated listener (docs/performance.md has the numbers).
//
// As a ByteSink it takes one binary message per write() while the socket keeps up, and nothing
// (0) while the frames it produced still wait: the port's own bounded queue then holds the output.

/** What the stream tells the port that owns it. */
export interface WebSocketStreamOwner {
  /** A binary message's payload: bytes of the framed client stream. */
  onStreamBytes(b: Uint8Array): void;
  /** A text message arrived: outside the wire contract. */
  onStreamText(): void;
  /** The closing handshake completed or the driver failed the connection (code 1000/1001: a clean close). */
  onStreamClosed(code: number): void;
  /** Frames waiting for the socket passed their bound. */
  onStreamOverflow(): void;
}

/** A WebSocket frame's header and more: what one message adds to its payload, with room to spare. */
const FRAME_OVERHEAD = 16;
/**
 * RFC 6455 5.1: a server fails a connection whose client frame is unmasked with 1002 (protocol
 * error), as Bun's listener does; websocket-driver 0.8 says 1003 ("unacceptable"), a code it uses
 * for nothing else (hybi.js), so this connection's driver maps that name to 1002.
 */
const PROTOCOL_ERROR = 1002;

/** The subprotocol answered to a Sec-WebSocket-Protocol offer: the first offered, as Bun's listener answers. */
export function firstOfferedSubprotocol(offer: string | undefined): string {
  if (offer === undefined) return "";
  const comma = offer.indexOf(",");
  return (comma < 0 ? offer : offer.slice(0, comma)).trim();
}

/**
 * websocket-driver's per-connection (Hybi) driver, created once the handshake's header is parsed.
 * Its parser keeps a message's bytes until the message is whole: frame bytes not parsed yet in
 * `_reader` (StreamReader's `_queueSize`), finished fragments of an unfinished message in
 * `_message` (`length`). The driver has no public way to ask (hybi.js, 0.7/0.8).
 */
interface HybiDriver {
  ERRORS?: Record<string, number>;
  _reader?: { _queueSize?: number };
  _message?: { length?: number };
}

export class WebSocketStream implements ByteSink {
  private readonly driver: Driver;
  /** Frames the socket has not taken yet. */
  private readonly raw: QueuedSocketWriter;
  /** The driver's parser once the handshake is answered: what it holds is read from it. */
  private hybi: HybiDriver | null = null;
  private released = false;

  constructor(socket: ByteSink, pool: BufferPool, writeQueueLimit: number, maxPayload: number, owner: WebSocketStreamOwner) {
    const driver = (this.driver = websocket.server({ maxLength: maxPayload }));
    const raw = (this.raw = new QueuedSocketWriter(socket, pool, writeQueueLimit + FRAME_OVERHEAD));
    driver.io.on("data", (chunk) => {
      if (!raw.write(chunk, 0, chunk.length)) owner.onStreamOverflow();
    });
    // The header was checked for an upgrade before the stream was made; the driver checks the rest.
    // "connect" comes while handshake() feeds the header, so the 101 is written before any frame.
    driver.on("connect", () => {
      const hybi = (driver as unknown as { _delegate?: HybiDriver })._delegate;
      if (hybi?.ERRORS !== undefined) hybi.ERRORS = { ...hybi.ERRORS, unacceptable: PROTOCOL_ERROR };
      this.hybi = hybi ?? null;
      // Browsers refuse a 101 that answers no subprotocol when they offered some.
      const chosen = firstOfferedSubprotocol(driver.headers["sec-websocket-protocol"]);
      if (chosen !== "") driver.setHeader("Sec-WebSocket-Protocol", chosen);
      driver.start();
    });
    driver.messages.on("data", (m) => (typeof m === "string" ? owner.onStreamText() : owner.onStreamBytes(m)));
    driver.on("close", (e) => owner.onStreamClosed(e.code));
    driver.on("error", () => {}); // close follows
  }

  /**
   * The handshake's header (up to and with its blank line), then what followed it in the same
   * reads. The driver must have answered (start()) before it parses a frame: one parsed earlier
   * throws inside the driver and the handshake is never answered. So the header goes in alone.
   */
  handshake(header: Uint8Array, rest: Uint8Array): void {
    this.input(header);
    if (rest.length > 0) this.input(rest);
  }

  /** Bytes read from the socket after the handshake: frames. */
  input(chunk: Uint8Array): void {
    // A copy, as a Buffer: the driver parses Buffers only and keeps a partial frame's chunks by
    // reference, while the caller's bytes may be reused (held input is drained from a pooled ring).
    this.driver.io.write(Buffer.from(chunk));
  }

  /**
   * Input bytes the driver holds for a message not yet whole (a partial frame, and earlier
   * fragments of a fragmented message): counted in the held-input budget like a partial game
   * frame, since a client can make them as large as ws_max_payload_length. 0 once released.
   */
  get heldBytes(): number {
    const hybi = this.hybi;
    if (hybi === null || this.released) return 0;
    return (hybi._reader?._queueSize ?? 0) + (hybi._message?.length ?? 0);
  }

  write(data: Uint8Array, byteOffset = 0, byteLength = data.length - byteOffset): number {
    if (this.raw.queuedBytes > 0) return 0;
    // A view, not a copy: the driver copies the payload into the frame it builds.
    this.driver.binary(Buffer.from(data.buffer, data.byteOffset + byteOffset, byteLength));
    return byteLength;
  }

  /** Writes frames still waiting (on the socket's drain); true once none wait. */
  flush(): boolean {
    return this.raw.flush();
  }

  get waiting(): boolean {
    return this.raw.queuedBytes > 0;
  }

  /** Queues a ping (the client's pong comes back as input, which is what the idle check watches). */
  ping(): void {
    this.driver.ping();
  }

  /** Queues a close frame with this code and text. */
  close(code: number, reason: string): void {
    this.driver.close(reason, code);
  }

  release(): void {
    this.released = true;
    this.raw.release();
  }
}
