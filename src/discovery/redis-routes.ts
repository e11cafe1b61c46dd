// Routing rules and the realm map from Redis, kept current three ways: loaded at start, every
// routing.refresh_interval / realm_refresh_interval, and at once on a message to a notify channel.
// Runs beside the data path, never on it: a load that fails or hangs leaves the last good value
// in force, and each load is one at a time (a notification during a load asks for one more).
//
// Bun's built-in RedisClient, with its two pub/sub traps handled here (tested in
// test/discovery/redis-routes.test.ts): after the server restarts it reconnects but does not
// resubscribe, and says nothing through onclose; subscribing again on a connection that kept its
// subscription delivers every message twice. So every (re)connect of the subscriber unsubscribes
// first (all channels: see unsubscribeAll), then subscribes, then reloads both keys (notifications
// sent while it was away are lost).

import { RedisClient } from "bun";
import type { RedisConfig, RouteRule } from "../config/types.ts";
import type { RealmMap } from "../routing/router.ts";
import { MAX_REALM_FIELDS, MAX_RULES_JSON_BYTES, parseRealmMap, parseRedisRules, type Parsed } from "./redis-content.ts";

export type RedisValueKind = "routing_rules" | "realm_mapping";

export interface RedisRouteEvents {
  /**
   * A valid rule set, read whole (unchanged sets are reported too: each load is a success), with
   * what of it was ignored as the reference ignores it (unknown keys, a key other than server_type).
   */
  rules(rules: readonly RouteRule[], changed: boolean, ignored: readonly string[]): void;
  realms(map: RealmMap, changed: boolean): void;
  /** A load failed (Redis unreachable, the rules key missing, or a value refused); the last good value stays. */
  failed(kind: RedisValueKind, error: string, missing?: boolean): void;
  /** A message arrived on a notify channel (its text does not matter: any message means reload). */
  notified?(kind: RedisValueKind, message: string): void;
}

export interface RedisRouteTiming {
  readonly rulesRefreshMs: number;
  readonly realmRefreshMs: number;
}

/** The reference's key names under redis.key_prefix. */
export function redisKeys(prefix: string): { rules: string; rulesNotify: string; realm: string; realmNotify: string } {
  return {
    rules: `${prefix}routing:rules`,
    rulesNotify: `${prefix}routing:rules:notify`,
    realm: `${prefix}realm:mapping`,
    realmNotify: `${prefix}realm:mapping:notify`,
  };
}

export function redisUrl(c: RedisConfig): string {
  const auth = c.password === "" ? "" : `:${encodeURIComponent(c.password)}@`;
  return `redis://${auth}${c.addr}/${c.db}`;
}

/** One load of one value: at most one runs, and at most one more is asked for meanwhile. */
class SerialLoad {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly load: () => Promise<void>) {}

  run(): void {
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.load().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.run();
      }
    });
  }
}

export class RedisRouteSource {
  readonly keys: ReturnType<typeof redisKeys>;
  private readonly commands: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly rulesLoad: SerialLoad;
  private readonly realmLoad: SerialLoad;
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private lastRulesJson: string | null | undefined = undefined;
  private lastRealmJson: string | undefined = undefined;
  private subscribing: Promise<void> | null = null;
  private subscribed = false;
  private stopped = false;

  constructor(
    private readonly config: RedisConfig,
    private readonly timing: RedisRouteTiming,
    private readonly events: RedisRouteEvents,
  ) {
    this.keys = redisKeys(config.key_prefix);
    const options = { connectionTimeout: config.dial_timeout, autoReconnect: true, enableOfflineQueue: false };
    this.commands = new RedisClient(redisUrl(config), options);
    this.subscriber = new RedisClient(redisUrl(config), options);
    this.subscriber.onconnect = () => {
      // A reconnect after a server restart: the client dropped the subscription silently.
      if (this.subscribed) this.resubscribe();
    };
    this.rulesLoad = new SerialLoad(() => this.loadRules());
    this.realmLoad = new SerialLoad(() => this.loadRealm());
  }

  start(): void {
    this.rulesLoad.run();
    this.realmLoad.run();
    this.resubscribe();
    this.timers.push(
      setInterval(() => {
        this.rulesLoad.run();
        // A subscriber that never connected (Redis down at start), or whose client gave up
        // reconnecting, is not retried by the client: a command makes it dial again.
        if (!this.subscribed || !this.subscriber.connected) this.resubscribe();
      }, this.timing.rulesRefreshMs),
      setInterval(() => this.realmLoad.run(), this.timing.realmRefreshMs),
    );
  }

  /** Stops at once: a load in flight is abandoned (closing the clients fails it) and reports nothing. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.subscriber.onconnect = null;
    this.subscriber.close();
    this.commands.close();
  }

  /**
   * Claims `key` for `owner` for ttlMs (SET NX, then renewed while it is ours). Resolves with the
   * owner found: `owner` when the claim is ours, another name when taken, null when Redis failed.
   */
  async claim(key: string, owner: string, ttlMs: number): Promise<string | null> {
    if (this.stopped) return null;
    const result = await this.read(async () => {
      await this.commands.send("SET", [key, owner, "NX", "PX", String(ttlMs)]);
      const holder = await this.commands.get(key);
      if (holder === owner) await this.commands.send("PEXPIRE", [key, String(ttlMs)]);
      return holder;
    }, "SET NX");
    return result.ok && !this.stopped ? result.value : null;
  }

