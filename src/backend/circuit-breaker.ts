// A circuit breaker per backend endpoint.
//   closed     sessions are routed here; failures are counted in a rolling time window, and
//              failure_threshold of them within `window` opens the breaker.
//   open       no new session is routed here (the router picks another endpoint of the rule, or
//              the client is closed with a reason); after open_timeout the breaker half-opens,
//              or at once when a probe connection proves the backend healthy again.
//   half-open  at most half_open_max_requests probes (new sessions) are let through; the first
//              success closes the breaker, any failure opens it again.
// Failures: a dial that fails or times out, an open connection lost, a Ping without Pong.
// Successes: a Pong, or a connection's first valid frame (a TCP connect alone is not one). While
// open a success half-opens the breaker; while half-open it closes it. A half-open pool pings its
// open connections at once, so a recovered backend closes the breaker within a sweep.

export const BreakerState = { Closed: 0, Open: 1, HalfOpen: 2 } as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

export interface BreakerSettings {
  readonly failureThreshold: number;
  readonly windowMs: number;
  readonly openTimeoutMs: number;
  readonly halfOpenMaxRequests: number;
}

export class CircuitBreaker {
  private stateNow: BreakerState = BreakerState.Closed;
  /** Failure times within the window, oldest first; never longer than failureThreshold. */
  private readonly failures: number[] = [];
  private openedAt = 0;
  private probes = 0;

  constructor(
    private readonly settings: BreakerSettings,
    private readonly onChange: (state: BreakerState) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.stateNow === BreakerState.Open && this.now() - this.openedAt >= this.settings.openTimeoutMs) {
      this.set(BreakerState.HalfOpen);
      this.probes = 0;
    }
    return this.stateNow;
  }

  /** May a new session be routed here? In half-open, each true answer spends one probe. */
  tryAcquire(): boolean {
    switch (this.state) {
      case BreakerState.Closed:
        return true;
      case BreakerState.Open:
        return false;
      case BreakerState.HalfOpen:
        if (this.probes >= this.settings.halfOpenMaxRequests) return false;
        this.probes++;
        return true;
    }
  }

  recordSuccess(): void {
    const state = this.state;
    if (state === BreakerState.Open) {
      this.probes = 0;
      this.set(BreakerState.HalfOpen);
    } else if (state === BreakerState.HalfOpen) {
      this.failures.length = 0;
      this.set(BreakerState.Closed);
    }
  }

  recordFailure(): void {
    const now = this.now();
    const state = this.state;
    if (state === BreakerState.HalfOpen) return this.open(now);
    if (state === BreakerState.Open) return;
    const f = this.failures;
    while (f.length > 0 && now - f[0]! > this.settings.windowMs) f.shift();
    f.push(now);
    if (f.length >= this.settings.failureThreshold) this.open(now);
  }

  private open(now: number): void {
    this.openedAt = now;
    this.failures.length = 0;
    this.set(BreakerState.Open);
  }

  private set(s: BreakerState): void {
    if (s === this.stateNow) return;
    this.stateNow = s;
    this.onChange(s);
  }
}
