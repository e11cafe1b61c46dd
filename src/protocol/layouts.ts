import { CLIENT_HEADER_SIZE, readClientBodyLength } from "./client-frame.ts";
import { GATE_HEADER_SIZE, SERVER_HEADER_SIZE, readServerLength } from "./server-frame.ts";
import type { BackendFramingViolation, ClientViolation } from "./violations.ts";

// Frame layouts for the stream reader (src/net/frame-reader.ts): how long a frame is, from its header.

export class ClientFrameLayout {
  readonly headerSize = CLIENT_HEADER_SIZE;
  readonly maxFrameSize: number;

  constructor(private readonly maxBody: number) {
    this.maxFrameSize = CLIENT_HEADER_SIZE + maxBody;
  }

  frameLength(b: Uint8Array, off: number): number {
    const body = readClientBodyLength(b, off);
    return body > this.maxBody ? -1 : CLIENT_HEADER_SIZE + body;
  }

  violation(_b: Uint8Array, _off: number): ClientViolation {
    return "client_body_too_large";
  }
}

export class BackendFrameLayout {
  readonly headerSize = SERVER_HEADER_SIZE;
  readonly maxFrameSize: number;

  /** maxLength bounds the Length field (gate header + body). */
  constructor(private readonly maxLength: number) {
    this.maxFrameSize = SERVER_HEADER_SIZE + maxLength;
  }

  frameLength(b: Uint8Array, off: number): number {
    const length = readServerLength(b, off);
    if (length < GATE_HEADER_SIZE || length > this.maxLength) return -1;
    return SERVER_HEADER_SIZE + length;
  }

  violation(b: Uint8Array, off: number): BackendFramingViolation {
    const length = readServerLength(b, off);
    if (length < 0) return "length_negative";
    if (length < GATE_HEADER_SIZE) return "length_below_gate_header";
    return "length_over_limit";
  }
}
