// Which clients a congested backend connection pauses, and how they come back.
import { describe, expect, test } from "bun:test";
import { FairPausing, RESUME_BATCH } from "../../src/backend/fair-pausing.ts";
import type { ClientPort } from "../../src/session/client-port.ts";
import { Session } from "../../src/session/session.ts";

const HIGH_WATER = 1_000;
const LIMIT = 10_000; // pauseAllAt = min(2 * 1000, (1000 + 10000) / 2) = 2000

/** The client side as the pausing unit sees it: whether it is reading. */
class Reader {
  reading = true;
  closing = false;
  pauseReading(): void {
    this.reading = false;
  }
  resumeReading(): void {
    this.reading = true;
  }
}

function setup() {
  const queue = { queuedBytes: 0, congested: false };
  const tally = { pauses: 0 };
  const pausing = new FairPausing(HIGH_WATER, LIMIT, queue, tally);
  let next = 1;
  const session = () => {
    const client = new Reader();
    const s = new Session(0, next++, client as unknown as ClientPort, { serverType: 1, worldId: 0, instId: 0 }, Date.now());
    pausing.join(s);
    return { s, client };
  };
  return { queue, tally, pausing, session };
}

describe("FairPausing", () => {
  test("nobody is paused while the queue is below high water", () => {
    const { queue, pausing, session, tally } = setup();
    const a = session();
    queue.queuedBytes = 900;
    for (let i = 0; i < 100; i++) pausing.onQueued(a.s, 100);
    expect(a.client.reading).toBe(true);
    expect(tally.pauses).toBe(0);
  });

  test("congested: the heavy sender is paused, a light one keeps going until the queue passes pauseAllAt", () => {
    const { queue, pausing, session, tally } = setup();
    const heavy = session();
    const light = session();
    pausing.onQueued(heavy.s, 900);
    pausing.onQueued(light.s, 50);
    queue.congested = true;
    queue.queuedBytes = 1_500;
    pausing.onQueued(light.s, 50); // 100 of 1,050 bytes from 2 senders: below the mean share
    expect(light.client.reading).toBe(true);
    pausing.onQueued(heavy.s, 100);
    expect(heavy.client.reading).toBe(false);
    expect(pausing.pausedCount).toBe(1);
    queue.queuedBytes = 2_001;
    pausing.onQueued(light.s, 50);
    expect(light.client.reading).toBe(false);
    expect(pausing.pausedCount).toBe(2);
    expect(tally.pauses).toBe(2);
  });

  test("a client sending the rest of the chunk it was paused in is paused and counted once; a light one that turns heavy moves behind", () => {
    const { queue, pausing, session, tally } = setup();
    const heavy = session();
    const light = session();
    pausing.onQueued(heavy.s, 900);
    queue.congested = true;
    queue.queuedBytes = 2_001; // past pauseAllAt
    for (let i = 0; i < 5; i++) pausing.onQueued(heavy.s, 100);
    pausing.onQueued(light.s, 10); // light: paused only for pauseAllAt
    for (let i = 0; i < 50; i++) pausing.onQueued(light.s, 100); // now past its share
    expect(tally.pauses).toBe(2); // was 56: one per frame after the first
    expect(pausing.pausedCount).toBe(2);
    queue.congested = false;
    pausing.resumeBatch();
    expect(heavy.client.reading).toBe(true);
    expect(light.client.reading).toBe(true);
  });

  test("a closing client is not paused", () => {
    const { queue, pausing, session } = setup();
    const a = session();
    a.client.closing = true;
    queue.congested = true;
    queue.queuedBytes = 5_000;
    pausing.onQueued(a.s, 100);
    expect(a.client.reading).toBe(true);
  });

  test("relief resumes a batch at a time, light ones first, the longest paused first", () => {
    const { queue, pausing, session } = setup();
    queue.congested = true;
    queue.queuedBytes = 5_000; // past pauseAllAt: every sender is paused
    const heavy = session();
    pausing.onQueued(heavy.s, 5_000);
    const light = Array.from({ length: RESUME_BATCH + 5 }, () => session());
    for (const l of light) pausing.onQueued(l.s, 1);
    expect(pausing.pausedCount).toBe(light.length + 1);

    expect(pausing.resumeBatch()).toBe(true);
    expect(light.slice(0, RESUME_BATCH).every((l) => l.client.reading)).toBe(true);
    expect(light.slice(RESUME_BATCH).some((l) => l.client.reading)).toBe(false);
    expect(heavy.client.reading).toBe(false);

    expect(pausing.resumeBatch()).toBe(false);
    expect(light.every((l) => l.client.reading)).toBe(true);
    expect(heavy.client.reading).toBe(true);
    expect(pausing.pausedCount).toBe(0);
  });

  test("a new window counts shares afresh: yesterday's heavy sender is light today", () => {
    const { queue, pausing, session } = setup();
    const a = session();
    const b = session();
    pausing.onQueued(a.s, 900);
    pausing.onQueued(b.s, 100);
    pausing.newWindow();
    pausing.onQueued(b.s, 600);
    queue.congested = true;
    queue.queuedBytes = 1_500;
    pausing.onQueued(a.s, 100); // 100 of 800 from 2 senders in this window
    expect(a.client.reading).toBe(true);
  });

  test("a forgotten client is not resumed by this connection; resumeAll resumes the rest", () => {
    const { queue, pausing, session } = setup();
    queue.congested = true;
    queue.queuedBytes = 5_000;
    const a = session();
    const b = session();
    pausing.onQueued(a.s, 100);
    pausing.onQueued(b.s, 100);
    pausing.forget(a.client as unknown as ClientPort);
    pausing.resumeAll();
    expect(a.client.reading).toBe(false);
    expect(b.client.reading).toBe(true);
    expect(pausing.pausedCount).toBe(0);
  });
});
