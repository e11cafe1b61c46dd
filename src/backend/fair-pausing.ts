import type { ClientPort } from "../session/client-port.ts";
import type { Session } from "../session/session.ts";

// Backpressure toward one backend connection: which clients to pause while its queue is congested
// and how to take them back. Fair: past high water a sender is paused only if it sent at least the
// mean share of the current accounting window's bytes, so a client sending a little now and then
// keeps going while the heavy senders wait; past pauseAllAt every sender is paused.

/**
 * Paused clients resumed per relief of a congested connection. Resuming thousands at once lets
 * each pour out what its socket buffered while paused, which overshoots the hard bound and closes
 * clients (backend_congested); 32 per relief keeps the burst to 32 sockets' worth while a
 * thousand paused clients are back within a few dozen event-loop turns.
 */
export const RESUME_BATCH = 32;

/** The queue this unit watches: the connection's batched writer. */
export interface CongestionSource {
  readonly queuedBytes: number;
  /** Past high water and not yet relieved. */
  readonly congested: boolean;
}

export interface PauseTally {
  /** backend_backpressure_pauses_total */
  pauses: number;
}

export class FairPausing {
  /**
   * Paused clients (a subset of the connection's sessions' clients): heavy ones sent at least the
   * mean share of the window's bytes; light ones only because the queue passed pauseAllAt. Light
   * ones are resumed first. A Set keeps insertion order, so the longest-paused go first.
   */
  private readonly heavy = new Set<ClientPort>();
  private readonly light = new Set<ClientPort>();
  /** Past this many queued bytes every sender is paused, not only the heavy ones. */
  private readonly pauseAllAt: number;
  /**
   * The accounting window: it starts over whenever the queue empties or is relieved.
   * windowBytes over windowSenders is the mean share a sender is compared with.
   */
  private window = 0;
  private windowBytes = 0;
  private windowSenders = 0;

  constructor(
    highWater: number,
    limit: number,
    private readonly queue: CongestionSource,
    private readonly tally: PauseTally,
  ) {
    this.pauseAllAt = Math.min(2 * highWater, (highWater + limit) / 2);
  }

  /** Clients paused now. */
  get pausedCount(): number {
    return this.heavy.size + this.light.size;
  }

  /** A session joins the connection: its bytes count from the next frame (window numbers are per connection). */
  join(session: Session): void {
    session.linkWindow = -1;
  }

  /** Per frame: size bytes of session's were queued; pause its client if the queue is congested and it is fair to. */
  onQueued(session: Session, size: number): void {
    if (session.linkWindow !== this.window) {
      session.linkWindow = this.window;
      session.linkBytes = 0;
      this.windowSenders++;
    }
    session.linkBytes += size;
    this.windowBytes += size;
    if (this.queue.congested && !session.client.closing) this.pause(session);
  }

  /** The client's session left the connection: it is no longer this connection's to resume. */
  forget(client: ClientPort): void {
    this.heavy.delete(client);
    this.light.delete(client);
  }

  /** The queue emptied: shares are counted afresh. */
  newWindow(): void {
    this.window++;
    this.windowBytes = 0;
    this.windowSenders = 0;
  }

  /**
   * The queue was relieved (drained to half of high water): a new window, and up to RESUME_BATCH
   * clients resumed, light ones first. True when some are still paused: the caller asks for
   * another relief, so the backend's pace sets how fast the rest come back.
   */
  resumeBatch(): boolean {
    this.newWindow();
    resumeFrom(this.heavy, resumeFrom(this.light, RESUME_BATCH));
    return this.pausedCount > 0;
  }

  /** The connection closed: every paused client resumes (its session moves or closes). */
  resumeAll(): void {
    for (const client of this.light) client.resumeReading();
    for (const client of this.heavy) client.resumeReading();
    this.light.clear();
    this.heavy.clear();
  }

  private pause(session: Session): void {
    const client = session.client;
    // A client keeps sending the rest of the chunk it was paused in: pause and count it once.
    if (this.heavy.has(client)) return;
    const heavy = session.linkBytes * this.windowSenders >= this.windowBytes;
    if (this.light.has(client)) {
      // Already paused; it has now sent its share, so it waits behind the light ones.
      if (heavy) {
        this.light.delete(client);
        this.heavy.add(client);
      }
      return;
    }
    if (heavy) this.heavy.add(client);
    else if (this.queue.queuedBytes > this.pauseAllAt) this.light.add(client);
    else return;
    client.pauseReading();
    this.tally.pauses++;
  }
}

/** Resumes up to n clients of the set, oldest first; returns how many more may be resumed. */
function resumeFrom(paused: Set<ClientPort>, n: number): number {
  for (const client of paused) {
    if (n === 0) break;
    n--;
    paused.delete(client);
    client.resumeReading();
  }
  return n;
}
