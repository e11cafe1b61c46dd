/**
 * Copies src[srcOff, srcOff+len) to dst at dstOff. Small copies use a plain loop: creating a
 * subarray view for TypedArray.set costs more than copying a few dozen bytes.
 */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  if (len <= 64) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}
