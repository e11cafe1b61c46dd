// Every way a peer can break the wire contract, as the reason label logged and counted.
// Client violations close that client; backend framing violations close that backend
// connection; other backend violations drop the one frame (framing is still intact).

export type ClientViolation =
  /** Length above security.max_message_size. */
  | "client_body_too_large"
  /** The first frame's serverType/world matched no route. */
  | "no_route";

export type BackendFramingViolation =
  | "length_negative"
  /** Length above backend.max_frame_size: framing cannot be trusted, the connection is closed. */
  | "length_over_limit"
  /** Length smaller than the 9-byte gate header. */
  | "length_below_gate_header";

export type BackendFrameViolation =
  | "unknown_opcode"
  /** A valid opcode that only travels gateway->backend (Connect, Disconnect). */
  | "unexpected_opcode"
  /** Trans/Kick for a session this gateway does not hold, or holds on another backend. */
  | "unknown_session"
  /** A body that would not fit a client frame's u16 Length. */
  | "body_too_large"
  /** Type must become a u16 client MessageID. */
  | "type_out_of_range"
  /** Multicast body shorter than its count says. */
  | "multicast_malformed"
  /** Ping/Pong body not 8 bytes. */
  | "ping_malformed";

export type BackendViolation = BackendFramingViolation | BackendFrameViolation;
