// Bundles the browser example (examples/browser/game.ts) into examples/browser/dist/game.js,
// which src/demo/demo-web.ts embeds as text, so `bun src/cli/main.ts` and the compiled binary
// serve the same file without a build step at start. The bundle is committed; rerun this after
// changing game.ts (test/demo/demo-web.test.ts fails while the committed bundle is stale).
//
//   bun scripts/build-browser-example.ts [outdir]
import { join } from "node:path";

const root = join(import.meta.dir, "..");

export async function buildBrowserExample(outdir = join(root, "examples/browser/dist")): Promise<string> {
  const result = await Bun.build({
    entrypoints: [join(root, "examples/browser/game.ts")],
    outdir,
    target: "browser",
    naming: "game.js",
    minify: false,
  });
  if (!result.success) throw new AggregateError(result.logs, "bun build of examples/browser/game.ts failed");
  return join(outdir, "game.js");
}

if (import.meta.main) console.log(`wrote ${await buildBrowserExample(process.argv[2])}`);
