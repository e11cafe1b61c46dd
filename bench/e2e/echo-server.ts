// A plain TCP echo server: every byte received is written back unchanged, in order. It is the
// floor of the end-to-end benchmark (scripts/bench-e2e.ts): the "direct" target, and the server
// HAProxy forwards to. Client frames come back exactly as sent, which is also what the gateway
// path returns (the demo backend echoes MessageID, ServerID and body).
//
//   bun bench/e2e/echo-server.ts [--host 127.0.0.1] [--port 0]
//
// Prints one line, `listening <host>:<port>`, once it accepts connections; SIGTERM/SIGINT stop it.
//
// Cheap on purpose: one handler object for every socket, no per-chunk allocation while the
// socket takes everything written (the usual case for small frames). Whatever the kernel does not
// take is copied into the connection's pending list and flushed on `drain`; while anything is
// pending the socket stops reading, so a peer that does not read cannot grow this process.
import type { Socket } from "bun";
import { flagValue, withTwoDashFlags } from "../../src/cli/args.ts";

interface Conn {
  /** Bytes not yet taken by the socket, oldest first (null: nothing pending). */
  pending: Uint8Array[] | null;
}

const argv = withTwoDashFlags(process.argv.slice(2));

const arg = (name: string, fallback: string): string => flagValue(argv, name, fallback);

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));

/** Writes what is pending; true when all of it went out. */
function flush(socket: Socket<Conn>, c: Conn): boolean {
  const list = c.pending!;
  while (list.length > 0) {
    const buf = list[0]!;
    const n = socket.write(buf);
    if (n < 0) return false;
    if (n < buf.length) {
      list[0] = buf.subarray(n);
      return false;
    }
    list.shift();
  }
  c.pending = null;
  return true;
}

const listener = Bun.listen<Conn>({
  hostname: host,
  port,
  socket: {
    binaryType: "uint8array",
    open(socket) {
      socket.setNoDelay(true);
      socket.data = { pending: null };
    },
    data(socket, chunk) {
      const c = socket.data;
      if (c.pending !== null) {
        // Reading is paused while something is pending; a chunk already on its way joins the queue.
        c.pending.push(chunk.slice());
        return;
      }
      const n = socket.write(chunk);
      if (n === chunk.length || n < 0) return;
      // The chunk is only valid during this call: keep a copy of what was not taken.
      c.pending = [chunk.slice(n)];
      socket.pause();
    },
    drain(socket) {
      const c = socket.data;
      if (c.pending !== null && flush(socket, c)) socket.resume();
    },
    close(socket) {
      if (socket.data !== undefined) socket.data.pending = null;
    },
    error() {},
  },
});

process.stdout.write(`listening ${host}:${listener.port}\n`);
const stop = (): void => {
  listener.stop(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
