// server.ws_idle_timeout on the dedicated listener, where Bun (uWebSockets) applies it.

/** Bun's largest idleTimeout, in seconds. */
const BUN_MAX_IDLE_SECONDS = 960;
/** uSockets checks timeouts on a 4 s tick: a timeout of n ticks fires 4n-4 to 4n s after it is set. */
const BUN_TIMEOUT_TICK_SECONDS = 4;

/**
 * What to pass Bun's idleTimeout so that a client silent for timeoutMs is never closed before it.
 * uSockets arms a socket's timer in whole ticks (ceil(t / 4)) and fires it on a tick, so it fires
 * 4n-4 to 4n s after it was armed. With pings, uWebSockets arms t - margin, pings, then arms the
 * margin (4, 8 or 16 s, whole ticks, from the ping's tick): the close lands the same way. So Bun's
 * close comes in (4*ceil(t/4) - 4, 4*ceil(t/4)] s of silence: up to 4 s before t (measured by the
 * outside review: 6 s closed at 4.4-7.7 s, 20 s at 19.8 s). One tick more than the setting
 * rounded up to ticks closes a silent client between timeoutMs rounded up to 4 s and 4 s after
 * that, never before timeoutMs. 0 stays 0 (off). Capped at Bun's 960 s: a setting above 956 s may
 * then close from 956 s.
 */
export function bunIdleTimeoutSeconds(timeoutMs: number): number {
  if (timeoutMs <= 0) return 0;
  const ticks = Math.ceil(timeoutMs / 1000 / BUN_TIMEOUT_TICK_SECONDS) + 1;
  return Math.min(BUN_MAX_IDLE_SECONDS, ticks * BUN_TIMEOUT_TICK_SECONDS);
}
