// What an open-loop workload asks of a target, ramp included. The load tester dials connection
// i (0-based) at i / ramp seconds and paces each connection's sends from then on, so with a ramp
// the schedule asks for fewer sends than clients x rate x seconds: workload c (5,000 clients at
// 2,500/s, 30 s, 10/s) asks for 1,450,000, not 1,500,000. Comparing what was sent with the
// nominal figure would call every ramped run generator-limited.

/**
 * Sends the open-loop schedule asks for over `seconds`: rate x Σ max(0, seconds − i / ramp) over
 * the connections i (ramp 0: all dialled at once).
 */
export function scheduledSends(connections: number, ramp: number, seconds: number, ratePerConnection: number): number {
  if (ramp <= 0) return connections * seconds * ratePerConnection;
  // Connections dialled before the end of sending: i / ramp < seconds.
  const dialled = Math.min(connections, Math.ceil(seconds * ramp));
  // Σ_{i < dialled} (seconds − i / ramp), in closed form.
  const connectionSeconds = dialled * seconds - (dialled * (dialled - 1)) / 2 / ramp;
  return connectionSeconds * ratePerConnection;
}

/** The offered rate of an open-loop run, per second of its duration, ramp included. */
export function offeredPerSecond(connections: number, ramp: number, seconds: number, ratePerConnection: number): number {
  return scheduledSends(connections, ramp, seconds, ratePerConnection) / seconds;
}
