// Time as the gateway's deadlines and timers see it. Everything that waits on time (session and
// listener deadlines, admission buckets, the drain, backend re-dials and breaker windows, the
// shutdown's close wait) reads one Clock, so a test that passes test/support/manual-clock.ts
// makes each of them a step it takes (tick) instead of a race against a loaded machine.
// This module imports nothing: every layer may take a Clock.

/** A pending Clock timer; opaque outside the Clock that made it. */
export type ClockTimer = { readonly __brand: "ClockTimer" };

export interface Clock {
  /** Milliseconds since the epoch; a function-valued field, so it may be called detached. */
  readonly now: () => number;
  /** Resolves once now() has advanced by at least ms. */
  sleep(ms: number): Promise<void>;
  /** Calls fn once now() has advanced by at least ms, unless clearTimer(timer) came first. */
  setTimer(fn: () => void, ms: number): ClockTimer;
  /** Cancels a timer not yet fired; a fired or cleared one is ignored. */
  clearTimer(timer: ClockTimer): void;
}

export const systemClock: Clock = {
  now: Date.now,
  sleep: (ms) => Bun.sleep(ms),
  setTimer: (fn, ms) => setTimeout(fn, ms) as unknown as ClockTimer,
  clearTimer: (timer) => clearTimeout(timer as unknown as ReturnType<typeof setTimeout>),
};

/**
 * Resolves once done() holds or ms have passed on the clock, whichever comes first; true if done()
 * held. done() is polled every pollMs of real time (it is a condition, not a deadline: no clock
 * tick makes a peer close sooner), the limit is the clock's, so a test decides when it runs out.
 */
export function waitUntil(clock: Clock, done: () => boolean, ms: number, pollMs = 10): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (!done()) return;
      clearInterval(poll);
      clock.clearTimer(limit);
      resolve(true);
    }, pollMs);
    const limit = clock.setTimer(() => {
      clearInterval(poll);
      resolve(done());
    }, ms);
  });
}
