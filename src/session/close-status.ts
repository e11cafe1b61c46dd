import type { CloseReason } from "./client-port.ts";

// How each of our close reasons reads in the reference's access-log terms: its status
// (success, error, timeout, rejected, closed) and the error.message it carries. The reason itself
// stays on the record, so nothing finer is lost.

/** The reference's access-log status values; the finer reason is the record's `reason`. */
export type AccessStatus = "success" | "error" | "timeout" | "rejected" | "closed";

export interface CloseStatus {
  readonly status: AccessStatus;
  /** "" when nothing went wrong. */
  readonly errorMessage: string;
}

const STATUS: { readonly [R in CloseReason]: CloseStatus } = {
  client_closed: { status: "success", errorMessage: "" },
  // The gateway ended the connection on purpose: a backend's kick, or a stop.
  kick: { status: "closed", errorMessage: "" },
  shutdown: { status: "closed", errorMessage: "" },
  first_message_timeout: { status: "timeout", errorMessage: "no first message within server.first_message_timeout" },
  idle_timeout: { status: "timeout", errorMessage: "no message within session.idle_timeout" },
  read_timeout: { status: "timeout", errorMessage: "nothing received within the read deadline (server.client_read_timeout)" },
  write_timeout: { status: "timeout", errorMessage: "queued output not taken within the write deadline" },
  partial_frame_timeout: { status: "timeout", errorMessage: "a frame not completed within server.partial_frame_timeout" },
  client_error: { status: "error", errorMessage: "client socket error" },
  slow_reader: { status: "error", errorMessage: "client not reading: its queue passed server.client_write_queue_limit" },
  pending_input_limit: { status: "error", errorMessage: "held client input reached server.pending_input_limit" },
  malformed_frame: { status: "error", errorMessage: "client frame broke the wire contract" },
  no_route: { status: "error", errorMessage: "no routing rule for the client's server type and world" },
  backend_unavailable: { status: "error", errorMessage: "no backend connection available" },
  backend_lost: { status: "error", errorMessage: "backend connection lost" },
  backend_congested: { status: "error", errorMessage: "backend queue full" },
  rate_limited: { status: "error", errorMessage: "message rate limit exceeded (security.message_rate_limit)" },
  rejected: { status: "rejected", errorMessage: "connection refused" },
};

export function closeStatus(reason: CloseReason): CloseStatus {
  return STATUS[reason];
}

/** The access-record fields of a connection that never had a session. */
export const NO_SESSION_FIELDS = {
  traceId: "",
  spanId: "",
  sessionId: "",
  serverType: 0,
  worldId: 0,
  serverAddress: "",
  bytesReceived: 0,
  bytesSent: 0,
  messagesReceived: 0,
  messagesSent: 0,
} as const;
