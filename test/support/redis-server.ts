// A real redis-server for tests, on a loopback port of its own (redis-server has no "--port 0":
// a port is picked by binding a socket, released, then handed to redis-server, retried if taken
// meanwhile). Kept in memory only; restart() brings it back on the same port, empty unless told.
import { RedisClient, type Subprocess } from "bun";
import { createServer } from "node:net";

/** A loopback port free a moment ago (bound, then released): for programs that cannot take port 0. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  private admin: RedisClient | null = null;

  private constructor(readonly port: number) {}

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port (tries a few: another process may take the port first). */
  static async start(): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort());
      try {
        await server.launch();
        return server;
      } catch (e) {
        lastError = e;
        await server.kill();
      }
    }
    throw new Error(`redis-server would not start: ${String(lastError)}`);
  }

  private async launch(): Promise<void> {
    this.proc = Bun.spawn(["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = this.proc.stdout.getReader();
    let seen = "";
    const deadline = Date.now() + 10_000;
    // redis-server says when it accepts connections; an error (port taken) ends the process.
    while (!seen.includes("Ready to accept connections")) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} not ready: ${seen.slice(-500)}`);
      const { value, done } = await out.read();
      if (done) throw new Error(`redis-server on ${this.port} exited: ${seen.slice(-500)}`);
      seen += new TextDecoder().decode(value);
    }
    out.releaseLock();
    // Keep draining its output so a chatty server never blocks on a full pipe.
    void this.proc.stdout.pipeTo(new WritableStream()).catch(() => {});
    this.admin = new RedisClient(`redis://${this.addr}`);
  }

  /** A client for the test's own commands (SET, PUBLISH, HSET). */
  get client(): RedisClient {
    if (this.admin === null) throw new Error("redis-server is not running");
    return this.admin;
  }

  async kill(): Promise<void> {
    this.admin?.close();
    this.admin = null;
    if (this.proc !== null) {
      this.proc.kill("SIGKILL");
      await this.proc.exited;
      this.proc = null;
    }
  }

  /** Killed and started again on the same port: connected clients see the connection drop. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }
}
