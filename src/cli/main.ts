#!/usr/bin/env bun
// Process entry point: the one place that wires a gateway to the process (argv, signals, exit).
import pkg from "../../package.json" with { type: "json" };
import { ConfigError, defaultConfig, loadConfigFile } from "../config/load.ts";
import { ConfigWatcher } from "../config/watcher.ts";
import type { GatewayConfig } from "../config/types.ts";
import { DemoBackend } from "../demo/demo-backend.ts";
import { Gateway } from "../gateway.ts";
import { loadtestMain } from "../loadtest/main.ts";
import { Logger } from "../log/logger.ts";
import { USAGE, UsageError, parseArgs, type Command } from "./args.ts";

/** Server types the embedded demo backend answers when no config file is given. */
const DEMO_SERVER_TYPES = [10, 15, 200];

function fail(message: string, code = 1): never {
  process.stderr.write(`game-gateway: ${message}\n`);
  process.exit(code);
}

async function loadOrExit(path: string): Promise<GatewayConfig> {
  try {
    const { config, warnings } = await loadConfigFile(path);
    for (const w of warnings) process.stderr.write(`game-gateway: warning: ${w}\n`);
    return config;
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

/** The defaults, with every demo server type routed to an embedded demo backend. */
async function demoConfig(): Promise<{ config: GatewayConfig; backend: DemoBackend }> {
  const backend = await DemoBackend.start({ host: "127.0.0.1", port: 0, name: "embedded-demo" });
  const base = defaultConfig();
  const endpoint = `127.0.0.1:${backend.port}`;
  const rules = DEMO_SERVER_TYPES.map((t) => ({
    server_type: t,
    world_id: 0,
    service_name: "demo",
    strategy: "round_robin" as const,
    endpoints: [endpoint],
  }));
  // The demo is for trying the gateway from one machine: one IP, so per-IP limits are lifted.
  const security = { ...base.security, max_connections_per_ip: 1_000_000, connection_rate_limit: 1_000_000 };
  return { config: { ...base, security, routing: { ...base.routing, rules } }, backend };
}

/** First SIGINT/SIGTERM: graceful stop, exit 0. A second one: exit at once. */
function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`game-gateway: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    stop().then(
      () => process.exit(0),
      (e) => fail(`shutdown failed: ${e}`),
    );
  };
  process.on("SIGINT", () => handler("SIGINT"));
  process.on("SIGTERM", () => handler("SIGTERM"));
}

async function run(cmd: Command): Promise<void> {
  switch (cmd.kind) {
    case "help":
      console.log(USAGE);
      return;
    case "version":
      console.log(`game-gateway ${pkg.version} (bun ${Bun.version})`);
      return;
    case "loadtest":
      return loadtestMain([...cmd.argv]);
    case "check-config":
      return checkConfig(cmd.configPath);
    case "demo-backend": {
      const backend = await DemoBackend.start({ host: cmd.host, port: cmd.port, name: "demo", log: (l) => console.log(l) });
      console.log(`demo backend listening on ${cmd.host}:${backend.port}`);
      onSignals(() => backend.stop());
      return;
    }
    case "run": {
      let config: GatewayConfig;
      let demo: DemoBackend | null = null;
      if (cmd.configPath !== null) {
        config = await loadOrExit(cmd.configPath);
      } else {
        ({ config, backend: demo } = await demoConfig());
      }
      const log = new Logger(config.log.level, undefined, { gateway: config.server.gateway_name });
      const gateway = Gateway.start(config, { logger: log });
      const where = `${gateway.port}`;
      if (demo !== null) {
        console.log(
          `game-gateway ${pkg.version}: no --config given, so an embedded demo backend answers server types ${DEMO_SERVER_TYPES.join(", ")}.\n` +
            `Clients can connect to tcp://127.0.0.1:${where}  (admin: http://127.0.0.1:${gateway.adminPort}/metrics)`,
        );
      }
      if (cmd.configPath !== null) {
        // Hot reload: on SIGHUP and whenever the file changes. An invalid file changes nothing.
        const path = cmd.configPath;
        const reload = (): void => void gateway.reloadFromFile(path);
        const watcher = new ConfigWatcher(path, reload);
        watcher.start();
        process.on("SIGHUP", reload);
        onSignals(async () => {
          watcher.stop();
          await gateway.drain();
        });
      } else {
        onSignals(async () => {
          await gateway.drain();
          await demo?.stop();
        });
      }
      return;
    }
  }
}

try {
  await run(parseArgs(process.argv.slice(2)));
} catch (e) {
  if (e instanceof UsageError) fail(`${e.message}\n\n${USAGE}`, 2);
  throw e;
}
