// The hostile-client figures in docs/reliability.md, measured against a source tree (this one, or
// an older commit unpacked elsewhere with `git archive <commit> | tar -x -C DIR` and a
// node_modules symlink), so the same scenario can be run before and after a change:
//   bun bench/e2e/hostile-clients.ts <source root> proxy-silent | no-address | half-frames | paused-close [dedicated|multiplexed]
// proxy-silent  1,200 silent sockets from 127.0.0.1, PROXY optional, trusted 10.0.0.0/8, default
//               limits: slots held, refusals, and whether a client from 127.0.0.9 is served
// no-address    2,000 connections that send a frame and reset before accept
// half-frames   2,000 clients each holding 65,500 bytes of a maximal frame: pooled bytes pinned
// paused-close  300 clients paused behind a stalled backend close: how long until the gateway sees it
// Gateway, backends and clients share this process; it prints one JSON line.
import type { Socket, TCPSocketConnectOptions } from "bun";
const root = process.argv[2]!;
const scenario = process.argv[3]!;
const H = await import(`${root}/test/support/harness.ts`);
const { DemoBackend } = await import(`${root}/src/demo/demo-backend.ts`);
const { encodeClientFrame } = await import(`${root}/src/protocol/client-frame.ts`);
const { serverIdFor } = await import(`${root}/src/client/game-client.ts`);

const T = 10;
const sleep = (ms: number) => Bun.sleep(ms);
const rejected = async (gw: any) => {
  const out: Record<string, number> = {};
  for (const r of ["per_ip_limit", "rate_limited", "max_connections", "no_peer_address", "proxy_timeout", "proxy_pending_limit", "proxy_invalid"]) {
    const v = await gw.gateway.metrics.value("connection_refusals_total", { refusal: r });
    if (v) out[r] = v;
  }
  return out;
};
const closes = async (gw: any) => {
  const out: Record<string, number> = {};
  for (const r of ["client_closed", "backend_lost", "partial_frame_timeout", "pending_input_limit", "idle_timeout", "first_message_timeout", "rejected", "backend_congested"]) {
    const v = await gw.gateway.metrics.value("client_closes_total", { reason: r });
    if (v) out[r] = v;
  }
  return out;
};

async function raw(port: number, localAddress?: string) {
  const r = { received: 0, closed: false, socket: null as unknown as Socket<undefined> };
  const opts: TCPSocketConnectOptions<undefined> & { localAddress?: string } = {
    hostname: "127.0.0.1", port, localAddress,
    socket: { data(_s, c) { r.received += c.length; }, close() { r.closed = true; }, error() {} },
  };
  r.socket = await Bun.connect(opts);
  return r;
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await sleep(20);
  }
  return -1;
}

if (scenario === "proxy-silent") {
  const a = await DemoBackend.start({ port: 0 });
  const gw = H.startGateway({
    security: { proxy_protocol: "optional", trusted_proxies: ["10.0.0.0/8"], max_connections_per_ip: 10, connection_rate_limit: 5 },
    connection_pool: { max_connections: 1000 },
    routing: { rules: [H.rule(T, [`127.0.0.1:${a.port}`])] },
  });
  const silent = [];
  for (let i = 0; i < 1200; i += 100) silent.push(...(await Promise.all(Array.from({ length: 100 }, () => raw(gw.gateway.port)))));
  await waitFor(async () => Object.values(await rejected(gw)).reduce((x, y) => x + y, 0) + gw.gateway.clientConnections >= 1200, 10_000);
  const held = gw.gateway.clientConnections;
  const p = await raw(gw.gateway.port, "127.0.0.9");
  p.socket.write(encodeClientFrame(1, serverIdFor(T), new TextEncoder().encode("hi")));
  await waitFor(() => p.received > 0 || p.closed, 5000);
  console.log(JSON.stringify({ scenario, silent: 1200, slots_held: held, refusals: await rejected(gw), player_127_0_0_9: p.received > 0 ? "served" : p.closed ? "refused" : "no answer" }));
  process.exit(0);
}

