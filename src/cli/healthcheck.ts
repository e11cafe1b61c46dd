// `game-gateway healthcheck`: the container image's HEALTHCHECK. The final image is distroless
// (no shell, no curl), so the binary asks its own admin port. Exit 0 on a 2xx answer, 1 otherwise
// (what Docker's HEALTHCHECK and an exec probe read), with one line saying why.

/** The admin port's /health on this host: server.health_check_port's default. */
export const DEFAULT_HEALTH_URL = "http://127.0.0.1:9090/health";

/** Below Docker's default HEALTHCHECK timeout (30 s) and the Deployment's probe timeout. */
const TIMEOUT_MS = 2_000;

export async function healthcheck(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await res.arrayBuffer();
    if (res.status >= 200 && res.status < 300) return 0;
    console.error(`healthcheck: ${url}: HTTP ${res.status}`);
    return 1;
  } catch (e) {
    console.error(`healthcheck: ${url}: ${(e as Error).message}`);
    return 1;
  }
}
