// A clock that moves only when a test says so: deadlines, token buckets and drain delays become
// steps the test takes, not races against a loaded machine. Starts at the real time, so times it
// gives mix with the wall-clock timestamps other parts record (a Session's createdAt).
import type { Clock } from "../../src/gateway.ts";

export class ManualClock implements Clock {
  private t = Date.now();
  private readonly sleepers: { until: number; wake: () => void }[] = [];

  readonly now = (): number => this.t;

  sleep(ms: number): Promise<void> {
    const until = this.t + ms;
    return new Promise((wake) => this.sleepers.push({ until, wake }));
  }

  /** Sleeps not yet woken (so a test can wait until the code under test is waiting on the clock). */
  get waiting(): number {
    return this.sleepers.length;
  }

  /** Advances time by ms and wakes every sleep that has run out. */
  tick(ms: number): void {
    this.t += ms;
    for (let i = this.sleepers.length - 1; i >= 0; i--) {
      const s = this.sleepers[i]!;
      if (s.until > this.t) continue;
      this.sleepers.splice(i, 1);
      s.wake();
    }
  }
}
