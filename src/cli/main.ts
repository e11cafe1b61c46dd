#!/usr/bin/env bun
// Process entry point: the one place that wires a gateway to the process (argv, signals, exit).
//
// Under `bun --hot` (npm run dev) Bun evaluates this module again on every save. What must
// outlive one evaluation lives in a ProcessState on globalThis: the listening sockets (a
// HotBinder reload()s them with the new code's handlers instead of binding twice), the signal
// handlers (installed once) and the running app, which the next evaluation retires. Without
// --hot there is one evaluation and a fresh ProcessState that binds directly.
import pkg from "../../package.json" with { type: "json" };
import { ConfigError, defaultConfig, loadConfigFile } from "../config/load.ts";
import { inspectDefaultPath } from "../config/default-path.ts";
import { ConfigWatcher } from "../config/watcher.ts";
import type { GatewayConfig } from "../config/types.ts";
import { DemoBackend } from "../demo/demo-backend.ts";
import { DemoWeb } from "../demo/demo-web.ts";
import { makeServerId } from "../protocol/client-frame.ts";
import { Gateway } from "../gateway.ts";
import { loadtestMain } from "../loadtest/main.ts";
import { Logger } from "../log/logger.ts";
import { type Binder, directBinder, HotBinder, ListenError } from "../net/binder.ts";
import { TlsFileError } from "../net/tls-material.ts";
import { OtlpSettingsError } from "../tracing/otlp-settings.ts";
import { tracerFromEnv } from "../tracing/load-tracer.ts";
import { loadGrpcTransport } from "../backend/grpc/load-grpc.ts";
import { grpcEndpointsFromConfig } from "../config/module-options.ts";
import { usesRouteFeed } from "../discovery/route-feed.ts";
import { healthcheck } from "./healthcheck.ts";
import { USAGE, UsageError, parseArgs, type Command } from "./args.ts";
import { versionLine } from "./build-info.ts";
import { superviseGroup, workerCountFrom } from "./supervise.ts";
import { pinnedPortsFromEnv, pinWorkerConfig, workerSlotFromEnv } from "../supervisor/launch.ts";
import { WorkerSide } from "../supervisor/worker-side.ts";
import { RemoteAdmission } from "../net/remote-admission.ts";

/** Where the reference gateway reads its config when given no -config: relative to the working directory. */
const DEFAULT_CONFIG_PATH = "config/config.yaml";

/** Server types the embedded demo backend answers in demo mode. */
const DEMO_SERVER_TYPES = [10, 15, 200];
/** The one the browser example's chat room speaks to. */
const DEMO_WEB_SERVER_TYPE = 200;
/** The dedicated WebSocket listener of demo mode when the config has none: the browser example needs one. */
const DEMO_WS_LISTEN_ADDR = "127.0.0.1:0";

/** What one evaluation of this module started; signals and the next evaluation act on it. */
interface App {
  /** First SIGINT/SIGTERM: graceful stop. */
  stop(): Promise<void>;
  /** Second signal: the process exits without stopping; write out what is still batched. */
  flush(): void;
  /** SIGHUP; null when there is no config file to reload. */
  readonly reloadConfig: (() => void) | null;
  /** Newer code took over the listening sockets: stop watching, let live sessions finish here. */
  retire(): Promise<void>;
}

interface ProcessState {
  readonly binder: Binder;
  app: App | null;
  /** Apps retired by a code reload whose sessions have not all ended yet. */
  readonly retired: Set<App>;
  signalsInstalled: boolean;
  stopping: boolean;
}

const HOT = process.execArgv.includes("--hot");
/**
 * Demo mode serves the browser example, except under --hot: a code reload would bind its page and
 * WebSocket listener afresh on new ephemeral ports beside the retiring code's (the HotBinder keeps
 * only Bun.listen sockets), so the dev loop keeps to the TCP listeners it can carry over.
 */
const SERVE_DEMO_PAGE = !HOT;
const STATE_KEY = Symbol.for("game-gateway.process-state");

function processState(): ProcessState {
  const fresh = (): ProcessState => ({
    binder: HOT ? new HotBinder() : directBinder,
    app: null,
    retired: new Set(),
    signalsInstalled: false,
    stopping: false,
  });
  if (!HOT) return fresh();
  const g = globalThis as unknown as Record<symbol, ProcessState | undefined>;
  return (g[STATE_KEY] ??= fresh());
}

const state = processState();

function fail(message: string, code = 1): never {
  process.stderr.write(`game-gateway: ${message}\n`);
  process.exit(code);
}

