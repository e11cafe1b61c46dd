// SessionService's deadlines and rate limit on an injected clock: a real gateway and backend on
// loopback, with time advanced by the test, so nothing depends on how fast the machine is.
import { afterEach, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";
import { ManualClock } from "../support/manual-clock.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);

describe("SessionService on an injected clock", () => {
  test("message rate limit: a burst past it is dropped; a second later the same rate passes again", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      {
        security: { message_rate_limit: 5, message_rate_burst: 5, message_rate_action: "drop" },
        routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
      },
      { clock },
    );
    const dropped = () => gw.gateway.metrics.value("frames_dropped_total", { reason: "rate_limited" });
    const c = await gw.connect();
    for (let i = 0; i < 8; i++) c.send(1, serverIdFor(T), text(`a${i}`));
    expect((await c.frames(5)).map((f) => str(f.body))).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    await eventually(async () => (await dropped()) === 3, "3 drops");

    clock.tick(1_000); // five tokens back, however long the machine took to get here
    for (let i = 0; i < 5; i++) c.send(1, serverIdFor(T), text(`b${i}`));
    expect((await c.frames(5)).map((f) => str(f.body))).toEqual(["b0", "b1", "b2", "b3", "b4"]);
    expect(await dropped()).toBe(3);
    expect(c.isClosed).toBe(false);
    c.close();
  });

  test("first-message and idle deadlines are counted on the clock, not in real time", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      {
        server: { first_message_timeout: "1h" },
        session: { idle_timeout: "90m" },
        routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
      },
      { clock },
    );
    const silent = await gw.connect();
    const active = await gw.connect();
    active.send(1, serverIdFor(T), text("hi"));
    expect(str((await active.next()).body)).toBe("hi");

    clock.tick(60 * 60 * 1000); // the silent one's first frame is now an hour late
    await silent.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "first_message_timeout" })).toBe(1);
    expect(active.isClosed).toBe(false);

    clock.tick(60 * 60 * 1000); // two hours since the active one's last frame (replies stamp real time: the margin covers it)
    await active.closed;
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "idle_timeout" })).toBe(1);
  });

  test("first_message_timeout fires at its timeout, never a millisecond before", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway({ server: { first_message_timeout: "1s" }, routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] } }, { clock });
    const pending = () => gw.gateway.status().pending_first_frame;
    // The witness opens 1 ms before the subject: when its deadline closes it, a sweep ran at the
    // instant that is 1 ms before the subject's, and that same sweep checked the subject.
    const witness = await gw.connect();
    await eventually(() => pending() === 1, "the witness to be accepted");
    clock.tick(1);
    const subject = await gw.connect();
    await eventually(() => pending() === 2, "the subject to be accepted");
    clock.tick(999);
    await witness.closed;
    // Still served: a closed (or closing) connection would not answer its first frame.
    subject.send(1, serverIdFor(T), text("in time"));
    expect(str((await subject.next()).body)).toBe("in time");
    expect(await gw.gateway.metrics.value("client_closes_total", { reason: "first_message_timeout" })).toBe(1);
    subject.close();
  });

  test("client sessions: the reference's 30 idle minutes, checked every 5; connection_pool.idle_timeout is not a client's", async () => {
    const be = await scope.backend();
    const clock = new ManualClock();
    const gw = scope.gateway(
      {
        // session.idle_timeout left at its default; the check interval is the reference's, not the harness's.
        session: { idle_check_interval: "5m" },
        // The reference's backend-connection idle life: it must not close a client after 1 minute.
        connection_pool: { idle_timeout: "1m" },
        server: { first_message_timeout: "1m" },
        routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
      },
      { clock },
    );
    const player = await gw.connect();
    player.send(1, serverIdFor(T), text("hi"));
    expect(str((await player.next()).body)).toBe("hi");
    const idleCloses = () => gw.gateway.metrics.value("client_closes_total", { reason: "idle_timeout" });

    // Advances the clock, then waits for a sweep to have run at the new time: a silent witness
    // connection past its first-message deadline is closed by the same sweep that checks idleness.
    const advance = async (ms: number): Promise<void> => {
      const witness = await gw.connect();
      await eventually(() => gw.gateway.status().pending_first_frame === 1, "the witness to be accepted");
      clock.tick(ms);
      await witness.closed;
    };

    await advance(29 * 60_000); // 29 idle minutes (checked at 29m: under 30)
    expect(player.isClosed).toBe(false);
    await advance(2 * 60_000); // 31 idle minutes, but the next check is at 34m: the reference's sweep would not see it yet
    expect(player.isClosed).toBe(false);
    expect(await idleCloses()).toBe(0);
    await advance(3 * 60_000); // 34 minutes: checked, and idle past 30
    await player.closed;
    expect(await idleCloses()).toBe(1);
  });
});
