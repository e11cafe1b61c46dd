// A clock that moves only when a test says so: deadlines, token buckets, drain delays, backend
// re-dials and the shutdown's close wait become steps the test takes, not races against a loaded
// machine. Starts at the real time, so times it gives mix with the wall-clock timestamps other
// parts record (a Session's createdAt).
import type { Clock, ClockTimer } from "../../src/time/clock.ts";

interface Pending {
  readonly until: number;
  readonly fire: () => void;
}

export class ManualClock implements Clock {
  private t = Date.now();
  /** Timers and sleeps not yet fired, in the order they were set. */
  private readonly pending: Pending[] = [];

  readonly now = (): number => this.t;

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => void this.setTimer(wake, ms));
  }

  setTimer(fire: () => void, ms: number): ClockTimer {
    const p: Pending = { until: this.t + Math.max(0, ms), fire };
    this.pending.push(p);
    return p as unknown as ClockTimer;
  }

  clearTimer(timer: ClockTimer): void {
    const i = this.pending.indexOf(timer as unknown as Pending);
    if (i >= 0) this.pending.splice(i, 1);
  }

  /** Sleeps and timers not yet fired (so a test can wait until the code under test waits on the clock). */
  get waiting(): number {
    return this.pending.length;
  }

  /**
   * Advances time by ms and fires every sleep and timer that has run out, earliest first (set
   * order among equals); one set by a firing timer fires in the same tick if it is due by then.
   */
  tick(ms: number): void {
    this.t += ms;
    for (;;) {
      let next = -1;
      for (let i = 0; i < this.pending.length; i++) {
        const p = this.pending[i]!;
        if (p.until <= this.t && (next < 0 || p.until < this.pending[next]!.until)) next = i;
      }
      if (next < 0) return;
      const [due] = this.pending.splice(next, 1);
      due!.fire();
    }
  }
}
