// The ClientPort contract (test/contracts/client-port.contract.ts) run against TcpClientPort: a
// real TcpListener on an ephemeral loopback port, a real client socket as the peer.
import type { Socket } from "bun";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { AdmissionControl } from "../../src/net/admission.ts";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { CidrList } from "../../src/net/cidr.ts";
import { TcpListener } from "../../src/net/tcp-listener.ts";
import type { ClientEvents } from "../../src/net/client-port.ts";
import { clientPortContract, type ClientPortPeer, type ClientPortUnderTest } from "../contracts/client-port.contract.ts";
import { concat } from "../support/bytes.ts";
import { eventually } from "../support/eventually.ts";
import { TEST_LISTENER_OPTIONS } from "../support/partial-socket.ts";

clientPortContract("tcp", async (events: ClientEvents, options): Promise<ClientPortUnderTest> => {
  const listener = new TcpListener({
    options: { ...TEST_LISTENER_OPTIONS, writeQueueLimit: options.writeQueueLimit },
    proxy: { mode: "off", trusted: new CidrList([]), headerTimeoutMs: 1000, maxPendingHeaders: 10 },
    events,
    buffers: new BufferPool(),
    metrics: new GatewayMetrics(),
    admission: new AdmissionControl({ maxPerIp: 1000, ratePerSec: 1e6, maxTrackedIps: 1000 }),
  });
  listener.start("client-port contract");
  const received: Uint8Array[] = [];
  const state = { closed: false };
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port: listener.port,
    socket: {
      data: (_s, chunk) => void received.push(chunk.slice()),
      close: () => void (state.closed = true),
      error: () => {},
    },
  });
  const peer: ClientPortPeer = {
    async send(frames, pieces = 1) {
      const step = Math.ceil(frames.length / pieces);
      for (let at = 0; at < frames.length; at += step) {
        let rest = frames.subarray(at, Math.min(frames.length, at + step));
        while (rest.length > 0) {
          const n = socket.write(rest);
          rest = rest.subarray(Math.max(0, n));
          if (rest.length > 0) await Bun.sleep(1); // the kernel's buffer is full: let the gateway read
        }
        await Bun.sleep(0);
      }
    },
    received: () => concat(received),
    get closed() {
      return state.closed;
    },
    pauseReading: () => socket.pause(),
    end: () => socket.end(),
  };
  return {
    peer,
    async dispose() {
      socket.terminate();
      listener.stop();
      await eventually(() => listener.connections === 0, "the listener's connections to close");
    },
  };
});
