import { LOG_THROTTLE_INTERVAL_MS, LogThrottle, type Logger } from "../log/logger.ts";
import { BreakerState } from "./circuit-breaker.ts";

// The log lines of one endpoint's breaker. A flapping backend moves its breaker open, half-open
// and closed every few seconds; each transition is counted (circuit_breaker_state), but its line
// is written at most once per state per LOG_THROTTLE_INTERVAL_MS, with how many were suppressed.

export function breakerName(state: BreakerState): "closed" | "open" | "half-open" {
  return state === BreakerState.Open ? "open" : state === BreakerState.HalfOpen ? "half-open" : "closed";
}

/** Logs a transition of endpoint's breaker (opened: a warning), throttled per state. */
export function breakerTransitionLog(log: Logger, endpoint: string): (state: BreakerState) => void {
  const throttle = new LogThrottle(LOG_THROTTLE_INTERVAL_MS, 3);
  return (state) => {
    const name = breakerName(state);
    const suppressed = throttle.admit(name, Date.now());
    if (suppressed < 0) return;
    const fields = suppressed > 0 ? { backend: endpoint, suppressed } : { backend: endpoint };
    if (state === BreakerState.Open) log.warn("circuit breaker " + name, fields);
    else log.info("circuit breaker " + name, fields);
  };
}
