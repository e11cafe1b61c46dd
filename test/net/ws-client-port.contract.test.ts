// The ClientPort contract (test/contracts/client-port.contract.ts) run against WsClientPort: a real
// WsListener (Bun.serve) on an ephemeral loopback port; the peer is websocket-driver's client over
// a raw TCP socket, so it can stop reading.
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { AdmissionControl } from "../../src/net/admission.ts";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import type { ClientEvents } from "../../src/net/client-port.ts";
import { WsListener } from "../../src/net/ws-listener.ts";
import { clientPortContract, type ClientPortUnderTest } from "../contracts/client-port.contract.ts";
import { TEST_WS_OPTIONS } from "../support/ws-options.ts";
import { WsPeer, wsPortUnderTest } from "../support/ws-peer.ts";

clientPortContract("ws", async (events: ClientEvents, options): Promise<ClientPortUnderTest> => {
  const listener = new WsListener({
    options: { ...TEST_WS_OPTIONS, writeQueueLimit: options.writeQueueLimit },
    events,
    buffers: new BufferPool(),
    metrics: new GatewayMetrics(),
    admission: new AdmissionControl({ maxPerIp: 1000, ratePerSec: 1e6, maxTrackedIps: 1000 }),
  });
  listener.start("client-port contract");
  const ws = await WsPeer.connect(listener.port, TEST_WS_OPTIONS.path);
  return wsPortUnderTest(ws, listener);
});
