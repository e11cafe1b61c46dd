// Builds dist/game-gateway: one self-contained executable. .env and bunfig.toml autoloading are
// off so a deployed binary behaves the same in every working directory.
import { $ } from "bun";

const out = "dist/game-gateway";
// process.execPath: the Bun running this script, whether or not `bun` is on PATH.
await $`${process.execPath} build --compile --minify --sourcemap=inline --no-compile-autoload-dotenv --no-compile-autoload-bunfig src/cli/main.ts --outfile ${out}`;
console.log(`built ${out}`);
