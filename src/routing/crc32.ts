// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320: zlib's, Go's crc32.ChecksumIEEE), fed a
// byte at a time. The reference gateway's hash strategies are crc32 of short ASCII keys
// ("7", "world:3:inst:7"); feeding the key's bytes straight from the numbers builds no string,
// so a pick allocates nothing.
//
// Usage: let c = CRC32_INIT; c = crc32Ascii(c, "world:"); c = crc32Decimal(c, 3); crc32Final(c).
// The running value is an int32 (the register before the final inversion).

const TABLE = ((): Int32Array => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** The register before any byte. */
export const CRC32_INIT = -1;

export function crc32Byte(crc: number, byte: number): number {
  return TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
}

/** Feeds an ASCII string's bytes (callers pass constants; other code units are truncated to 8 bits). */
export function crc32Ascii(crc: number, ascii: string): number {
  for (let i = 0; i < ascii.length; i++) crc = crc32Byte(crc, ascii.charCodeAt(i));
  return crc;
}

const ZERO = 0x30;

/** Feeds the decimal digits of an integer 0..2^31-1, as Go's strconv.Itoa writes them (no sign, no leading zeros). */
export function crc32Decimal(crc: number, n: number): number {
  if (n >= 10) crc = crc32Decimal(crc, (n / 10) | 0);
  return crc32Byte(crc, ZERO + (n % 10));
}

/** The checksum, as a u32. */
export function crc32Final(crc: number): number {
  return (crc ^ -1) >>> 0;
}
