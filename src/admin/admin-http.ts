// The admin port's HTTP/1.1 server, on a plain TCP listener, because the admin port needs what
// Bun.serve cannot give (nor node:http, whose maxConnections Bun ignores): a cap on open
// connections, and a deadline for a request to arrive. Without them, 20,000 idle connections to
// the admin port took every descriptor of the process. At the cap a new connection takes the slot
// of the oldest one still waiting for its request (so idle connections cannot keep /health failing);
// only when every slot is answering a request is the new one refused with a 503.
// One request per connection ("connection: close"): probes, scrapers and the status page open a
// connection per request, so the cap counts requests in flight plus idle connections not yet
// timed out, and nothing waits between requests.

import type { Socket, TCPSocketListener } from "bun";
import { type Binder, directBinder } from "../net/binder.ts";

export type AdminHandler = (req: Request) => Response | Promise<Response>;

export interface AdminHttpLimits {
  /** Connections open at once; one more is answered 503 and closed at once. */
  readonly maxConnections: number;
  /** The whole request must arrive within this, and a response must make progress within it. */
  readonly idleTimeoutMs: number;
}

/** Request line and headers larger than this are answered 431. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");
const REASONS: Record<number, string> = {
  200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
  431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
  503: "Service Unavailable",
};

/** One connection: the request head as it arrives, then the response as the socket takes it. */
class Exchange {
  /** reading: the request head is arriving; answering: the handler runs; writing: `out` is going out. */
  state: "reading" | "answering" | "writing" = "reading";
  head: Buffer = Buffer.alloc(0);
  out: Uint8Array = new Uint8Array(0);
  written = 0;
  timer: ReturnType<typeof setTimeout> | null = null;
  /** Fires when the connection closes, so a long handler (a CPU profile) can stop early: `req.signal`. */
  readonly closed = new AbortController();
  constructor(
    /** The server that accepted it: a dev hot reload hands the socket newer handlers, not a newer owner. */
    readonly owner: AdminHttpServer,
    /** False for a connection refused at the cap (it never counted toward it) or evicted from it. */
    public counted: boolean,
  ) {}
}

type AdminSocket = Socket<Exchange>;

