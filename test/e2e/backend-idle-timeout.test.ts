// connection_pool.idle_timeout as the reference meant it: the idle life of a backend connection.
// A shared connection carrying no session that long is closed (one stays open per endpoint), and
// dialled again when players need it.
import { afterEach, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { eventually, rule, str, text, TestScope } from "../support/harness.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);

test("multiplexed: shared connections idle past idle_timeout close down to one, and come back with players", async () => {
  const be = await scope.backend();
  const gw = scope.gateway({
    backend: { mode: "multiplexed", connections_per_endpoint: 3 },
    connection_pool: { idle_timeout: "300ms" },
    routing: { rules: [rule(T, [`127.0.0.1:${be.port}`])] },
  });
  await eventually(() => be.stats().connections === 3, "the pool's three connections to open");
  await eventually(() => be.stats().connections === 1, "the idle connections to close, one kept");
  expect(await gw.gateway.metrics.value("backend_connections_active", { backend: `127.0.0.1:${be.port}` })).toBe(1);

  const first = await gw.connect();
  first.send(1, serverIdFor(T), text("one"));
  expect(str((await first.next()).body)).toBe("one");
  // The one open connection now carries a session: the next player brings a second one back.
  const second = await gw.connect();
  second.send(1, serverIdFor(T), text("two"));
  expect(str((await second.next()).body)).toBe("two");
  await eventually(() => be.stats().connections === 2, "a parked connection to be dialled again");
  first.send(2, serverIdFor(T), text("still one"));
  expect(str((await first.next()).body)).toBe("still one");
  expect((await gw.gateway.metrics.value("backend_errors_total", { backend: `127.0.0.1:${be.port}`, error_type: "connection_lost" })) ?? 0).toBe(0);
});
