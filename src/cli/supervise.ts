// The supervisor's process (server.workers > 1): starts the group, fans the signals out to it, and
// reloads it as one: the file is read and validated here, once, and every worker is handed the
// same result. The workers are this program again (src/supervisor/launch.ts).

import { ConfigError } from "../config/load.ts";
import { loadConfigFileOffThread } from "../config/load-off-thread.ts";
import { ConfigWatcher } from "../config/watcher.ts";
import type { GatewayConfig } from "../config/types.ts";
import { Logger } from "../log/logger.ts";
import { MAX_WORKERS } from "../session/session-id.ts";
import { defaultWorkerCount, type WorkerCountChoice } from "../supervisor/default-worker-count.ts";
import { selfCommand } from "../supervisor/launch.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import { GroupAdmin } from "../supervisor/group-admin.ts";
import { adminAddressFromConfig, admissionFromConfig, tlsFilesFromConfig } from "../config/module-options.ts";
import { parseHostPort } from "../config/host-port.ts";
import { probeExclusiveBind } from "../supervisor/port-probe.ts";
import { AdmissionBroker } from "../net/admission-broker.ts";
import { ListenError } from "../net/binder.ts";

/** --workers, else server.workers; 0 means one per CPU within the cgroup's CPU quota (at most MAX_WORKERS). */
export function workerCountFrom(flag: number | null, config: GatewayConfig): WorkerCountChoice {
  const n = flag ?? config.server.workers;
  if (n !== 0) return { count: n, reason: flag === null ? "server.workers" : "--workers" };
  return defaultWorkerCount(MAX_WORKERS);
}

export interface GroupStart {
  readonly configPath: string;
  readonly config: GatewayConfig;
  readonly warnings: readonly string[];
  readonly count: number;
  /** Why that many workers (`server.workers`, `--workers`, "one per CPU", "CPU quota 1.5 of 8 CPUs"), for the start line. */
  readonly countReason: string;
  /** Why this config file (when found at the default location), for the start line; null: --config. */
  readonly why: string | null;
}