export class AdminHttpServer {
  private listener: TCPSocketListener<Exchange> | null = null;
  private open = 0;
  private refusedCount = 0;
  private evictedCount = 0;
  /**
   * Counted connections whose request has not arrived yet, oldest first (a Set keeps insertion
   * order). At the cap the oldest of them makes room for a new connection: a probe or scraper
   * sends its request at once, so idle connections cannot keep /health answering 503.
   */
  private readonly waiting = new Set<AdminSocket>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    /** Read at each accept, so a reload's new limits apply to the next connection. */
    private readonly limits: () => AdminHttpLimits,
    private readonly handler: AdminHandler,
  ) {}

  get boundPort(): number {
    return this.listener?.port ?? 0;
  }

  get hostname(): string {
    return this.listener?.hostname ?? this.host;
  }

  /** Connections refused at the cap since start (every slot was answering a request). */
  get refused(): number {
    return this.refusedCount;
  }

  /** Connections closed before their request arrived, to make room at the cap, since start. */
  get evicted(): number {
    return this.evictedCount;
  }

  get connections(): number {
    return this.open;
  }

  /** Binds (through `binder`, which names `key` in a failure); throws ListenError. */
  start(key: string, binder: Binder = directBinder): void {
    this.listener = binder.listen<Exchange>(key, {
      hostname: this.host,
      port: this.port,
      socket: {
        open: (s) => this.onOpen(s),
        data: (s, chunk) => s.data?.owner.onData(s, chunk),
        drain: (s) => s.data?.owner.flush(s),
        close: (s) => s.data?.owner.onClose(s),
        error: () => {}, // the close handler follows
      },
    });
  }

  stop(): void {
    this.listener?.stop(true);
    this.listener = null;
  }

  /** Dev hot reload: newer code has reloaded the listener with its handlers; leave it open. */
  handOver(): void {
    this.listener = null;
  }

  private onOpen(s: AdminSocket): void {
    if (this.open >= this.limits().maxConnections && !this.evictOldestWaiting()) {
      // Every slot is a request being answered: this one has to wait its turn elsewhere.
      this.refusedCount++;
      s.data = new Exchange(this, false);
      s.write("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      s.end();
      return;
    }
    this.open++;
    s.data = new Exchange(this, true);
    this.waiting.add(s);
    this.arm(s);
  }

  /** Closes the connection that has waited longest without sending its request; false if none has. */
  private evictOldestWaiting(): boolean {
    for (const victim of this.waiting) {
      this.waiting.delete(victim);
      this.disarm(victim.data);
      victim.data.counted = false; // its slot is the new connection's from now, not when its close arrives
      this.open--;
      this.evictedCount++;
      victim.terminate();
      return true;
    }
    return false;
  }

  private onClose(s: AdminSocket): void {
    const x = s.data;
    if (x === undefined) return;
    this.disarm(x);
    this.waiting.delete(s);
    if (x.counted) this.open--;
    x.closed.abort();
  }

  /** (Re)starts the connection's deadline: no request by then, or no response progress, closes it. */
  private arm(s: AdminSocket): void {
    this.disarm(s.data);
    s.data.timer = setTimeout(() => s.terminate(), this.limits().idleTimeoutMs);
  }

  private disarm(x: Exchange): void {
    if (x.timer !== null) clearTimeout(x.timer);
    x.timer = null;
  }

  private onData(s: AdminSocket, chunk: Uint8Array): void {
    const x = s.data;
    if (!x.counted || x.state !== "reading") return; // one request per connection: later bytes are ignored
    x.head = x.head.length === 0 ? Buffer.from(chunk) : Buffer.concat([x.head, chunk]);
    const end = x.head.indexOf(HEAD_END);
    if (end < 0) {
      if (x.head.length > MAX_HEAD_BYTES) void this.answer(s, "GET", new Response("request head too large\n", { status: 431 }));
      return;
    }
    const parsed = parseHead(x.head.subarray(0, end).toString("latin1"), x.closed.signal);
    x.head = Buffer.alloc(0);
    // The request is in: the handler may take its time (a heap snapshot does, a CPU profile runs
    // for as long as asked); the deadline applies again once the response is being written.
    this.disarm(x);
    if (typeof parsed === "string") {
      void this.answer(s, "GET", new Response(`${parsed}\n`, { status: 400 }));
    } else if (parsed.method !== "GET" && parsed.method !== "HEAD") {
      void this.answer(s, "GET", new Response("only GET and HEAD\n", { status: 405, headers: { allow: "GET, HEAD" } }));
    } else {
      void this.answer(s, parsed.method, Promise.resolve().then(() => this.handler(parsed)));
    }
  }

  private async answer(s: AdminSocket, method: string, pending: Response | Promise<Response>): Promise<void> {
    const x = s.data;
    x.state = "answering";
    this.waiting.delete(s);
    let res: Response;
    try {
      res = await pending;
    } catch {
      res = new Response("internal error\n", { status: 500 });
    }
    const body = method === "HEAD" ? new Uint8Array(0) : new Uint8Array(await res.arrayBuffer());
    let head = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? ""}\r\n`;
    res.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "connection" && name !== "transfer-encoding") head += `${name}: ${value}\r\n`;
    });
    head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    const headBytes = Buffer.from(head, "latin1");
    const out = new Uint8Array(headBytes.length + body.length);
    out.set(headBytes, 0);
    out.set(body, headBytes.length);
    x.state = "writing";
    x.out = out;
    x.written = 0;
    this.flush(s);
  }

  /** Writes what the socket takes (Bun may take part of a buffer); the rest on drain. */
  private flush(s: AdminSocket): void {
    const x = s.data;
    if (x.state !== "writing" || x.written === x.out.length) return;
    const n = s.write(x.out, x.written, x.out.length - x.written);
    if (n < 0) return; // closed: the close handler cleans up
    x.written += n;
    if (x.written === x.out.length) {
      this.disarm(x);
      s.end();
    } else if (n > 0 || x.timer === null) {
      this.arm(s); // a client that stops reading is closed after idle_timeout without progress
    }
  }
}

/** "GET /path HTTP/1.1" and its headers, as a Request; a string says what was wrong. */
function parseHead(text: string, closed: AbortSignal): Request | string {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? "");
  if (m === null) return "malformed request line";
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) return "malformed header line";
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const target = m[2]!;
  if (!target.startsWith("/")) return "expected a path starting with /";
  return new Request(`http://admin${target}`, { method: m[1]!, headers, signal: closed });
}
