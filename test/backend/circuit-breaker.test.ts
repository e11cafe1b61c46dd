import { describe, expect, test } from "bun:test";
import { BreakerState, CircuitBreaker } from "../../src/backend/circuit-breaker.ts";

function breaker(halfOpenMaxRequests = 2) {
  let now = 1_000_000;
  const changes: number[] = [];
  const b = new CircuitBreaker(
    { failureThreshold: 3, windowMs: 1000, openTimeoutMs: 5000, halfOpenMaxRequests },
    (s) => changes.push(s),
    () => now,
  );
  return { b, changes, advance: (ms: number) => (now += ms) };
}

describe("CircuitBreaker", () => {
  test("opens at the threshold within the window, not for failures spread wider", () => {
    const { b, advance } = breaker();
    b.recordFailure();
    advance(600);
    b.recordFailure();
    advance(600); // the first failure has left the window
    b.recordFailure();
    expect(b.state).toBe(BreakerState.Closed);
    b.recordFailure();
    expect(b.state).toBe(BreakerState.Open);
    expect(b.tryAcquire()).toBe(false);
  });

  test("half-opens after open_timeout with a limited number of probes", () => {
    const { b, advance, changes } = breaker(2);
    for (let i = 0; i < 3; i++) b.recordFailure();
    advance(4999);
    expect(b.tryAcquire()).toBe(false);
    advance(1);
    expect(b.state).toBe(BreakerState.HalfOpen);
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, false]);
    b.recordSuccess();
    expect(b.state).toBe(BreakerState.Closed);
    expect(b.tryAcquire()).toBe(true);
    expect(changes).toEqual([BreakerState.Open, BreakerState.HalfOpen, BreakerState.Closed]);
  });

  test("a failure while half-open reopens it for a full open_timeout", () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.recordFailure();
    advance(5000);
    expect(b.tryAcquire()).toBe(true);
    b.recordFailure();
    expect(b.state).toBe(BreakerState.Open);
    advance(4000);
    expect(b.state).toBe(BreakerState.Open);
    advance(1000);
    expect(b.state).toBe(BreakerState.HalfOpen);
  });

  test("success while closed keeps it closed and does not forgive window failures early", () => {
    const { b } = breaker();
    b.recordFailure();
    b.recordFailure();
    b.recordSuccess();
    b.recordFailure();
    expect(b.state).toBe(BreakerState.Open);
  });
});

describe("CircuitBreaker successes while open", () => {
  test("a success while open half-opens at once (a probe proved the backend back); the next closes it", () => {
    const { b, changes } = breaker(1);
    for (let i = 0; i < 3; i++) b.recordFailure();
    expect(b.tryAcquire()).toBe(false);
    b.recordSuccess();
    expect(b.state).toBe(BreakerState.HalfOpen);
    expect([b.tryAcquire(), b.tryAcquire()]).toEqual([true, false]);
    b.recordSuccess();
    expect(b.state).toBe(BreakerState.Closed);
    expect(changes).toEqual([BreakerState.Open, BreakerState.HalfOpen, BreakerState.Closed]);
  });
});
