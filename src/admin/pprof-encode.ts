// JavaScriptCore's sampled stacks as a pprof CPU profile (github.com/google/pprof, proto/profile.proto):
// the format `go tool pprof` and speedscope open, and what operators of the reference gateway fetch
// from /debug/pprof/profile. Written by hand: the few messages a CPU profile needs are a small
// subset of protobuf, and a dependency for them would be larger than this file.

import type { SamplingProfileStackFrame, SamplingProfileStackTraces } from "bun:jsc";

/** JavaScriptCore's "unknown" line or column. */
const UNKNOWN_POSITION = 4294967295;

/** Appends protobuf wire format (varints and length-delimited fields) to a growing buffer. */
class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  /** Non-negative integers only: every value a CPU profile holds is one. */
  varint(value: number | bigint): void {
    let v = BigInt(value);
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  /** A varint field; zero is the default and is left out, as protobuf encoders do. */
  uint(field: number, value: number | bigint): void {
    if (value === 0 || value === 0n) return;
    this.varint(field << 3);
    this.varint(value);
  }

  bytes(field: number, data: Uint8Array): void {
    this.varint((field << 3) | 2);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  /** Always written, even when empty: the string table's first entry must be "". */
  string(field: number, s: string): void {
    this.bytes(field, Buffer.from(s, "utf8"));
  }

  /** A repeated scalar field in packed form. */
  packed(field: number, values: readonly number[]): void {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.bytes(field, inner.finish());
  }

  message(field: number, fill: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    fill(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Field numbers of profile.proto used here. */
const ProfileField = { sampleType: 1, sample: 2, mapping: 3, location: 4, function: 5, stringTable: 6, timeNanos: 9, durationNanos: 10, periodType: 11, period: 12, comment: 13 } as const;
const ValueTypeField = { type: 1, unit: 2 } as const;
const SampleField = { locationId: 1, value: 2 } as const;
const MappingField = { id: 1, filename: 5, hasFunctions: 7, hasFilenames: 8, hasLineNumbers: 9 } as const;
const LocationField = { id: 1, mappingId: 2, line: 4 } as const;
const LineField = { functionId: 1, line: 2, column: 3 } as const;
const FunctionField = { id: 1, name: 2, systemName: 3, filename: 4 } as const;

export interface CpuProfileMeta {
  /** Wall-clock start of the profile, in ms since the epoch. */
  readonly startedAtMs: number;
  /** How long the profiler ran, in ms. */
  readonly durationMs: number;
  /** Shown by `go tool pprof` under the profile's header lines. */
  readonly comments: readonly string[];
  /** The program's name, shown by `go tool pprof` as the main binary. */
  readonly program: string;
}

/** Every location belongs to the one mapping: the program, already symbolized. */
const MAPPING_ID = 1;

interface PprofFunction {
  readonly id: number;
  readonly name: number;
  readonly filename: number;
}

interface PprofLocation {
  readonly id: number;
  readonly functionId: number;
  readonly line: number;
  readonly column: number;
}

/** The string table, functions and locations of a profile, each deduplicated. */
class ProfileTables {
  readonly strings: string[] = [""];
  private readonly stringIds = new Map<string, number>([["", 0]]);
  readonly functions: PprofFunction[] = [];
  private readonly functionIds = new Map<string, PprofFunction>();
  readonly locations: PprofLocation[] = [];
  private readonly locationIds = new Map<string, number>();

  str(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  /** One location per function and sampled position in it. */
  location(frame: SamplingProfileStackFrame): number {
    const name = frame.name === "" ? "(anonymous)" : frame.name;
    // Native functions have no source; "(native)" keeps them apart from a same-named JS function.
    const file = frame.sourceURL ?? "(native)";
    const fnKey = `${name}\0${file}`;
    let fn = this.functionIds.get(fnKey);
    if (fn === undefined) {
      fn = { id: this.functions.length + 1, name: this.str(name), filename: this.str(file) };
      this.functions.push(fn);
      this.functionIds.set(fnKey, fn);
    }
    const line = frame.line === UNKNOWN_POSITION ? 0 : frame.line;
    const column = frame.column === UNKNOWN_POSITION ? 0 : frame.column;
    const locKey = `${fn.id}:${line}:${column}`;
    let id = this.locationIds.get(locKey);
    if (id === undefined) {
      id = this.locations.length + 1;
      this.locations.push({ id, functionId: fn.id, line, column });
      this.locationIds.set(locKey, id);
    }
    return id;
  }
}

/**
 * The samples as an uncompressed pprof Profile message (gzip it for the wire). Every sample is
 * counted as one sampling interval of CPU, which is what JavaScriptCore's profiler measures: it
 * records a stack only while the thread runs JavaScript or a native function it called, so idle
 * time in the event loop shows up as no samples, as it does in a Go CPU profile.
 */
export function encodePprofCpuProfile(trace: SamplingProfileStackTraces, meta: CpuProfileMeta): Uint8Array {
  const periodNs = Math.round(trace.interval * 1e9);
  const tables = new ProfileTables();
  // Identical stacks collapse into one sample with a count, as Go's profiler writes them.
  const counts = new Map<string, { locations: number[]; count: number }>();
  for (const { frames } of trace.traces) {
    if (frames.length === 0) continue;
    const locations = frames.map((f) => tables.location(f)); // innermost first, as pprof wants
    const key = locations.join(",");
    const seen = counts.get(key);
    if (seen === undefined) counts.set(key, { locations, count: 1 });
    else seen.count++;
  }

  const w = new ProtoWriter();
  const valueType = (field: number, type: string, unit: string): void =>
    w.message(field, (m) => {
      m.uint(ValueTypeField.type, tables.str(type));
      m.uint(ValueTypeField.unit, tables.str(unit));
    });
  valueType(ProfileField.sampleType, "samples", "count");
  valueType(ProfileField.sampleType, "cpu", "nanoseconds");
  for (const { locations, count } of counts.values()) {
    w.message(ProfileField.sample, (m) => {
      m.packed(SampleField.locationId, locations);
      m.packed(SampleField.value, [count, count * periodNs]);
    });
  }
  // A mapping that says names, files and lines are all there, so pprof does not try to symbolize
  // addresses (there are none) by asking the server's /debug/pprof/symbol.
  w.message(ProfileField.mapping, (m) => {
    m.uint(MappingField.id, MAPPING_ID);
    m.uint(MappingField.filename, tables.str(meta.program));
    m.uint(MappingField.hasFunctions, 1);
    m.uint(MappingField.hasFilenames, 1);
    m.uint(MappingField.hasLineNumbers, 1);
  });
  for (const loc of tables.locations) {
    w.message(ProfileField.location, (m) => {
      m.uint(LocationField.id, loc.id);
      m.uint(LocationField.mappingId, MAPPING_ID);
      m.message(LocationField.line, (l) => {
        l.uint(LineField.functionId, loc.functionId);
        l.uint(LineField.line, loc.line);
        l.uint(LineField.column, loc.column);
      });
    });
  }
  for (const fn of tables.functions) {
    w.message(ProfileField.function, (m) => {
      m.uint(FunctionField.id, fn.id);
      m.uint(FunctionField.name, fn.name);
      m.uint(FunctionField.systemName, fn.name);
      m.uint(FunctionField.filename, fn.filename);
    });
  }
  w.uint(ProfileField.timeNanos, BigInt(Math.round(meta.startedAtMs)) * 1_000_000n);
  w.uint(ProfileField.durationNanos, BigInt(Math.round(meta.durationMs * 1e6)));
  valueType(ProfileField.periodType, "cpu", "nanoseconds");
  w.uint(ProfileField.period, periodNs);
  const commentIds = meta.comments.map((c) => tables.str(c));
  if (commentIds.length > 0) w.packed(ProfileField.comment, commentIds);
  // Last, once every string has been interned; field order does not matter to a decoder.
  for (const s of tables.strings) w.string(ProfileField.stringTable, s);
  return w.finish();
}
