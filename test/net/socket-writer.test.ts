import { describe, expect, test } from "bun:test";
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

function congestedWriter(highWater: number, queued: number) {
  let relieved = 0;
  const writer = new BatchedSocketWriter(1024, highWater, 1 << 20, () => relieved++);
  const sink = new ByteLimitedSink();
  writer.attach(sink);
  expect(writer.reserve(queued)).toBe(0);
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
    writer.reserve(1200);
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
