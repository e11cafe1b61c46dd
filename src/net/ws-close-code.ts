import type { CloseReason } from "./client-port.ts";

// The WebSocket close code (RFC 6455 section 7.4) a client sees for each reason the gateway closes
// it; the reason label itself goes in the close frame's reason text.

const CODES: Readonly<Record<CloseReason, number>> = {
  client_closed: 1000,
  client_error: 1011,
  first_message_timeout: 1008,
  idle_timeout: 1000,
  read_timeout: 1008,
  write_timeout: 1008,
  slow_reader: 1008,
  partial_frame_timeout: 1008,
  pending_input_limit: 1009,
  malformed_frame: 1002,
  no_route: 1008,
  kick: 1000,
  backend_unavailable: 1013,
  backend_lost: 1011,
  backend_congested: 1013,
  rate_limited: 1008,
  rejected: 1008,
  shutdown: 1001,
};

export function closeCodeFor(reason: CloseReason): number {
  return CODES[reason];
}
