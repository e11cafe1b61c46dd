// Points a config problem at its place in the file: the YAML parser keeps each node's source
// range, so a key path ("routing.rules[2].strategy") can be walked back to a line and column.

import { type Document, isMap, isScalar, isSeq, type LineCounter } from "yaml";

export interface Position {
  readonly line: number;
  readonly col: number;
}

/** "routing.rules[2].strategy" -> ["routing", "rules", 2, "strategy"]; undefined for "(root)", "env X". */
export function segments(path: string): (string | number)[] | undefined {
  if (path.startsWith("(") || path.includes(" ")) return undefined;
  const out: (string | number)[] = [];
  for (const part of path.split(".")) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (m === null) return undefined;
    if (m[1] !== "") out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/**
 * The position of the value at `path` (or of its key, with `atKey`). When the path leaves the
 * file (a missing key, a value merged in from elsewhere) it is the deepest node that exists.
 */
export function locate(doc: Document, lines: LineCounter, path: string, atKey = false): Position | undefined {
  let node: unknown = doc.contents;
  let offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
  const segs = path === "(root)" ? [] : segments(path);
  if (segs === undefined) return undefined;
  for (const [i, seg] of segs.entries()) {
    const last = i === segs.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      const keyStart = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      const value = pair.value as { range?: [number, number, number] } | null;
      if ((last && atKey) || value?.range === undefined) {
        offset = keyStart ?? offset;
        break;
      }
      node = value;
      offset = value.range[0];
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as { range?: [number, number, number] } | undefined;
      if (item?.range === undefined) break;
      node = item;
      offset = item.range[0];
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset);
}

/**
 * Where to point a syntax error. The parser reports an unclosed bracket or quote where it gave up,
 * at the end of the file, a line below the mistake: such errors point at the last thing written.
 */
export function syntaxErrorPosition(text: string, lines: LineCounter, offset: number): Position {
  const end = text.trimEnd().length;
  return lines.linePos(offset >= end && end > 0 ? end - 1 : offset);
}
