// When to restart a worker that died: at once the first time, then doubling waits up to a cap,
// so a worker that crashes at start cannot spin the machine; a worker that stayed up a while
// before dying starts the sequence over (its crash is news, not the same crash again).

export interface BackoffSettings {
  /** The wait after the second quick death; doubles with each further one. */
  readonly baseMs: number;
  /** The longest wait between restarts. */
  readonly maxMs: number;
  /** A worker that ran this long before dying is restarted at once, as after a first death. */
  readonly stableAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 250, maxMs: 15_000, stableAfterMs: 30_000 };

export class RestartBackoff {
  /** Deaths in a row, each after less than stableAfterMs of life. */
  private quickDeaths = 0;

  constructor(private readonly settings: BackoffSettings = DEFAULT_BACKOFF) {}

  /** The wait before restarting a worker that died after `uptimeMs` of life. */
  delayAfterDeath(uptimeMs: number): number {
    if (uptimeMs >= this.settings.stableAfterMs) this.quickDeaths = 0;
    const n = this.quickDeaths++;
    if (n === 0) return 0;
    return Math.min(this.settings.maxMs, this.settings.baseMs * 2 ** Math.min(n - 1, 30));
  }
}
