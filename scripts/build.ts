// Builds game-gateway executables: each one self-contained. .env and bunfig.toml autoloading are
// off so a deployed binary behaves the same in every working directory.
//
//   bun scripts/build.ts                     dist/game-gateway, for this machine
//   bun scripts/build.ts --target linux-arm64  dist/linux-arm64/game-gateway
//   bun scripts/build.ts --all               each of RELEASE_TARGETS (npm run build:all)
//
// One directory per target: the binary and its source maps (one per entry point) side by side.
//
// A cross target's Bun runtime is downloaded from the npm registry on first use and cached.
// Source maps go beside the binary (<binary>.map ...), not inside it: the binary keeps only
// Bun's own compact line table, enough for file:line in stack traces.
import { $ } from "bun";
import { statSync } from "node:fs";

/**
 * NODE_ENV "production" turns the invariant checks' guards into constant false, so the minifier
 * drops them (src/invariant.ts): they run in tests and development, not in the release binary.
 * Exported for the test that checks the release bundle holds none of them.
 */
export const RELEASE_DEFINE: Record<string, string> = { "process.env.NODE_ENV": '"production"' };

/** The targets a release ships (bun build --target bun-<name>); the CPU/libc each one needs. */
export const RELEASE_TARGETS = {
  "linux-x64": "x86-64 with AVX2 (Haswell, 2013, or later), glibc",
  "linux-x64-baseline": "any x86-64 (no AVX2 needed), glibc",
  "linux-arm64": "64-bit ARM (Graviton, Ampere, Raspberry Pi 4/5 on a 64-bit OS), glibc",
  "linux-x64-musl": "x86-64 with AVX2, musl libc (Alpine)",
} as const;
export type ReleaseTarget = keyof typeof RELEASE_TARGETS;

// The config loader's worker is a second entry point: a compiled binary can start only the workers
// it embeds, at their path under the entries' common root (src/config/load-off-thread.ts).
// Span export (src/tracing/otlp-tracer.ts, the OpenTelemetry SDK) is a third, imported only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, so a binary without it never parses the SDK (load-tracer.ts).
// The gRPC backend transport (src/backend/grpc/grpc-transport.ts, @grpc/grpc-js) is a fourth, imported
// only when some route names a gRPC backend (load-grpc.ts).
const ENTRIES = ["src/cli/main.ts", "src/config/load-worker.ts", "src/tracing/otlp-tracer.ts", "src/backend/grpc/grpc-transport.ts"];

/** Where a target's binary is written, relative to the repository root. */
export function releaseBinaryPath(target: ReleaseTarget): string {
  return `dist/${target}/game-gateway`;
}

/**
 * Short commit hash, "-dirty" when the working tree differs from it; "unknown" outside a git
 * checkout. GIT_COMMIT, when set, wins: a container build has no .git (docker build --build-arg).
 */
async function gitCommit(): Promise<string> {
  const given = process.env.GIT_COMMIT?.trim();
  if (given) return given.slice(0, 40);
  const head = await $`git rev-parse --short=12 HEAD`.quiet().nothrow();
  if (head.exitCode !== 0) return "unknown";
  const dirty = (await $`git status --porcelain --untracked-files=no`.quiet().nothrow()).stdout.toString().trim() !== "";
  return head.stdout.toString().trim() + (dirty ? "-dirty" : "");
}

/** The host's own target name, for the plain build's --version. */
function hostTarget(): string {
  return `${process.platform}-${process.arch}`;
}

async function build(outfile: string, target: ReleaseTarget | null, commit: string): Promise<void> {
  const defines = {
    ...RELEASE_DEFINE,
    "process.env.GAME_GATEWAY_BUILD_COMMIT": JSON.stringify(commit),
    "process.env.GAME_GATEWAY_BUILD_TARGET": JSON.stringify(target ?? hostTarget()),
  };
  const define = Object.entries(defines).flatMap(([k, v]) => ["--define", `${k}=${v}`]);
  const targetArgs = target === null ? [] : [`--target=bun-${target}`];
  // process.execPath: the Bun running this script, whether or not `bun` is on PATH.
  await $`${process.execPath} build --compile ${targetArgs} --minify --sourcemap=external ${define} --no-compile-autoload-dotenv --no-compile-autoload-bunfig ${ENTRIES} --outfile ${outfile}`;
  const mb = (statSync(outfile).size / 1e6).toFixed(1);
  console.log(`built ${outfile} (${target ?? hostTarget()}, commit ${commit}): ${mb} MB`);
}

function parseTargets(argv: readonly string[]): { all: boolean; target: ReleaseTarget | null } {
  if (argv.length === 0) return { all: false, target: null };
  if (argv.length === 1 && argv[0] === "--all") return { all: true, target: null };
  const known = Object.keys(RELEASE_TARGETS);
  if (argv.length === 2 && argv[0] === "--target" && known.includes(argv[1] ?? "")) return { all: false, target: argv[1] as ReleaseTarget };
  throw new Error(`usage: bun scripts/build.ts [--all | --target <${known.join("|")}>], got: ${argv.join(" ") || "(nothing)"}`);
}

if (import.meta.main) {
  const { all, target } = parseTargets(process.argv.slice(2));
  const commit = await gitCommit();
  if (all) {
    for (const t of Object.keys(RELEASE_TARGETS) as ReleaseTarget[]) await build(releaseBinaryPath(t), t, commit);
  } else {
    await build(target === null ? "dist/game-gateway" : releaseBinaryPath(target), target, commit);
  }
}
