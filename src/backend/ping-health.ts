// The active health check of one backend connection: when to Ping, and when an unanswered Ping
// means the backend is gone. Pure bookkeeping on times passed in, so it is tested with explicit
// clock values; the connection writes the frames and closes the socket.

/** What the periodic check asks of the connection now. */
export type PingDue =
  | "nothing"
  /** Silent for ping_interval and no Ping outstanding: send one. */
  | "ping"
  /** The outstanding Ping went unanswered for ping_timeout: close (cause ping_timeout). */
  | "timeout";

export class PingHealth {
  /** When anything last arrived (Date.now() clock). */
  private lastReceivedAt: number;
  /** Whether a Ping awaits its Pong, and when it was sent (Date.now() clock). */
  private awaitingPong = false;
  private pingSentAt = 0;
  /** The same moment on the performance clock, for the round-trip time. */
  private pingStartedAt = 0;

  constructor(now: number) {
    this.lastReceivedAt = now;
  }

  /** Bytes arrived (once per chunk, not per frame). */
  onReceived(now: number): void {
    this.lastReceivedAt = now;
  }

  check(now: number, pingIntervalMs: number, pingTimeoutMs: number): PingDue {
    if (this.awaitingPong) return now - this.pingSentAt >= pingTimeoutMs ? "timeout" : "nothing";
    return now - this.lastReceivedAt >= pingIntervalMs ? "ping" : "nothing";
  }

  onPingSent(now: number, perfNow: number): void {
    this.awaitingPong = true;
    this.pingSentAt = now;
    this.pingStartedAt = perfNow;
  }

  /** A Pong arrived: the round trip in seconds, or -1 when no Ping awaited it (unsolicited). */
  onPong(perfNow: number): number {
    if (!this.awaitingPong) return -1;
    this.awaitingPong = false;
    return (perfNow - this.pingStartedAt) / 1000;
  }

  /**
   * A valid frame answers what the Ping sent on connect asked: a backend that talks but never
   * answers Ping is not closed for it (later Pings go out only after ping_interval of silence).
   */
  onValidFrame(): void {
    this.awaitingPong = false;
  }
}
