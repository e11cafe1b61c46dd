import type { TCPSocketListenOptions, TCPSocketListener } from "bun";

// Every listening socket the process opens goes through a Binder, for two reasons:
// - a failed bind becomes a ListenError naming the setting, the address and the cause, instead
//   of a raw Bun stack trace;
// - under `bun --hot` (npm run dev) the entry point hands out a HotBinder, which keeps each
//   listener across re-evaluations of the code and reload()s it with the new code's handlers
//   rather than binding the address a second time.
// Bun gives a reloaded listener's handlers to its already-open sockets too, so socket handlers
// must reach all per-connection state through socket.data, never through the handlers' closure.

/** A listening socket could not be opened: which setting asked for it, where, and why. */
export class ListenError extends Error {
  constructor(
    /** The config key or flag that chose the address, e.g. "server.listen_addr". */
    readonly key: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${key} ${address}: ${reason}`);
  }
}

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "address not available on this machine",
  ENOTFOUND: "host name not found",
};

export function listenError(key: string, hostname: string, port: number, e: unknown): ListenError {
  const code = (e as { code?: unknown } | null)?.code;
  const reason = typeof code === "string" ? (REASONS[code] ?? code) : String((e as Error)?.message ?? e);
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return new ListenError(key, `${host}:${port}`, reason);
}

/** What a Binder binds: Bun.listen's options (reusePort works at run time; bun-types omits it). */
export type ListenOptions<T> = TCPSocketListenOptions<T> & { hostname: string; port: number; reusePort?: boolean };

export interface Binder {
  /** Bun.listen, or the same listener as last time reloaded with these handlers. Throws ListenError. */
  listen<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T>;
  /**
   * Binds afresh even where listen would hand back a kept listener: a certificate rotation binds
   * beside the current listener (SO_REUSEPORT) and stops it. The fresh one is what listen gives
   * for this setting and address from now on. Throws ListenError.
   */
  rebind<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T>;
}

/** Binds afresh every time: the production path. */
export const directBinder: Binder = {
  listen<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T> {
    try {
      return Bun.listen<T>(options);
    } catch (e) {
      throw listenError(key, options.hostname, options.port, e);
    }
  },
  rebind<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T> {
    return directBinder.listen(key, options);
  },
};

/**
 * Development only (`bun --hot`): remembers each listener by setting and address, and when the
 * re-evaluated code asks for the same one again, gives it the new handlers instead of a second
 * bind (which would fail with EADDRINUSE and leave the old code serving).
 */
export class HotBinder implements Binder {
  private readonly listeners = new Map<string, TCPSocketListener<unknown>>();
  /** Each setting's id in `listeners`: its configured address (a rebind binds the bound port, which differs for port 0). */
  private readonly ids = new Map<string, string>();

  listen<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T> {
    const id = `${key} ${options.hostname}:${options.port}`;
    this.ids.set(key, id);
    const kept = this.listeners.get(id) as TCPSocketListener<T> | undefined;
    if (kept !== undefined) {
      kept.reload({ socket: options.socket });
      return kept;
    }
    const fresh = directBinder.listen(key, options);
    this.listeners.set(id, fresh as TCPSocketListener<unknown>);
    return fresh;
  }

  rebind<T>(key: string, options: ListenOptions<T>): TCPSocketListener<T> {
    const fresh = directBinder.listen(key, options);
    this.listeners.set(this.ids.get(key) ?? `${key} ${options.hostname}:${options.port}`, fresh as TCPSocketListener<unknown>);
    return fresh;
  }
}