  /** Loads both values now (each after the load in progress, if any). */
  refreshNow(): void {
    this.rulesLoad.run();
    this.realmLoad.run();
  }

  private readonly onMessage = (message: string, channel: string): void => {
    const kind: RedisValueKind = channel === this.keys.rulesNotify ? "routing_rules" : "realm_mapping";
    this.events.notified?.(kind, message);
    (kind === "routing_rules" ? this.rulesLoad : this.realmLoad).run();
  };

  private resubscribe(): void {
    if (this.subscribing !== null || this.stopped) return;
    this.subscribing = (async () => {
      const channels = [this.keys.rulesNotify, this.keys.realmNotify];
      try {
        // Unsubscribe first: subscribing on top of a live subscription would deliver each message twice.
        await this.connected(this.subscriber);
        await unsubscribeAll(this.subscriber);
        await withTimeout(this.subscriber.subscribe(channels, this.onMessage), this.config.read_timeout, "SUBSCRIBE");
        const first = !this.subscribed;
        this.subscribed = true;
        // Changes published while unsubscribed were missed: read both keys again.
        if (!first) this.refreshNow();
      } catch {
        this.subscribed = false; // retried on the next rules refresh tick
      } finally {
        this.subscribing = null;
      }
    })();
  }

  private async loadRules(): Promise<void> {
    if (this.stopped) return;
    const key = this.keys.rules;
    // STRLEN first: a value too large to accept is refused unread, not read whole every refresh.
    const result = await this.read(async () => {
      const bytes = Number(await this.commands.send("STRLEN", [key]));
      return bytes > MAX_RULES_JSON_BYTES ? { bytes, json: null } : { bytes, json: await this.commands.get(key) };
    }, "GET");
    if (this.stopped) return;
    if (!result.ok) return this.events.failed("routing_rules", `${key}: ${result.error}`);
    const { bytes, json } = result.value;
    if (bytes > MAX_RULES_JSON_BYTES) return this.events.failed("routing_rules", `${key}: ${bytes} bytes, more than the ${MAX_RULES_JSON_BYTES} allowed (not read)`);
    // A missing key is not "no rules" (a DEL, or Redis restarted without persistence would empty
    // the whole fleet's routes): the last good rules stay. "{}" is how to say "no Redis rules".
    if (json === null) return this.events.failed("routing_rules", `${key}: the key does not exist (set it to {} for no Redis rules)`, true);
    const parsed = parseRedisRules(json, key);
    if (!parsed.ok) return this.events.failed("routing_rules", parsed.error);
    const changed = json !== this.lastRulesJson;
    this.lastRulesJson = json;
    this.events.rules(parsed.value.rules, changed, parsed.value.ignored);
  }

  private async loadRealm(): Promise<void> {
    if (this.stopped) return;
    const key = this.keys.realm;
    // HLEN first: a hash too large is refused unread (HGETALL of it would stall the event loop).
    const result = await this.read(async () => {
      const fields = Number(await this.commands.send("HLEN", [key]));
      return fields > MAX_REALM_FIELDS ? { fields, hash: null } : { fields, hash: await this.commands.hgetall(key) };
    }, "HGETALL");
    if (this.stopped) return;
    if (!result.ok) return this.events.failed("realm_mapping", `${key}: ${result.error}`);
    const { fields, hash } = result.value;
    if (hash === null) return this.events.failed("realm_mapping", `${key}: ${fields} fields, more than the ${MAX_REALM_FIELDS} allowed (not read)`);
    const parsed = parseRealmMap(hash, key);
    if (!parsed.ok) return this.events.failed("realm_mapping", parsed.error);
    const json = JSON.stringify(Object.entries(hash).sort());
    const changed = json !== this.lastRealmJson;
    this.lastRealmJson = json;
    this.events.realms(parsed.value, changed);
  }

  /** Dials when not connected: with the offline queue off, a command on a closed client fails at once. */
  private async connected(client: RedisClient): Promise<void> {
    if (!client.connected) await withTimeout(client.connect(), this.config.dial_timeout, "connect", "redis.dial_timeout");
  }

  private async read<T>(command: () => Promise<T>, name: string): Promise<Parsed<T>> {
    try {
      await this.connected(this.commands);
      return { ok: true, value: await withTimeout(command(), this.config.read_timeout, name) };
    } catch (e) {
      return { ok: false, error: `${name} failed: ${(e as Error).message}` };
    }
  }
}

/**
 * UNSUBSCRIBE from everything (the subscriber client holds only the notify channels), or nothing
 * when it holds no subscription (it then throws, synchronously). Not unsubscribe(channels): on
 * Bun 1.4.5, after a server restart, that form leaves the next subscribe deaf (measured).
 */
async function unsubscribeAll(client: RedisClient): Promise<void> {
  try {
    await client.unsubscribe();
  } catch {
    // Not in subscriber mode: nothing to undo.
  }
}

/** A Redis that accepted the connection but never answers must not hold a load forever. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, key = "redis.read_timeout"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms}ms (${key})`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
