import { describe, expect, test } from "bun:test";
import { gcAndSweep, heapStats } from "bun:jsc";
import { BatchedSocketWriter, EARLY_WRITE_BYTES, type ByteSink } from "../../src/net/socket-writer.ts";

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

describe("BatchedSocketWriter: a batch past EARLY_WRITE_BYTES is written before the turn ends", () => {
  // A loop with a backlog of reads runs immediates only after it, so the end-of-turn flush is not
  // the only point at which a large batch goes out.
  const FRAME = 1000;

  test("the reservation after the threshold writes everything queued, in order, without waiting for the turn", async () => {
    const sink = new ByteLimitedSink();
    sink.room = Number.MAX_SAFE_INTEGER;
    let relieved = 0;
    const writer = new BatchedSocketWriter(1024, 1 << 20, 1 << 22, () => relieved++);
    writer.attach(sink);
    await nextTurn();
    const frames = Math.ceil(EARLY_WRITE_BYTES / FRAME);
    for (let i = 0; i < frames; i++) reserveFilled(writer, FRAME);
    expect(sink.written).toBe(0); // at the threshold, not past it: still one write per turn
    reserveFilled(writer, FRAME);
    expect(sink.written).toBe(frames * FRAME); // everything before the new frame, synchronously
    expect(writer.queuedBytes).toBe(FRAME);
    expect(relieved).toBe(0); // relief waits for the turn's flush
    await nextTurn();
    expect(sink.written).toBe((frames + 1) * FRAME);
  });

  test("a socket that took part of an early write gets no more until the flush, then early writes resume", async () => {
    let calls = 0;
    const sink = new ByteLimitedSink();
    const counted: ByteSink = { write: (d, o, l) => (calls++, sink.write(d, o, l)) };
    const writer = new BatchedSocketWriter(1024, 1 << 20, 1 << 22, () => {});
    writer.attach(counted);
    await nextTurn();
    calls = 0;
    sink.room = 10_000; // the kernel buffer takes a little, then is full
    const frames = Math.ceil(EARLY_WRITE_BYTES / FRAME) + 1;
    for (let i = 0; i < frames * 3; i++) reserveFilled(writer, FRAME);
    expect(calls).toBe(1); // one short early write, not one per frame while the socket is full
    expect(sink.written).toBe(10_000);
    sink.room = Number.MAX_SAFE_INTEGER; // drained: the drain handler calls flush()
    writer.flush();
    expect(writer.queuedBytes).toBe(0);
    calls = 0;
    for (let i = 0; i < frames; i++) reserveFilled(writer, FRAME);
    expect(calls).toBe(1);
  });

  test("through a real loopback socket, a 1 MiB burst reaches the peer intact", async () => {
    const got: Uint8Array[] = [];
    let received = 0;
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (_s, d) => { got.push(new Uint8Array(d)); received += d.length; } },
    });
    let writes = 0;
    const client = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {}, drain: () => writer.flush() } });
    const sink: ByteSink = { write: (d, o, l) => (writes++, client.write(d, o, l)) };
    const writer = new BatchedSocketWriter(1024, 4 << 20, 8 << 20, () => {});
    writer.attach(sink);
    await nextTurn();
    writes = 0;
    const count = Math.ceil((1 << 20) / FRAME);
    for (let i = 0; i < count; i++) {
      const at = writer.reserve(FRAME);
      for (let j = 0; j < FRAME; j++) writer.bytes[at + j] = (i + j) & 0xff;
    }
    expect(writes).toBeGreaterThan(1); // written during the burst, not only at the end of the turn
    const want = count * FRAME;
    const deadline = Date.now() + 10_000;
    while (received < want && Date.now() < deadline) await Bun.sleep(5);
    client.end();
    server.stop(true);
    const all = Buffer.concat(got);
    expect(all.length).toBe(want);
    for (let i = 0; i < count; i++) {
      const at = i * FRAME;
      if (all[at] !== (i & 0xff) || all[at + FRAME - 1] !== ((i + FRAME - 1) & 0xff)) throw new Error(`frame ${i} out of order or corrupt`);
    }
  });
});
