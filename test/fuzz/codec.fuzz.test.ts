// Seeded fuzzing of the stream codec: valid, mutated and random byte streams, cut at random
// points. Invariants: the reader never throws; it delivers exactly the valid frames of a valid
// stream; every frame it delivers is internally consistent; whatever it stops on, it gives its
// pooled buffer back.
import { expect, test } from "bun:test";
import { BufferPool } from "../../src/net/buffer-pool.ts";
import { FrameReader } from "../../src/net/frame-reader.ts";
import { CLIENT_HEADER_SIZE, encodeClientFrame, readClientBodyLength } from "../../src/protocol/client-frame.ts";
import { BackendFrameLayout, ClientFrameLayout } from "../../src/protocol/layouts.ts";
import { OpCode, SERVER_HEADER_SIZE, encodeBackendFrame, readServerLength } from "../../src/protocol/server-frame.ts";
import { Prng } from "./prng.ts";
import { concat } from "../support/bytes.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const CASES = Number(process.env.FUZZ_CASES ?? 60_000);
/**
 * A fixed amount of work, so its own limit rather than the suite's 60 s: about 10 s each on an idle
 * machine, 70-100 s when the suite ran beside stress-ng on a 2-core machine shared with others.
 */
const FIXED_WORK_TIMEOUT_MS = 300_000;


interface Outcome {
  frames: Uint8Array[];
  violation: string | null;
}

function run(layout: ClientFrameLayout | BackendFrameLayout, pool: BufferPool, chunks: Uint8Array[]): Outcome {
  const out: Outcome = { frames: [], violation: null };
  const reader = new FrameReader<string>(layout as never, {
    onFrame(b, off, len) {
      out.frames.push(b.slice(off, off + len));
      return true;
    },
    onFramingError(reason: string) {
      out.violation = reason;
    },
  }, pool);
  for (const c of chunks) reader.feed(c);
  reader.stop();
  return out;
}

test(`client codec: ${CASES} seeded cases (seed ${SEED})`, () => {
  const rng = new Prng(SEED);
  const pool = new BufferPool();
  const maxBody = 4096;
  const layout = new ClientFrameLayout(maxBody);
  let violations = 0;
  for (let c = 0; c < CASES; c++) {
    const frames = Array.from({ length: 1 + rng.int(6) }, () => encodeClientFrame(rng.int(65536), rng.int(2 ** 32), rng.bytes(rng.size(maxBody))));
    const stream = concat(frames);
    const kind = rng.int(3);
    const data = kind === 0 ? stream : kind === 1 ? rng.mutate(stream) : rng.bytes(rng.size(2000));
    const outcome = run(layout, pool, rng.split(data));
    if (kind === 0) {
      expect(outcome.violation).toBeNull();
      expect(outcome.frames).toEqual(frames);
    }
    for (const f of outcome.frames) {
      expect(f.length).toBe(CLIENT_HEADER_SIZE + readClientBodyLength(f, 0));
      expect(f.length - CLIENT_HEADER_SIZE).toBeLessThanOrEqual(maxBody);
    }
    if (outcome.violation !== null) violations++;
    expect(pool.stats().outstanding).toBe(0);
  }
  expect(violations).toBeGreaterThan(0); // the fuzzer does reach the error paths
}, FIXED_WORK_TIMEOUT_MS);

test(`backend codec: ${CASES} seeded cases (seed ${SEED + 1})`, () => {
  const rng = new Prng(SEED + 1);
  const pool = new BufferPool();
  const maxLength = 70_000;
  const layout = new BackendFrameLayout(maxLength);
  const seen = new Set<string>();
  for (let c = 0; c < CASES; c++) {
    const frames = Array.from({ length: 1 + rng.int(6) }, () =>
      encodeBackendFrame({ opcode: 1 + rng.int(8), sessionId: BigInt(rng.int(2 ** 31)), type: rng.int(70_000), body: rng.bytes(rng.size(4096)) }),
    );
    const stream = concat(frames);
    const kind = rng.int(3);
    const data = kind === 0 ? stream : kind === 1 ? rng.mutate(stream) : rng.bytes(rng.size(2000));
    const outcome = run(layout, pool, rng.split(data));
    if (kind === 0) expect(outcome.frames).toEqual(frames);
    for (const f of outcome.frames) {
      const length = readServerLength(f, 0);
      expect(f.length).toBe(SERVER_HEADER_SIZE + length);
      expect(length).toBeGreaterThanOrEqual(9);
      expect(length).toBeLessThanOrEqual(maxLength);
    }
    if (outcome.violation !== null) seen.add(outcome.violation);
    expect(pool.stats().outstanding).toBe(0);
  }
  expect([...seen].sort()).toEqual(["length_below_gate_header", "length_negative", "length_over_limit"]);
}, FIXED_WORK_TIMEOUT_MS);

test("OpCode values used by the fuzzer cover every opcode", () => {
  expect(Object.values(OpCode)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
});
