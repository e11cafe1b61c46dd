// The invariant checks (src/invariant.ts) run in tests and development and are compiled out of
// the release build: the gateway bundled with the release defines must hold none of them.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { RELEASE_DEFINE } from "../../scripts/build.ts";

const root = join(import.meta.dir, "../..");
/** One rule per checked module: the zero-copy reply path and the batched writer. */
const RULES = [
  "a lent frame is flushed before the lender yields to the event loop",
  "a lent frame is copied out before more is queued",
  "output is redirected before any was written",
  "reserved space is filled before the caller yields",
];

async function bundle(define: Record<string, string>): Promise<string> {
  const out = await Bun.build({ entrypoints: [join(root, "src/cli/main.ts")], target: "bun", minify: true, define });
  if (!out.success) throw new Error(out.logs.join("\n"));
  return await out.outputs[0]!.text();
}

test("the release bundle keeps no invariant check; a development bundle keeps every one", async () => {
  const release = await bundle(RELEASE_DEFINE);
  const dev = await bundle({});
  // Compared as lists, so a failure names the rules rather than printing a megabyte of bundle.
  expect(RULES.filter((rule) => !dev.includes(rule))).toEqual([]);
  expect(RULES.filter((rule) => release.includes(rule))).toEqual([]);
}, 60_000);
