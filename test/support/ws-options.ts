import type { WsListenerOptions } from "../../src/net/ws-listener.ts";

/** A WebSocket listener on an ephemeral loopback port with the defaults' limits. */
export const TEST_WS_OPTIONS: WsListenerOptions = {
  host: "127.0.0.1",
  port: 0,
  path: "/ws",
  maxMessageSize: 65535,
  maxPayloadLength: 1024 * 1024,
  idleTimeoutSec: 120,
  sendPings: true,
  writeQueueLimit: 1024 * 1024,
  closeTimeoutMs: 5000,
  maxConnections: 1000,
  partialFrameTimeoutMs: 10_000,
  pendingInputLimit: 64 * 1024 * 1024,
};
