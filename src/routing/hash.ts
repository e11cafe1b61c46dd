// FNV-1a, shared by routing (endpoint seeds) and sessions (the gateway-name bits of session IDs).
// Routing is the lower of the two layers: the session layer already depends on it.

/** FNV-1a over a string's UTF-16 code units, as a u32. For names: config-time, not per message. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
