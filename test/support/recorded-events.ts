// A session layer that records what client ports report to it (ClientEvents), for tests of the
// ports themselves. A violation closes the port, as SessionService does.
import type { ClientViolation } from "../../src/protocol/violations.ts";
import type { ClientEvents, ClientPort, ClientProtocol, CloseReason } from "../../src/net/client-port.ts";

/** What a port told the session layer. */
/** S: what the layer above would bind to a port (the tests of ports bind nothing). */
export class RecordedEvents<S = unknown> implements ClientEvents<S> {
  readonly frames: Uint8Array[] = [];
  readonly violations: ClientViolation[] = [];
  readonly closed: CloseReason[] = [];
  readonly refused: string[] = [];
  /** X-Forwarded-For values reported as malformed. */
  readonly malformedForwardedFor: string[] = [];
  /** Every port opened, in order. */
  readonly ports: ClientPort<S>[] = [];
  onClientOpen(port: ClientPort<S>): void {
    this.ports.push(port);
  }
  onClientFrame(port: ClientPort<S>, b: Uint8Array, off: number, len: number): boolean {
    this.frames.push(b.slice(off, off + len));
    return !port.closing;
  }
  onClientViolation(port: ClientPort<S>, reason: ClientViolation): void {
    this.violations.push(reason);
    port.close("malformed_frame");
  }
  onConnectionRefused(_client: string, _protocol: ClientProtocol, refusal: string): void {
    this.refused.push(refusal);
  }
  /** Errors a listener reported (onListenerError). */
  readonly listenerErrors: unknown[] = [];
  onListenerError(_protocol: ClientProtocol, error: unknown): void {
    this.listenerErrors.push(error);
  }
  onForwardedForMalformed(_peer: string, value: string): void {
    this.malformedForwardedFor.push(value);
  }
  onClientClosed(_port: ClientPort<S>, reason: CloseReason): void {
    this.closed.push(reason);
  }
}
