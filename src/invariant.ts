// Rules the code relies on but the type system cannot state, checked where the rule matters (as
// undici does with assert). A broken invariant is a gateway bug, never bad input: bad input gets
// its own typed answer (violations, close reasons) and must not reach these checks.
//
// Checks run under `bun test`, `npm start` and `npm run dev`, and are compiled out of the release
// binary: scripts/build.ts defines process.env.NODE_ENV as "production", which makes every guard
// `if (process.env.NODE_ENV !== "production")` a constant false the minifier drops. The guard is
// written at each call site because Bun's minifier does not fold a constant imported from another
// module (a shared `const ASSERTS` would stay in the binary as a live branch).
//
// This module imports nothing, so any layer (protocol, net, session, backend) may use it.

/** A rule of the code was broken: the message names the rule. */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
}

/** Throws InvariantError naming `rule` unless ok. Pass a constant string: no building per call. */
export function invariant(ok: boolean, rule: string): asserts ok {
  if (!ok) throw new InvariantError(rule);
}
