// What a built binary says about itself in --version. scripts/build.ts replaces these two
// process.env reads with string literals (--define), so a compiled binary carries its commit and
// target whatever its environment; run from source they are unset and the fallbacks say so.

/** The git commit the binary was built from (short hash, "-dirty" if the tree had changes); "source" when not built. */
export const BUILD_COMMIT: string = process.env.GAME_GATEWAY_BUILD_COMMIT || "source";

/** The bun --target it was compiled for, e.g. "linux-x64-musl"; "source" when not built. */
export const BUILD_TARGET: string = process.env.GAME_GATEWAY_BUILD_TARGET || "source";

/** The --version line: product version, commit, target and the embedded Bun runtime. */
export function versionLine(version: string): string {
  return `game-gateway ${version} (commit ${BUILD_COMMIT}, target ${BUILD_TARGET}, bun ${Bun.version})`;
}
