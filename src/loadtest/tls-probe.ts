// Bun's WebSocket client reports a wss:// connection that fails its TLS handshake with an error
// event that says only that it failed to open. One plain TLS connection with the same options
// asks the handshake itself why, as the TCP --tls clients learn it from their handshake handler.

/** How a --tls client checks the server: against `ca` (PEM), the system's CAs, or not at all. */
export interface ClientTls {
  readonly rejectUnauthorized: boolean;
  readonly ca?: string;
}

/** Gives up on a probe that neither completes its handshake nor fails within this. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Why a TLS client with `tls` does not accept host:port's certificate ("TLS: server certificate not
 * accepted: ..."), or null when it does (the WebSocket failed for some other reason) or the probe
 * could not tell.
 */
export function certificateRefusal(host: string, port: number, tls: ClientTls): Promise<string | null> {
  const { promise, resolve } = Promise.withResolvers<string | null>();
  const timer = setTimeout(() => resolve(null), PROBE_TIMEOUT_MS);
  const settle = (why: string | null): void => {
    clearTimeout(timer);
    resolve(why);
  };
  Bun.connect({
    hostname: host,
    port,
    tls,
    socket: {
      data() {},
      handshake(socket, _success, authorizationError) {
        settle(authorizationError === null ? null : `TLS: server certificate not accepted: ${authorizationError.message}`);
        socket.terminate();
      },
      connectError() {
        settle(null);
      },
      error() {},
    },
  }).catch(() => settle(null));
  return promise;
}