export async function superviseGroup(start: GroupStart): Promise<void> {
  const { configPath, count } = start;
  let config = start.config;
  const log = new Logger(config.log.level, undefined, { gateway: config.server.gateway_name, role: "supervisor" });
  for (const w of start.warnings) log.warn("config warning", { warning: w });
  // The machine's one count of connections per client address: every worker asks it (src/net/remote-admission.ts).
  const admission = new AdmissionBroker(admissionFromConfig(config));
  const supervisor: Supervisor = new Supervisor({
    count,
    config,
    command: selfCommand(process.argv.slice(2)),
    env: process.env,
    log,
    onOtherMessage: (worker, m) => {
      const reply = admission.receive(m, worker);
      if (reply !== null) supervisor.workers[worker]?.send(reply);
    },
    // What a dead worker held is free again: its connections died with it.
    onWorkerGone: (worker) => admission.dropWorker(worker),
  });
  // The group's one admin port, bound before any worker starts: a port already taken stops the start.
  const adminAddr = adminAddressFromConfig(config);
  const admin = adminAddr === null ? null : new GroupAdmin(adminAddr.host, adminAddr.port, supervisor, () => config.admin, start.countReason);
  try {
    admin?.start(config.admin.listen_addr !== "" ? "admin.listen_addr" : "server.health_check_port");
    probeClientPorts(config);
  } catch (e) {
    if (e instanceof ListenError) {
      process.stderr.write(`game-gateway: ${e.message}\n`);
      admin?.stop();
      process.exit(1);
    }
    throw e;
  }

  // The single-process handlers (installed before the config was read) give way to the group's.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(sig);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn("second stop signal: workers exit now", { signal });
      supervisor.exitNow();
      return;
    }
    stopping = true;
    watcher.stop();
    log.info("draining every worker", { signal, workers: count });
    void supervisor.drain().then((code) => {
      log.info("every worker has exited", { exit_code: code });
      admin?.stop();
      process.exit(code);
    });
  };

  // One reload at a time; asks meanwhile are served by one more run after it (the file's latest content wins).
  let reloading: Promise<void> | null = null;
  // The queued run's source: a signal's wins (the operator asked), else the watcher's.
  let again: "signal" | "file" | null = null;
  const reload = (source: "signal" | "file"): void => {
    if (stopping) return;
    if (reloading !== null) {
      again = again === "signal" ? "signal" : source;
      return;
    }
    reloading = reloadGroup(source).finally(() => {
      reloading = null;
      const queued = again;
      again = null;
      if (queued !== null) reload(queued);
    });
  };
  // What the last reload read (or the start), and what asked for it. The watcher and a SIGHUP both
  // follow an edit: when one of the two asks was the watcher's and both read the same, the second is
  // a no-op, so the edit is validated and applied (or refused) once. A SIGHUP after a SIGHUP, or after
  // the start, always reloads: the operator asked (the route feeds and TLS files are re-read).
  let lastRead: string | null = null;
  let lastSource: "start" | "signal" | "file" = "start";
  const isRepeat = (seen: string, source: "signal" | "file"): boolean => seen === lastRead && (source === "file" || lastSource === "file");
  const startRead = readText(configPath).then((t) => fingerprint(t, config));
  const reloadGroup = async (source: "signal" | "file"): Promise<void> => {
    lastRead ??= await startRead;
    const text = await readText(configPath);
    let next: GatewayConfig;
    try {
      const read = await loadConfigFileOffThread(configPath);
      next = read.config;
      const seen = await fingerprint(text, next);
      if (isRepeat(seen, source)) return log.debug("config file unchanged since the last reload; nothing to do", { source });
      lastRead = seen;
      lastSource = source;
      for (const w of read.warnings) log.warn("config warning", { warning: w });
    } catch (e) {
      const seen = `refused\0${text}`;
      if (isRepeat(seen, source)) return log.debug("config file unchanged since the refused reload; nothing to do", { source });
      lastRead = seen;
      lastSource = source;
      const error = e instanceof ConfigError ? e.message : String(e);
      log.error("config reload refused; previous config stays in force", { path: configPath, source, error, workers: count });
      return;
    }
    const reloaded = await supervisor.reload(next, source);
    const { version, answers } = reloaded;
    // The supervisor's (keys it kept at their old values) and any a worker found itself (TLS turned on or off).
    const needsRestart = [...new Set([...reloaded.needsRestart, ...answers.flatMap((a) => (a === null || a === "pending" ? [] : (a.needsRestart ?? [])))])];
    const failed = answers.flatMap((a, i) => (a === null ? [{ worker: i, error: "no answer" }] : a === "pending" || a.ok ? [] : [{ worker: i, error: a.error ?? "" }]));
    const pending = answers.flatMap((a, i) => (a === "pending" ? [i] : []));
    config = next;
    admission.update(admissionFromConfig(next));
    log.setLevel(next.log.level);
    const versions = answers.map((a) => (a === null ? null : a === "pending" ? "pending" : a.version));
    const fields = { source, workers: count, version, versions, ...(pending.length === 0 ? {} : { starting_on_it: pending }) };
    if (failed.length === 0) log.info("config reloaded", fields);
    else log.error("config reload refused by some workers; they keep their previous config", { ...fields, failed });
    if (needsRestart.length > 0) log.warn("config keys changed that need a restart; old values kept", { keys: needsRestart });
  };

  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => reload("signal"));
  const watcher = new ConfigWatcher(configPath, () => reload("file"));

  try {
    await supervisor.start();
  } catch (e) {
    supervisor.killAll();
    // The worker has said why on stderr (the one line a failed start prints, e.g. a port in use).
    log.error("group start failed", { error: (e as Error).message });
    admin?.stop();
    process.exit(1);
  }
  watcher.start();
  const ports = supervisor.boundPorts;
  log.info("gateway group listening", {
    workers: count,
    workers_reason: start.countReason,
    pids: supervisor.info().map((w) => w.pid),
    admin_port: admin?.boundPort ?? null,
    listen: ports === null ? null : withPort(config.server.listen_addr, ports.tcp),
    ...(config.server.ws_listen_addr === "" || ports === null ? {} : { ws_listen: `${withPort(config.server.ws_listen_addr, ports.ws)}${config.server.ws_path}` }),
    ...(start.why === null ? {} : { config: configPath, why: start.why }),
  });
}

/** The file's text, or "" when it cannot be read (the load that follows says why). */
async function readText(path: string): Promise<string> {
  return Bun.file(path).text().catch(() => "");
}

/**
 * What a reload reads: the config file's text, and the TLS files' size and time (a SIGHUP with the
 * same config file rotates certificates that changed on disk: that is a change).
 */
async function fingerprint(text: string, config: GatewayConfig): Promise<string> {
  const files = Object.values(tlsFilesFromConfig(config)).filter((f) => f !== "");
  const stats = await Promise.all(files.map(async (f) => {
    const file = Bun.file(f);
    return `${f}:${file.size}:${file.lastModified}`;
  }));
  return `applied\0${text}\0${stats.join("\0")}`;
}

/** Fails, naming the key, when a client port is already served (by another group too): see port-probe.ts. */
function probeClientPorts(config: GatewayConfig): void {
  const tcp = parseHostPort(config.server.listen_addr)!; // validated by the loader
  probeExclusiveBind("server.listen_addr", tcp.host, tcp.port);
  if (config.server.ws_listen_addr === "") return;
  const ws = parseHostPort(config.server.ws_listen_addr)!;
  probeExclusiveBind("server.ws_listen_addr", ws.host, ws.port);
}

/** "host:port" with the bound port (the config may say 0). */
function withPort(addr: string, port: number): string {
  return `${addr.slice(0, addr.lastIndexOf(":"))}:${port}`;
}
