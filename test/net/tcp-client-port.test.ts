// TcpClientPort's output path against a socket that takes only part of each write: a lent frame
// that goes out in pieces must still go out whole after its lender reuses the buffer, frames keep
// their order across lend/send/partial writes, and the port's invariants name a broken rule.
import { describe, expect, test } from "bun:test";
import { gcAndSweep, heapStats } from "bun:jsc";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { InvariantError } from "../../src/invariant.ts";
import { concat } from "../support/bytes.ts";
import { drainAll, portOverPartialSocket } from "../support/partial-socket.ts";

/** A client frame whose body is `size` bytes of `fill`. */
function frame(messageId: number, size: number, fill: number): Uint8Array {
  return encodeClientFrame(messageId, 0x0001_0007, new Uint8Array(size).fill(fill));
}

describe("TcpClientPort over a socket that takes a few bytes per write", () => {
  test("a lent frame written in part is copied before its lender reuses the buffer", () => {
    const { port, socket } = portOverPartialSocket(5);
    const chunk = frame(1, 40, 0xaa); // stands for the backend chunk the frame is lent from
    const expected = chunk.slice();
    expect(port.lend(chunk, 0, chunk.length)).toBe(true);
    port.flush();
    expect(socket.bytes().length).toBeLessThan(expected.length); // the rest waits in the port
    chunk.fill(0xee); // the backend connection reads its next chunk into the same memory
    socket.perWrite = 7;
    drainAll(port, socket);
    expect(socket.bytes()).toEqual(expected);
  });

  test("frames keep their order across lend, send and partial writes, flush after flush", () => {
    const { port, socket } = portOverPartialSocket(3);
    const sent: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      const lender = concat([frame(round, 10 + round, round), frame(round + 100, 5, 0x55)]);
      const first = lender.subarray(0, 18 + round);
      const second = lender.subarray(18 + round);
      // One frame lent, then another lent behind it (the first is spilled), then one copied.
      port.lend(lender, 0, first.length);
      port.lend(lender, first.length, second.length);
      const extra = frame(round + 200, 3, 0x77);
      port.send(extra, 0, extra.length);
      sent.push(first.slice(), second.slice(), extra.slice());
      port.flush();
      lender.fill(0); // each lender is reused once its frames were flushed
      extra.fill(0); // send() copied: the caller may reuse its buffer at once
      socket.perWrite = 1 + (round % 4);
    }
    socket.perWrite = 1 << 20;
    drainAll(port, socket);
    expect(socket.bytes()).toEqual(concat(sent));
  });

  test("a client that reads nothing is closed as a slow reader at the queue bound, and the queue is freed", () => {
    const { port, socket, events } = portOverPartialSocket(0, { writeQueueLimit: 4096 });
    const f = frame(1, 1000, 1);
    let accepted = 0;
    while (port.send(f, 0, f.length)) accepted++;
    expect(accepted).toBe(4); // 4 x 1,008 bytes fit in 4,096; the fifth would not
    expect(port.closing).toBe(true);
    expect(socket.terminated).toBe(true);
    port.onClosed();
    expect(events.closed).toEqual(["slow_reader"]);
    expect(port.queuedBytes).toBe(0);
  });

  test("close() delivers what is queued, then ends; the first reason wins", () => {
    const { port, socket, events } = portOverPartialSocket(4);
    const f = frame(9, 30, 9);
    port.send(f, 0, f.length);
    port.close("kick");
    port.close("idle_timeout");
    expect(socket.ended).toBe(false); // still owed bytes: the close timeout bounds the wait
    expect(socket.timeoutSeconds).toBeGreaterThan(0);
    drainAll(port, socket);
    expect(socket.ended).toBe(true);
    expect(socket.bytes()).toEqual(f);
    port.onClosed();
    expect(events.closed).toEqual(["kick"]);
  });
});

describe("TcpClientPort input read while paused for backpressure", () => {
  // Under backpressure this path runs per read: held input must not cost an allocation per read.
  test("is framed whole on resume, and holding and framing it allocate no closure scope or view", async () => {
    const { port, events } = portOverPartialSocket(1 << 20);
    const cycle = async (first: number, n: number): Promise<void> => {
      port.pauseReading();
      for (let i = first; i < first + n; i++) port.onData(frame(i, 20, i & 0xff));
      port.resumeReading();
      await Promise.resolve(); // the held input is framed from a microtask
    };
    await cycle(0, 5); // the first pause makes the port's ring and its pooled buffer, once
    const chunks = Array.from({ length: 50 }, (_, i) => frame(100 + i, 20, i));
    // heapStats counts cells until they are swept: after a full collection the difference is what
    // was allocated in between (dead or alive).
    gcAndSweep();
    const before = heapStats().objectTypeCounts;
    port.pauseReading();
    for (const c of chunks) port.onData(c);
    port.resumeReading();
    await Promise.resolve();
    const after = heapStats().objectTypeCounts;
    expect(events.frames.slice(5)).toEqual(chunks);
    expect((after.JSLexicalEnvironment ?? 0) - (before.JSLexicalEnvironment ?? 0)).toBe(0);
    // The 50 copies RecordedEvents keeps of the frames, and nothing else.
    expect((after.Uint8Array ?? 0) - (before.Uint8Array ?? 0)).toBe(50);
  });
});

describe("TcpClientPort invariants (development builds)", () => {
  test("a frame still lent when a socket event arrives means the lender did not flush before yielding", () => {
    const { port } = portOverPartialSocket(1 << 20);
    const chunk = frame(1, 8, 1);
    port.lend(chunk, 0, chunk.length); // and no flush(): the lender's bug
    expect(() => port.onData(new Uint8Array(0))).toThrow(InvariantError);
    expect(() => port.onDrain()).toThrow("a lent frame is flushed before the lender yields to the event loop");
  });
});
