import { describe, expect, test } from "bun:test";
import { gcAndSweep, heapStats } from "bun:jsc";
import { BatchedSocketWriter, type ByteSink } from "../../src/net/socket-writer.ts";

// A socket whose kernel buffer takes `room` more bytes: the partial writes a real socket makes
// under load, in an order a test can choose (a loopback socket drains too fast to pin one down).
class ByteLimitedSink implements ByteSink {
  room = 0;
  written = 0;
  write(_data: Uint8Array, _off = 0, len = 0): number {
    const n = Math.min(len, this.room);
    this.room -= n;
    this.written += n;
    return n;
  }
}

/** Reserves n bytes and fills them, as every caller must before yielding. */
function reserveFilled(writer: BatchedSocketWriter, n: number): number {
  const at = writer.reserve(n);
  if (at >= 0) writer.bytes.fill(0x42, at, at + n);
  return at;
}

function congestedWriter(highWater: number, queued: number) {
  let relieved = 0;
  const writer = new BatchedSocketWriter(1024, highWater, 1 << 20, () => relieved++);
  const sink = new ByteLimitedSink();
  writer.attach(sink);
  expect(reserveFilled(writer, queued)).toBe(0);
  expect(writer.congested).toBe(true);
  return { writer, sink, relieved: () => relieved };
}

describe("BatchedSocketWriter relief", () => {
  test("fires once the queue is at half of high water, even when it got there over several writes", () => {
    const { writer, sink, relieved } = congestedWriter(1000, 2500);
    sink.room = 1800; // 700 left: under high water, not yet under half of it
    writer.flush();
    expect(writer.queuedBytes).toBe(700);
    expect(writer.congested).toBe(false);
    expect(relieved()).toBe(0);
    sink.room = 200; // 500 left: half of high water
    writer.flush();
    expect(relieved()).toBe(1);
    sink.room = 500;
    writer.flush();
    expect(writer.queuedBytes).toBe(0);
    expect(relieved()).toBe(1); // once per congestion, not per write
  });

  test("fires again after the next congestion", () => {
    const { writer, sink, relieved } = congestedWriter(1000, 1500);
    sink.room = 1500;
    writer.flush();
    expect(relieved()).toBe(1);
    reserveFilled(writer, 1200);
    sink.room = 1200;
    writer.flush();
    expect(relieved()).toBe(2);
  });

  test("requestRelief with nothing queued fires on the next event-loop turn", async () => {
    const { writer, sink, relieved } = congestedWriter(1000, 1500);
    sink.room = 1500;
    writer.flush();
    expect(relieved()).toBe(1);
    writer.requestRelief();
    expect(relieved()).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(relieved()).toBe(2);
  });
});

describe("BatchedSocketWriter: reserved space is filled before the caller yields", () => {
  test("a reservation left unfilled until the flush is reported, naming the rule", () => {
    const writer = new BatchedSocketWriter(64, 1 << 16, 1 << 20, () => {});
    const sink = new ByteLimitedSink();
    sink.room = 1 << 20;
    writer.attach(sink);
    reserveFilled(writer, 20);
    writer.reserve(20); // the caller "awaits" here instead of encoding its frame
    expect(() => writer.flush()).toThrow("reserved space is filled before the caller yields");
    writer.detach(); // the flush already scheduled for the next turn finds nothing
  });

  test("filled reservations pass the check across growth of the buffer and partial writes", () => {
    const writer = new BatchedSocketWriter(64, 1 << 16, 1 << 20, () => {});
    const sink = new ByteLimitedSink();
    writer.attach(sink);
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) reserveFilled(writer, 8 + ((round * 7 + i) % 90)); // outgrows 64 bytes
      sink.room = 33; // the socket takes a little each time
      writer.flush();
    }
    sink.room = 1 << 20;
    writer.flush();
    expect(writer.queuedBytes).toBe(0);
  });
});

/** A sink that takes everything and counts the write calls it got. */
class CountingSink implements ByteSink {
  writes = 0;
  bytes = 0;
  onWrite: () => void = () => {};
  write(_data: Uint8Array, _off = 0, len = 0): number {
    this.writes++;
    this.bytes += len;
    this.onWrite();
    return len;
  }
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("BatchedSocketWriter: one flush per event-loop turn for every writer", () => {
  test("writers that reserve in the same turn share one Immediate, and each writes once on the next turn", async () => {
    const sinks = Array.from({ length: 10 }, () => new CountingSink());
    const writers = sinks.map((sink) => {
      const w = new BatchedSocketWriter(1024, 1 << 16, 1 << 20, () => {});
      w.attach(sink);
      return w;
    });
    await nextTurn(); // attach() schedules a flush of its own: let it pass
    // heapStats counts cells until they are swept, so after a full collection the difference is
    // what was allocated in between: Bun makes an Immediate object per setImmediate call.
    gcAndSweep();
    const before = heapStats().objectTypeCounts.Immediate ?? 0;
    for (const w of writers) for (let i = 0; i < 3; i++) reserveFilled(w, 100);
    expect((heapStats().objectTypeCounts.Immediate ?? 0) - before).toBe(1);
    expect(sinks.map((s) => s.writes)).toEqual(Array(10).fill(0));
    await nextTurn();
    expect(sinks.map((s) => s.writes)).toEqual(Array(10).fill(1));
    expect(sinks.map((s) => s.bytes)).toEqual(Array(10).fill(300));
  });

  test("a writer scheduled while the turn's flush runs writes on the following turn, as with its own setImmediate", async () => {
    const first = new CountingSink();
    const second = new CountingSink();
    const a = new BatchedSocketWriter(1024, 1 << 16, 1 << 20, () => {});
    const b = new BatchedSocketWriter(1024, 1 << 16, 1 << 20, () => {});
    a.attach(first);
    b.attach(second);
    await nextTurn();
    // Writing a's batch makes more output for a and b (a client resumed by relief sends at once).
    first.onWrite = () => {
      first.onWrite = () => {};
      reserveFilled(a, 10);
      reserveFilled(b, 10);
    };
    reserveFilled(a, 10);
    await nextTurn();
    expect([first.writes, second.writes]).toEqual([1, 0]);
    await nextTurn();
    expect([first.writes, second.writes]).toEqual([2, 1]);
  });
});
