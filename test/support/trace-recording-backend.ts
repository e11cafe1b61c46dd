// A wire-protocol backend for trace tests: reads the 33-byte gate header of every Trans, records
// the trace and span IDs each session's frames carried, and echoes each Trans to its session.
import type { Socket } from "bun";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { FrameReader } from "../../src/net/frame-reader.ts";
import { BackendFrameLayout } from "../../src/protocol/layouts.ts";
import { OpCode, decodeBackendFrame, encodeBackendFrame } from "../../src/protocol/server-frame.ts";

/** What one session's Trans frames carried: IDs as lowercase hex, in wire byte order. */
export interface SeenContext {
  readonly traceIds: Set<string>;
  readonly spanIds: Set<string>;
  frames: number;
}

export interface TraceRecordingBackend {
  readonly port: number;
  /** Per session ID (decimal), what its frames carried. */
  readonly sessions: Map<string, SeenContext>;
  stop(): void;
}

export function traceRecordingBackend(): TraceRecordingBackend {
  const sessions = new Map<string, SeenContext>();
  const pool = new BufferPool();
  const server = Bun.listen<FrameReader<string>>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(s: Socket<FrameReader<string>>) {
        s.data = new FrameReader(
          new BackendFrameLayout(600_000),
          {
            onFrame(b, off) {
              if (b[off + 20] !== OpCode.Trans) return true; // Connect/Disconnect/Ping carry no trace context
              const f = decodeBackendFrame(b, off, true);
              const key = f.sessionId.toString();
              let seen = sessions.get(key);
              if (seen === undefined) sessions.set(key, (seen = { traceIds: new Set(), spanIds: new Set(), frames: 0 }));
              seen.traceIds.add(Buffer.from(f.traceId!).toString("hex"));
              seen.spanIds.add(Buffer.from(f.spanId!).toString("hex"));
              seen.frames++;
              s.write(encodeBackendFrame({ opcode: OpCode.Trans, sessionId: f.sessionId, type: f.type, body: f.body }));
              return true;
            },
            onFramingError() {},
          },
          pool,
        );
      },
      data(s, chunk) {
        s.data.feed(chunk);
      },
    },
  });
  return { port: server.port, sessions, stop: () => server.stop(true) };
}
