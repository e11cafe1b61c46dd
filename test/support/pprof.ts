// Reads a gzipped pprof profile (github.com/google/pprof, proto/profile.proto) the way a viewer
// does: zlib's gunzip, then the protobuf wire format field by field. Written from the .proto, not
// from the gateway's encoder, so a field the encoder numbers or types wrongly fails here.
// (Checked once against the pprof-format npm package and `go tool pprof`: see docs/performance.md.)
import { gunzipSync } from "node:zlib";

export interface PprofProfile {
  readonly sampleTypes: readonly string[]; // "type/unit"
  readonly periodType: string;
  readonly period: number;
  readonly durationNanos: number;
  readonly comments: readonly string[];
  /** One entry per sample: its stack (innermost first) as "function file:line", and its values. */
  readonly samples: readonly { readonly stack: readonly string[]; readonly values: readonly number[] }[];
}

type Field = { readonly no: number; readonly varint?: bigint; readonly bytes?: Uint8Array };

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    switch (key & 7) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 2: {
        const len = Number(varint());
        if (i + len > buf.length) throw new Error(`field ${no}: length ${len} past the end`);
        out.push({ no, bytes: buf.subarray(i, i + len) });
        i += len;
        break;
      }
      default:
        throw new Error(`field ${no}: wire type ${key & 7} has no place in profile.proto`);
    }
  }
  return out;
}

const num = (fs: Field[], no: number): number => Number(fs.find((f) => f.no === no)?.varint ?? 0n);

/** A repeated integer field, packed or not (a decoder must accept both). */
function ints(fs: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of fs.filter((x) => x.no === no)) {
    if (f.varint !== undefined) out.push(Number(f.varint));
    else for (const p of fields(packedAsFields(f.bytes!))) out.push(Number(p.varint));
  }
  return out;
}

/** Packed varints carry no keys; give each one a field-1 key so `fields` can read them. */
function packedAsFields(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    out.push(0x08);
    do out.push(bytes[i]!);
    while (bytes[i++]! >= 0x80);
  }
  return Uint8Array.from(out);
}

export function decodePprof(gzipped: Uint8Array): PprofProfile {
  const top = fields(gunzipSync(gzipped));
  const strings = top.filter((f) => f.no === 6).map((f) => new TextDecoder().decode(f.bytes));
  if (strings[0] !== "") throw new Error(`string_table[0] must be "", got ${JSON.stringify(strings[0])}`);
  const str = (i: number): string => {
    if (i >= strings.length) throw new Error(`string index ${i} past the table (${strings.length})`);
    return strings[i]!;
  };
  const sub = (no: number): Field[][] => top.filter((f) => f.no === no).map((f) => fields(f.bytes!));
  const valueType = (fs: Field[]): string => `${str(num(fs, 1))}/${str(num(fs, 2))}`;
  const functions = new Map(sub(5).map((fs) => [num(fs, 1), `${str(num(fs, 2))} ${str(num(fs, 4))}`]));
  const locations = new Map(
    sub(4).map((fs) => {
      const line = fields(fs.find((f) => f.no === 4)!.bytes!);
      const fn = functions.get(num(line, 1));
      if (fn === undefined) throw new Error(`location ${num(fs, 1)} names function ${num(line, 1)}, which is not in the profile`);
      return [num(fs, 1), `${fn}:${num(line, 2)}`];
    }),
  );
  const periodType = top.find((f) => f.no === 11);
  return {
    sampleTypes: sub(1).map(valueType),
    periodType: periodType === undefined ? "" : valueType(fields(periodType.bytes!)),
    period: num(top, 12),
    durationNanos: num(top, 10),
    comments: ints(top, 13).map(str),
    samples: sub(2).map((fs) => ({
      stack: ints(fs, 1).map((id) => {
        const loc = locations.get(id);
        if (loc === undefined) throw new Error(`sample names location ${id}, which is not in the profile`);
        return loc;
      }),
      values: ints(fs, 2),
    })),
  };
}