if (scenario === "no-address") {
  const a = await DemoBackend.start({ port: 0 });
  const gw = H.startGateway({
    security: { max_connections_per_ip: 10, connection_rate_limit: 5 },
    routing: { rules: [H.rule(T, [`127.0.0.1:${a.port}`])] },
  });
  const N = 2000;
  let ok = 0;
  for (let done = 0; done < N; done += 200) {
    const child = Bun.spawnSync({
      cmd: [process.execPath, "-e", `const net = require("node:net");
        const frame = Buffer.from(${JSON.stringify(Array.from(encodeClientFrame(1, serverIdFor(T), new TextEncoder().encode("ghost"))))});
        let left = 200;
        for (let i = 0; i < 200; i++) { const s = net.connect(${gw.gateway.port}, "127.0.0.1", () => { s.write(frame, () => { s.resetAndDestroy(); if (--left === 0) setTimeout(() => process.exit(0), 50); }); }); s.on("error", () => {}); }`],
      timeout: 30_000,
    });
    if (child.exitCode === 0) ok += 200;
    await waitFor(async () => (await gw.gateway.metrics.value("connections_total")) >= ok, 10_000);
  }
  await waitFor(() => gw.gateway.clientConnections === 0, 10_000);
  const forwarded = a.events.filter((e: any) => e.opcode === 1).length;
  const connects = a.events.filter((e: any) => e.opcode === 2).length;
  console.log(JSON.stringify({ scenario, reset_before_accept: ok, refusals: await rejected(gw), frames_forwarded: forwarded, connects }));
  process.exit(0);
}

if (scenario === "half-frames") {
  const a = await DemoBackend.start({ port: 0 });
  const gw = H.startGateway({
    server: { first_message_timeout: "10m" },
    routing: { rules: [H.rule(T, [`127.0.0.1:${a.port}`])] },
  });
  const N = 2000;
  const half = encodeClientFrame(1, serverIdFor(T), new Uint8Array(65535)).subarray(0, 65_500);
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = await Promise.all(Array.from({ length: 100 }, () => raw(gw.gateway.port)));
    for (const c of batch) c.socket.write(half);
    clients.push(...batch);
  }
  await waitFor(() => false, 3000);
  const pinned = gw.gateway.buffers.stats().outstandingBytes;
  const open1 = gw.gateway.clientConnections;
  const t = await waitFor(() => gw.gateway.buffers.stats().outstandingBytes === 0, 20_000);
  console.log(JSON.stringify({ scenario, clients: N, pinned_MB_after_3s: +(pinned / 1e6).toFixed(1), open_after_3s: open1, released_after_ms: t === -1 ? "not within 23 s" : t + 3000, pinned_MB_at_end: +(gw.gateway.buffers.stats().outstandingBytes / 1e6).toFixed(1), closes: await closes(gw) }));
  process.exit(0);
}

if (scenario === "paused-close") {
  const mode = process.argv[4] ?? "dedicated";
  let heldSockets = 0;
  const stalled = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open(s) { heldSockets++; s.pause(); }, data() {} } });
  const gw = H.startGateway({
    backend: { mode },
    routing: { rules: [H.rule(T, [`127.0.0.1:${stalled.port}`])] },
  });
  const N = 300;
  const body = new Uint8Array(60_000);
  const clients = await Promise.all(Array.from({ length: N }, () => gw.connect()));
  const pauses = () => gw.gateway.metrics.value("backend_backpressure_pauses_total");
  for (let round = 0; round < 200; round++) {
    for (const c of clients) for (let i = 0; i < 4; i++) try { c.send(1, serverIdFor(T), body); } catch {}
    await sleep(30);
    if ((await pauses()) >= N && round > 20) break;
  }
  await sleep(1000);
  const rss = process.memoryUsage().rss;
  const queued = gw.gateway.backends.all().reduce((n: number, p: any) => n + p.queuedBytes, 0);
  for (const c of clients) c.close();
  const t = await waitFor(() => gw.gateway.clientConnections === 0, 60_000);
  console.log(JSON.stringify({ scenario, mode, clients: N, paused: await pauses(), queued_MB: +(queued / 1e6).toFixed(0), rss_MB: +(rss / 1e6).toFixed(0), closes_seen_after_ms: t, closes: await closes(gw), queued_MB_after: +(gw.gateway.backends.all().reduce((n: number, p: any) => n + p.queuedBytes, 0) / 1e6).toFixed(0) }));
  process.exit(0);
}
