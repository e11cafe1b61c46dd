// Builds dist/game-gateway: one self-contained executable. .env and bunfig.toml autoloading are
// off so a deployed binary behaves the same in every working directory.
import { $ } from "bun";

const out = "dist/game-gateway";
// process.execPath: the Bun running this script, whether or not `bun` is on PATH.
// The config loader's worker is a second entry point: a compiled binary can start only the workers
// it embeds, at their path under the entries' common root (src/config/load-off-thread.ts).
const entries = ["src/cli/main.ts", "src/config/load-worker.ts"];
await $`${process.execPath} build --compile --minify --sourcemap=inline --no-compile-autoload-dotenv --no-compile-autoload-bunfig ${entries} --outfile ${out}`;
console.log(`built ${out}`);