/** The config and its warnings, which the caller logs once the logger exists; exits on a ConfigError. */
async function loadOrExit(path: string, requireRoutes: boolean): Promise<{ config: GatewayConfig; warnings: readonly string[] }> {
  try {
    return await loadConfigFile(path, process.env, { requireRoutes });
  } catch (e) {
    if (e instanceof ConfigError) fail(`invalid config ${path}:\n${e.message}`);
    throw e;
  }
}

/** Like `nginx -t`: every problem on its own line ("file:line:col key: expected ..., got ..."), then a verdict. */
async function checkConfig(path: string): Promise<void> {
  try {
    const { config, warnings } = await loadConfigFile(path);
    for (const w of warnings) process.stderr.write(`${path}: warning: ${w}\n`);
    const rules = config.routing.rules.length;
    console.log(`${path}: valid (${rules} routing rule${rules === 1 ? "" : "s"})`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const n = e.issues.length;
    process.stderr.write(`${e.message}\n`);
    fail(`${path}: invalid (${n} problem${n === 1 ? "" : "s"})`);
  }
}

/** `config` with every demo server type routed to the embedded demo backend. */
function withDemoRoutes(config: GatewayConfig, demoPort: number, liftPerIpLimits: boolean, servePage: boolean): GatewayConfig {
  const endpoint = `127.0.0.1:${demoPort}`;
  const rules = DEMO_SERVER_TYPES.map((t) => ({
    server_type: t,
    world_id: 0,
    service_name: "demo",
    strategy: "round_robin" as const,
    endpoints: [endpoint],
  }));
  // The demo is for trying the gateway from one machine: one IP, so per-IP limits are lifted.
  const security = liftPerIpLimits
    ? { ...config.security, max_connections_per_ip: 1_000_000, connection_rate_limit: 1_000_000 }
    : config.security;
  // The browser example (served in demo mode) speaks to the dedicated WebSocket listener.
  const server = servePage && config.server.ws_listen_addr === "" ? { ...config.server, ws_listen_addr: DEMO_WS_LISTEN_ADDR } : config.server;
  return { ...config, server, security, routing: { ...config.routing, rules } };
}

/**
 * Installed once per process (a hot re-evaluation must not add a second set); they act on
 * state.app, and before there is one a stop signal just exits.
 */
function installSignals(): void {
  if (state.signalsInstalled) return;
  state.signalsInstalled = true;
  const stop = (signal: string): void => {
    if (state.stopping) exitNow(`second ${signal}`);
    beginStop();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => {
    const reload = state.app?.reloadConfig ?? null;
    if (reload === null) process.stderr.write("game-gateway: SIGHUP: no config file to reload\n");
    else reload();
  });
}

/** What a first SIGINT/SIGTERM does (and a worker's supervisor asking it to drain): every app stops, then the process exits 0. */
function beginStop(): void {
  if (state.stopping) return;
  state.stopping = true;
  const apps = [...(state.app === null ? [] : [state.app]), ...state.retired];
  if (apps.length === 0) process.exit(0);
  Promise.all(apps.map((a) => a.stop())).then(
    () => process.exit(0),
    (e) => fail(`shutdown failed: ${e}`),
  );
}

/** What a second stop signal does: write out what is batched and exit 1 without stopping. */
function exitNow(why: string): never {
  process.stderr.write(`game-gateway: ${why}, exiting now\n`);
  state.app?.flush();
  for (const app of state.retired) app.flush();
  process.exit(1);
}

/** Makes `app` the one signals act on; the app of a previous hot evaluation keeps only its sessions. */
function takeOver(app: App): void {
  const previous = state.app;
  state.app = app;
  if (previous === null) return;
  state.retired.add(previous);
  void previous.retire().then(() => state.retired.delete(previous));
}

/**
 * --config's file; else DEFAULT_CONFIG_PATH when a file is there; else, when nothing is there,
 * none (the demo), with why. Anything else at the default path stops the start.
 */
async function locateConfig(flagPath: string | null): Promise<{ path: string | null; why: string }> {
  if (flagPath !== null) return { path: flagPath, why: "--config" };
  const found = await inspectDefaultPath(DEFAULT_CONFIG_PATH);
  if (found.kind === "file") return { path: DEFAULT_CONFIG_PATH, why: `no --config, so ${DEFAULT_CONFIG_PATH} in ${process.cwd()}` };
  if (found.kind === "unusable") {
    fail(`no --config, and ${DEFAULT_CONFIG_PATH} in ${process.cwd()} ${found.problem}: expected a readable YAML config file there, or nothing (the demo)`);
  }
  return { path: null, why: `no --config and no ${DEFAULT_CONFIG_PATH} in ${process.cwd()}` };
}

/** This process's place in a group of workers (its supervisor set the variable), or null: it is not a worker. */
function workerSlotOrExit() {
  try {
    return workerSlotFromEnv(process.env);
  } catch (e) {
    fail((e as Error).message);
  }
}

async function runGateway(flagPath: string | null, demoFlag: boolean, workersFlag: number | null): Promise<void> {
  // Before anything is announced: whoever reads the start line may signal at once.
  installSignals();
  const slot = workerSlotOrExit();
  // A worker's channel to its supervisor is open before its listeners: they may ask it at once.
  let started: Gateway | null = null;
  // A worker runs the config its supervisor holds (validated, with the values a reload could not
  // change), never the file as it is now: its siblings run that one, and the file may be invalid.
  let logger: Logger | null = null;
  const worker = slot === null ? null : attachWorker(slot.index, () => started, () => logger);
  const handed = worker === null ? null : await worker.side.start;
  const { path: configPath, why } = handed === null ? await locateConfig(flagPath) : { path: flagPath, why: "" };
  const demoMode = handed === null && (demoFlag || configPath === null);
  // In demo mode the file gives ports and limits; the embedded backend's routes replace its own.
  const loaded =
    handed !== null ? { config: handed.config, warnings: [] } : configPath === null ? { config: defaultConfig(), warnings: [] } : await loadOrExit(configPath, !demoMode);
  // Workers share the client ports under a supervisor; the demo and the dev loop (--hot) stay one process.
  const { count: workers, reason: countReason } = workerCountFrom(workersFlag, loaded.config);
  if (slot === null && configPath !== null && !demoMode && !HOT && workers > 1) {
    return superviseGroup({ configPath, config: loaded.config, warnings: loaded.warnings, count: workers, countReason, why: flagPath === null ? why : null });
  }
  const pinned = slot === null ? null : pinnedPortsFromEnv(process.env);
  const fileConfig = slot === null ? loaded.config : pinWorkerConfig(loaded.config, pinned);
  // A worker's supervisor logged the file's warnings once for the group.
  const warnings = slot === null ? loaded.warnings : [];
  const demo = demoMode
    ? await DemoBackend.start({
        host: "127.0.0.1",
        port: 0,
        name: "embedded-demo",
        binder: state.binder,
        listenKey: "embedded demo backend",
        // It reads Trans frames in the form this gateway sends (--demo reads the file once).
        traceHeader: fileConfig.tracing.enable_trace_propagation,
      })
    : null;
  const config = demo === null ? fileConfig : withDemoRoutes(fileConfig, demo.port, configPath === null, SERVE_DEMO_PAGE);
  const log = new Logger(config.log.level, undefined, slot === null ? { gateway: config.server.gateway_name } : { gateway: config.server.gateway_name, worker: slot.index });
  logger = log;
  // The same record a reload writes: a stdout JSON pipeline must see the startup warnings too.
  for (const w of warnings) log.warn("config warning", { warning: w });
  const tracer = await tracerFromEnv(process.env, pkg.version, log).catch((e) => {
    if (e instanceof OtlpSettingsError) fail(e.message);
    throw e;
  });
  // Loaded only when some route may name a gRPC backend: a TCP-only gateway never loads @grpc/grpc-js.
  // Routes from Redis or Consul arrive after the start and may name one (a rule's transport: grpc).
  const grpc = config.server.use_grpc || grpcEndpointsFromConfig(config).size > 0 || usesRouteFeed(config) ? await loadGrpcTransport() : null;
  const gateway = Gateway.start(config, {
    logger: log,
    binder: state.binder,
    tracer,
    grpc,
    // A single process the default count chose (a CPU quota of one CPU, or one CPU) says why.
    ...(slot === null && (workersFlag ?? loaded.config.server.workers) === 0 && demo === null && !HOT ? { workersReason: countReason } : {}),
    ...(slot === null || worker === null
      ? {}
      : { worker: slot, pinConfig: (c: GatewayConfig) => pinWorkerConfig(c, pinned), admissionGate: worker.admission, initialVersion: handed?.version ?? 1 }),
  });
  started = gateway;
  worker?.side.ready({ adminPort: gateway.adminPort, port: gateway.port, wsPort: gateway.wsPort });
  if (flagPath === null && configPath !== null && slot === null) log.info("config file found at the default location", { path: configPath, why });
  // The browser example: its own ephemeral port on loopback (not the admin server, whose token and posture stay).
  const web = demo === null || !SERVE_DEMO_PAGE ? null : DemoWeb.start({ wsPort: gateway.wsPort, wsPath: config.server.ws_path, serverId: makeServerId({ isZip: false, worldId: 0, serverType: DEMO_WEB_SERVER_TYPE, instId: 0 }) });
  if (demo !== null) {
    console.log(
      `game-gateway ${pkg.version}: ${configPath === null ? `${why}: starting the demo backend, which answers` : "--demo: an embedded demo backend answers"} server types ${DEMO_SERVER_TYPES.join(", ")}.\n` +
        `Clients can connect to tcp://127.0.0.1:${gateway.port}  (admin: http://127.0.0.1:${gateway.adminPort}/metrics)\n` +
        (web === null ? "(no browser game under --hot)" : `WebSocket clients to ws://127.0.0.1:${gateway.wsPort}${config.server.ws_path}\nPlay the chat room in a browser: ${web.url}`) +
        (workersFlag !== null && workers > 1 ? `\n(--workers ${workers} asked for, but demo mode always runs one process; give a --config to run a group)` : ""),
    );
  }
  // Hot config reload: on SIGHUP and whenever the file changes; an invalid file changes nothing.
  // In demo mode the demo's routes replace the file's, so the file is not reloaded. A worker's
  // supervisor watches the file and hands every worker the same validated config.
  const path = demo === null && slot === null ? configPath : null;
  const watcher = path === null ? null : new ConfigWatcher(path, () => void gateway.reloadFromFile(path, "file"));
  watcher?.start();
  const replacing = state.app !== null;
  takeOver({
    stop: async () => {
      watcher?.stop();
      await web?.stop();
      await gateway.drain();
      await demo?.stop();
    },
    flush: () => gateway.flushAccessLog(),
    reloadConfig: path === null ? null : () => void gateway.reloadFromFile(path, "signal"),
    retire: () => {
      watcher?.stop();
      // The next evaluation serves the page on a port of its own; browsers already playing keep their WebSocket.
      void web?.stop();
      demo?.handOver();
      return gateway.retire();
    },
  });
  if (replacing) log.info("code reloaded; listening sockets kept, live sessions stay on the code they started with");
}

/**
 * A worker's part of the group: act on what the supervisor asks, and ask it the per-IP limits (its
 * AdmissionBroker holds the machine's one count: a limit of 10 is 10 for the machine, not per worker).
 */
function attachWorker(index: number, gateway: () => Gateway | null, log: () => Logger | null): { side: WorkerSide; admission: RemoteAdmission } {
  let admission: RemoteAdmission | null = null;
  const side = WorkerSide.attach(index, {
    other: (m) => void admission?.receive(m),
    reload: async (config, version, source) => {
      const gw = gateway();
      if (gw === null) return { ok: false, version: 0, error: "worker still starting" };
      const r = await gw.applyConfig(config, source, version);
      return { ok: r.ok, version: r.version, ...(r.error === undefined ? {} : { error: r.error }), ...(r.needsRestart === undefined ? {} : { needsRestart: r.needsRestart }) };
    },
    drain: () => beginStop(),
    exitNow: () => exitNow("supervisor asked"),
    orphaned: () => {
      // The supervisor is gone (killed, crashed): a worker must not serve on without it.
      // Its logger already names the worker (a second `worker` key would be a duplicate JSON key).
      const l = log();
      if (l === null) process.stderr.write(`game-gateway: worker ${index}: supervisor gone; worker exiting\n`);
      else l.error("supervisor gone; worker exiting");
      exitNow("supervisor gone");
    },
  });
  if (side === null) fail(`worker ${index}: started as a worker but with no IPC channel to a supervisor`);
  admission = new RemoteAdmission((m) => side.send(m), { worker: index });
  return { side, admission };
}

async function run(cmd: Command): Promise<void> {
  switch (cmd.kind) {
    case "help":
      console.log(USAGE);
      return;
    case "version":
      console.log(versionLine(pkg.version));
      return;
    case "loadtest":
      return loadtestMain([...cmd.argv]);
    case "check-config":
      return checkConfig(cmd.configPath);
    case "healthcheck":
      process.exit(await healthcheck(cmd.url));
    case "demo-backend": {
      installSignals();
      const backend = await DemoBackend.start({
        host: cmd.host,
        port: cmd.port,
        name: "demo",
        log: (l) => console.log(l),
        binder: state.binder,
        listenKey: "demo-backend --port",
        traceHeader: cmd.traceHeader,
      });
      console.log(`demo backend listening on ${cmd.host}:${backend.port}`);
      // Its connections close with their sockets; a retired backend holds nothing else.
      takeOver({ stop: () => backend.stop(), flush: () => {}, reloadConfig: null, retire: async () => backend.handOver() });
      return;
    }
    case "run":
      return runGateway(cmd.configPath, cmd.demo, cmd.workers);
  }
}

try {
  await run(parseArgs(process.argv.slice(2)));
} catch (e) {
  if (e instanceof UsageError) fail(`${e.message}\n\n${USAGE}`, 2);
  if (e instanceof ListenError || e instanceof TlsFileError) fail(e.message);
  throw e;
}
