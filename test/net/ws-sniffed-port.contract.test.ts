// The ClientPort contract (test/contracts/client-port.contract.ts) run against a WebSocket client
// on the TCP client port, found there by sniffing its first bytes as the reference does: a real
// TcpListener on an ephemeral loopback port, the peer websocket-driver's client over a raw socket.
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { AdmissionControl } from "../../src/net/admission.ts";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { CidrList } from "../../src/net/cidr.ts";
import type { ClientEvents } from "../../src/net/client-port.ts";
import { TcpListener } from "../../src/net/tcp-listener.ts";
import { clientPortContract, type ClientPortUnderTest } from "../contracts/client-port.contract.ts";
import { TEST_LISTENER_OPTIONS } from "../support/partial-socket.ts";
import { WsPeer, wsPortUnderTest } from "../support/ws-peer.ts";

clientPortContract("ws", async (events: ClientEvents, options): Promise<ClientPortUnderTest> => {
  const listener = new TcpListener({
    options: { ...TEST_LISTENER_OPTIONS, writeQueueLimit: options.writeQueueLimit, sniffWebSocket: true },
    proxy: { mode: "off", trusted: new CidrList([]), headerTimeoutMs: 1000, maxPendingHeaders: 10 },
    events,
    buffers: new BufferPool(),
    metrics: new GatewayMetrics(),
    admission: new AdmissionControl({ maxPerIp: 1000, ratePerSec: 1e6, maxTrackedIps: 1000 }),
  });
  listener.start("client-port contract");
  // Any path: the reference accepts a handshake on any.
  const ws = await WsPeer.connect(listener.port, "/any/path");
  return wsPortUnderTest(ws, listener);
});
