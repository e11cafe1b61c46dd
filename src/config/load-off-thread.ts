// Loads a config file in a short-lived Worker: reading, YAML parsing and validation (seconds and
// ~150 MB for a 1 MiB file) happen off the data path, and the worker's heap is given back when it
// ends. Only the validated config crosses back, as JSON text: parsing it here costs a few ms where
// decoding a structured clone of the same objects cost ~30 ms. For the largest file that is still
// too long for one event-loop turn, so the rules are parsed a chunk per turn and the ~20,000
// objects (~25 ms to freeze) frozen a slice per turn.
import { ConfigError, type Env, type LoadedConfig } from "./load.ts";
import type { LoadReply, LoadRequest } from "./load-worker.ts";
import type { GatewayConfig, RouteRule } from "./types.ts";

// From source, the worker sits beside this file. A `bun build --compile` binary embeds it only
// as an entry point of its own (scripts/build.ts), at its path under the entry points' common
// root (src/); there import.meta.url is the executable's virtual path, not this file's.
const WORKER_URL = import.meta.url.startsWith("file:///$bunfs/")
  ? "/$bunfs/root/config/load-worker.js"
  : new URL("./load-worker.ts", import.meta.url).href;

/** Objects frozen per event-loop turn. */
const FREEZE_SLICE = 500;

export function loadConfigFileOffThread(path: string, env: Env = process.env): Promise<LoadedConfig> {
  return new Promise<LoadReply>((resolve, reject) => {
    const worker = new Worker(WORKER_URL);
    worker.onmessage = (event: MessageEvent<LoadReply>) => {
      void worker.terminate();
      resolve(event.data);
    };
    worker.onerror = (event) => {
      void worker.terminate();
      reject(new Error(`config loader failed: ${event.message}`));
    };
    const request: LoadRequest = { path, env: { ...env } };
    worker.postMessage(request);
  }).then(async (r) => {
    if (r.kind === "invalid") throw new ConfigError(r.issues, r.source);
    if (r.kind === "crashed") throw new Error(`config loader failed: ${r.message}`);
    const config = JSON.parse(r.configJson) as GatewayConfig;
    const rules: RouteRule[] = [];
    for (const chunk of r.ruleChunks) {
      await nextTurn();
      for (const rule of JSON.parse(chunk) as RouteRule[]) rules.push(rule);
    }
    const whole: GatewayConfig = { ...config, routing: { ...config.routing, rules } };
    await freezeInSlices(whole);
    return { config: whole, warnings: r.warnings, notActedOn: r.notActedOn };
  });
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Deep-freezes `root`, yielding to the event loop every FREEZE_SLICE objects. */
async function freezeInSlices(root: object): Promise<void> {
  // Children before parents, so nothing is seen frozen before its children are.
  const order: object[] = [];
  const stack: object[] = [root];
  while (stack.length > 0) {
    const o = stack.pop()!;
    order.push(o);
    for (const k in o) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === "object" && v !== null) stack.push(v);
    }
    if (order.length % FREEZE_SLICE === 0) await nextTurn();
  }
  for (let i = order.length - 1; i >= 0; i--) {
    Object.freeze(order[i]);
    if (i % FREEZE_SLICE === 0 && i > 0) await nextTurn();
  }
}
