// Drives test/support/grpc-game-server.mjs, a game server speaking the reference's gRPC transport,
// as a child process under Node or Bun; reads its JSON event lines back.
import type { Subprocess } from "bun";
import { eventually } from "./eventually.ts";

export const GAME_GATEWAY_PROTO = new URL("../../src/backend/grpc/game_gateway.proto", import.meta.url).pathname;
const SCRIPT = new URL("./grpc-game-server.mjs", import.meta.url).pathname;

export type Runtime = "node" | "bun";

export interface ServerEvent {
  readonly event: string;
  readonly [k: string]: unknown;
}

export interface ServerPacket extends ServerEvent {
  readonly event: "packet";
  readonly session_id: string;
  readonly msg_id: number;
  readonly payload: string;
  readonly metadata: Record<string, string>;
}

export class GrpcGameServer {
  readonly events: ServerEvent[] = [];
  port = 0;

  private constructor(private readonly proc: Subprocess<"ignore", "pipe", "pipe">) {}

  /** Starts the server on port (0: an ephemeral one) and waits until it listens. */
  static async start(runtime: Runtime, port = 0, flags: string[] = []): Promise<GrpcGameServer> {
    const exe = runtime === "node" ? "node" : process.execPath;
    const proc = Bun.spawn([exe, SCRIPT, GAME_GATEWAY_PROTO, String(port), ...flags], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const s = new GrpcGameServer(proc);
    void s.read();
    const listening = await eventually(() => s.events.find((e) => e.event === "listening"), `the ${runtime} gRPC game server to listen`, 20_000);
    s.port = listening.port as number;
    return s;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  packets(): ServerPacket[] {
    return this.events.filter((e): e is ServerPacket => e.event === "packet");
  }

  /** The packets of one session (its ID as a decimal string). */
  of(sessionId: string): ServerPacket[] {
    return this.packets().filter((p) => p.session_id === sessionId);
  }

  /** Kills the process (SIGKILL: the stream is lost, not ended). */
  async kill(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }

  private async read(): Promise<void> {
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of this.proc.stdout) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line !== "") this.events.push(JSON.parse(line) as ServerEvent);
      }
    }
  }
}
