// The web page of the demo: the browser example (examples/browser/) served over plain HTTP so a
// new user can open it and play in the demo backend's chat room. Its own listener, not the admin
// server: the page needs no debug token, and the admin port's posture stays as it is. The page
// and its bundled script are imported as text, so the compiled binary embeds them.
//
// The page talks to the gateway's dedicated WebSocket listener (server.ws_listen_addr), whose
// port and path are written into the page's <meta> tags; the browser connects to the host it
// loaded the page from.
import type { Server } from "bun";
import page from "../../examples/browser/index.html" with { type: "text" };
import script from "../../examples/browser/dist/game.js" with { type: "text" };

export interface DemoWebOptions {
  /** Default 127.0.0.1: the demo is for one machine. */
  readonly host?: string;
  /** 0 (the default) picks an ephemeral port; read it back from `port`. */
  readonly port?: number;
  /** The gateway's dedicated WebSocket listener. */
  readonly wsPort: number;
  readonly wsPath: string;
  /** The ServerID the page's frames carry (a server type the demo backend answers). */
  readonly serverId: number;
}

/** bun-types call every *.html import an HTMLBundle; imported `with { type: "text" }` it is the file's text. */
function asText(imported: unknown, file: string): string {
  if (typeof imported !== "string") throw new Error(`${file} must be imported with { type: "text" }`);
  return imported;
}

/** index.html with its {{SLOTS}} filled; every slot must be present once, so a renamed one fails loudly. */
export function demoPageHtml(o: Pick<DemoWebOptions, "wsPort" | "wsPath" | "serverId">): string {
  let html = asText(page, "examples/browser/index.html");
  const slots: Record<string, string> = { WS_PORT: String(o.wsPort), WS_PATH: o.wsPath, SERVER_ID: String(o.serverId) };
  for (const [slot, value] of Object.entries(slots)) {
    const marker = `{{${slot}}}`;
    if (html.split(marker).length !== 2) throw new Error(`examples/browser/index.html must hold ${marker} exactly once`);
    // The values are numbers and a validated path (server.ws_path); escaped all the same, as attribute text.
    html = html.replace(marker, value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;"));
  }
  return html;
}

const COMMON_HEADERS = { "x-content-type-options": "nosniff", "cache-control": "no-store", "referrer-policy": "no-referrer" };

export class DemoWeb {
  private constructor(private readonly server: Server<undefined>) {}

  /** Throws when the address cannot be had (Bun's EADDRINUSE error). */
  static start(o: DemoWebOptions): DemoWeb {
    const html = demoPageHtml(o);
    const server = Bun.serve({
      hostname: o.host ?? "127.0.0.1",
      port: o.port ?? 0,
      routes: {
        "/": () => new Response(html, { headers: { ...COMMON_HEADERS, "content-type": "text/html; charset=utf-8" } }),
        "/game.js": () => new Response(script, { headers: { ...COMMON_HEADERS, "content-type": "text/javascript; charset=utf-8" } }),
      },
      fetch: () => new Response("not found\n", { status: 404, headers: COMMON_HEADERS }),
    });
    return new DemoWeb(server);
  }

  get port(): number {
    return this.server.port ?? 0;
  }

  get url(): string {
    return `http://${this.server.hostname}:${this.port}/`;
  }

  async stop(): Promise<void> {
    await this.server.stop(true);
  }
}
