// Game-server endpoints from the Consul agent's health API, as the reference reads them:
// GET {address}/v1/health/service/{service_name}?passing=true, keeping instances whose
// Service.Meta.namespace is consul.namespace and whose Service.Meta.world_id is an integer.
// Beside the data path; a failed poll keeps the last answer. Once the agent has answered with an
// X-Consul-Index, each next query is a blocking query on it (index=..&wait=refresh_interval): it
// returns as soon as the service's instances change, so a leave or join is seen at once. Without
// an index (or after a failure) it polls every consul.refresh_interval.

import type { ConsulWorlds } from "./combine.ts";
import type { Parsed } from "./redis-content.ts";

/** Instances kept from one answer; more refuse the answer (the old endpoints stay). */
export const MAX_CONSUL_INSTANCES = 10_000;
/** Bytes read from one answer at most. */
export const MAX_CONSUL_BODY_BYTES = 16 * 1024 * 1024;

export interface ConsulSettings {
  /** e.g. "http://10.0.0.5:8500". */
  readonly address: string;
  readonly serviceName: string;
  readonly namespace: string;
  readonly refreshMs: number;
  /** A poll that has not answered by then fails. */
  readonly timeoutMs: number;
}

export interface ConsulEvents {
  worlds(worlds: ConsulWorlds, changed: boolean): void;
  failed(error: string): void;
}

/** consul.address, or the reference's agent address: http://$NODE_IP:8500 (localhost without NODE_IP). */
export function consulAddress(configured: string, env: Readonly<Record<string, string | undefined>>): string {
  if (configured !== "") return configured.replace(/\/+$/, "");
  const ip = env.NODE_IP ?? "";
  return `http://${ip === "" ? "127.0.0.1" : ip.includes(":") ? `[${ip}]` : ip}:8500`;
}

export function healthUrl(s: Pick<ConsulSettings, "address" | "serviceName">): string {
  return `${s.address}/v1/health/service/${encodeURIComponent(s.serviceName)}?passing=true`;
}

/** The health API's JSON to worlds of "host:port" endpoints; the whole answer or nothing. */
export function parseHealth(body: unknown, namespace: string): Parsed<ConsulWorlds> {
  if (!Array.isArray(body)) return { ok: false, error: "expected a JSON array of service entries" };
  if (body.length > MAX_CONSUL_INSTANCES) return { ok: false, error: `${body.length} instances, more than the ${MAX_CONSUL_INSTANCES} allowed` };
  const worlds = new Map<number, string[]>();
  for (const entry of body) {
    const service = (entry as { Service?: unknown } | null)?.Service as
      | { Address?: unknown; Port?: unknown; Meta?: Record<string, unknown> | null }
      | undefined;
    if (service === undefined || service === null || typeof service !== "object") continue;
    const meta = service.Meta ?? {};
    if (meta.namespace !== namespace) continue;
    const world = typeof meta.world_id === "string" && /^\d+$/.test(meta.world_id) ? Number(meta.world_id) : NaN;
    if (!Number.isInteger(world) || world > 32_767) continue;
    const port = service.Port;
    if (typeof service.Address !== "string" || service.Address === "" || typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65_535) continue;
    const host = service.Address.includes(":") ? `[${service.Address}]` : service.Address;
    const endpoint = `${host}:${port}`;
    const list = worlds.get(world) ?? [];
    if (!list.includes(endpoint)) list.push(endpoint);
    worlds.set(world, list);
  }
  return { ok: true, value: worlds };
}

/** The body as text, or null (and the rest unread) once it passes `max` bytes, chunked or not. */
async function readBounded(res: Response, max: number): Promise<string | null> {
  if (res.body === null) return "";
  if (Number(res.headers.get("content-length") ?? 0) > max) {
    await res.body.cancel();
    return null;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > max) return null; // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Blocking queries that return at once (an agent or proxy that does not block) are spaced this far apart at least. */
const MIN_BLOCKING_GAP_MS = 1_000;
/** Consul adds up to wait/16 of jitter to a blocking query; this covers it and the network. */
const BLOCKING_GRACE_MS = 5_000;

/** Resolves after ms, or at once when `signal` aborts; leaves no listener behind either way. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

export class ConsulSource {
  private lastJson: string | undefined = undefined;
  /** X-Consul-Index of the last good answer; null: poll, not block. */
  private index: number | null = null;
  /** Aborts the poll in flight at stop(). */
  private readonly stopping = new AbortController();

  constructor(
    private readonly settings: ConsulSettings,
    private readonly events: ConsulEvents,
  ) {}

  start(): void {
    void this.run();
  }

  /** Stops at once: a query in flight is aborted and reports nothing. */
  stop(): void {
    this.stopping.abort();
  }

  /** One query at a time, for the life of the source. */
  private async run(): Promise<void> {
    const { refreshMs } = this.settings;
    while (!this.stopping.signal.aborted) {
      const startedAt = Date.now();
      await this.pollOnce();
      const gap = this.index === null ? refreshMs : Math.min(MIN_BLOCKING_GAP_MS, refreshMs);
      const left = gap - (Date.now() - startedAt);
      if (left > 0) await sleep(left, this.stopping.signal);
    }
  }

  private async pollOnce(): Promise<void> {
    const { refreshMs, timeoutMs } = this.settings;
    const blocking = this.index !== null;
    const url = healthUrl(this.settings) + (blocking ? `&index=${this.index}&wait=${Math.ceil(refreshMs / 1000)}s` : "");
    const timeout = blocking ? refreshMs + refreshMs / 16 + BLOCKING_GRACE_MS : timeoutMs;
    this.index = null; // set again only by a good answer
    let body: unknown;
    let index: number | null = null;
    try {
      const res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(timeout), this.stopping.signal]) });
      if (!res.ok) return this.events.failed(`${url}: HTTP ${res.status}`);
      const header = Number(res.headers.get("x-consul-index") ?? NaN);
      index = Number.isSafeInteger(header) && header > 0 ? header : null;
      const text = await readBounded(res, MAX_CONSUL_BODY_BYTES);
      if (text === null) return this.events.failed(`${url}: answer of more than ${MAX_CONSUL_BODY_BYTES} bytes`);
      body = JSON.parse(text);
    } catch (e) {
      if (this.stopping.signal.aborted) return;
      return this.events.failed(`${url}: ${(e as Error).message}`);
    }
    if (this.stopping.signal.aborted) return;
    const parsed = parseHealth(body, this.settings.namespace);
    if (!parsed.ok) return this.events.failed(`${url}: ${parsed.error}`);
    this.index = index;
    const json = JSON.stringify([...parsed.value].sort((a, b) => a[0] - b[0]));
    const changed = json !== this.lastJson;
    this.lastJson = json;
    this.events.worlds(parsed.value, changed);
  }
}
