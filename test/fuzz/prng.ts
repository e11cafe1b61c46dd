/** A small seeded PRNG (mulberry32): fuzz cases are reproducible from the seed printed on failure. */
export class Prng {
  constructor(private state: number) {}

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** Mostly small sizes, sometimes large: where framing bugs live. */
  size(max: number): number {
    const r = this.next();
    if (r < 0.6) return this.int(Math.min(64, max + 1));
    if (r < 0.9) return this.int(Math.min(4096, max + 1));
    return this.int(max + 1);
  }

  /** Cuts data into random chunks. */
  split(data: Uint8Array): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let at = 0;
    while (at < data.length) {
      const n = 1 + (this.next() < 0.3 ? this.int(8) : this.int(data.length - at));
      parts.push(data.subarray(at, Math.min(data.length, at + n)));
      at += n;
    }
    return parts;
  }

  /** Flips, overwrites, inserts or deletes a few bytes. */
  mutate(data: Uint8Array): Uint8Array {
    const out = Array.from(data);
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(out.length + 1);
      switch (this.int(4)) {
        case 0:
          if (at < out.length) out[at] = out[at]! ^ (1 << this.int(8));
          break;
        case 1:
          if (at < out.length) out[at] = this.int(256);
          break;
        case 2:
          out.splice(at, 0, ...this.bytes(1 + this.int(8)));
          break;
        case 3:
          out.splice(at, 1 + this.int(8));
          break;
      }
    }
    return Uint8Array.from(out);
  }
}
