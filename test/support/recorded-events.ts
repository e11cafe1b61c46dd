// A session layer that records what client ports report to it (ClientEvents), for tests of the
// ports themselves. A violation closes the port, as SessionService does.
import type { ClientViolation } from "../../src/protocol/violations.ts";
import type { ClientEvents, ClientPort, ClientProtocol, CloseReason } from "../../src/session/client-port.ts";

/** What a port told the session layer. */
export class RecordedEvents implements ClientEvents {
  readonly frames: Uint8Array[] = [];
  readonly violations: ClientViolation[] = [];
  readonly closed: CloseReason[] = [];
  readonly refused: string[] = [];
  /** Every port opened, in order. */
  readonly ports: ClientPort[] = [];
  onClientOpen(port: ClientPort): void {
    this.ports.push(port);
  }
  onClientFrame(port: ClientPort, b: Uint8Array, off: number, len: number): boolean {
    this.frames.push(b.slice(off, off + len));
    return !port.closing;
  }
  onClientViolation(port: ClientPort, reason: ClientViolation): void {
    this.violations.push(reason);
    port.close("malformed_frame");
  }
  onConnectionRefused(_client: string, _protocol: ClientProtocol, refusal: string): void {
    this.refused.push(refusal);
  }
  onClientClosed(_port: ClientPort, reason: CloseReason): void {
    this.closed.push(reason);
  }
}
