// Minimal reproduction for Bun upstream (to be filed; no gateway code in it): every `data`
// callback of a Bun.listen / Bun.connect socket receives a freshly allocated Uint8Array over its
// own freshly allocated ArrayBuffer, exactly the size of the read. A server that only forwards
// bytes therefore allocates as many bytes as it reads, and JavaScriptCore runs an eden collection
// every few MiB of input: with many clients sending small messages at a steady rate, the
// collections (about 1 ms pause each here) land on a percent or more of all messages and set the
// 99th percentile of latency.
//
//   bun bench/upstream/bun-read-alloc.ts                     # 5,000 clients, 10 msg/s, 1 KiB, 10 s
//   bun bench/upstream/bun-read-alloc.ts --clients 2000 --seconds 5
//
// What it does: the parent process runs a Bun.listen echo server whose data handler writes each
// chunk straight back (it allocates nothing itself). A child process (this file with --client)
// opens N connections and sends one message of --size bytes per connection every 100 ms (open
// loop), timing each echo. The server reports:
//   1. per read: distinct ArrayBuffers among 1,000 consecutive chunks, their byteOffset and
//      whether buffer.byteLength equals the chunk's length (measured after the run, outside the
//      counting window, since reading `.buffer` can itself allocate);
//   2. heap cells allocated per read, by type: bun:jsc heapStats() counts dead cells until they
//      are swept, so the difference across a window with no collection in it is what the window
//      allocated (a WeakRef to an unreachable object made at the window's start proves no
//      collection ran: any collection clears it);
//   3. with BUN_JSC_logGC=1 (set for the server by this script), eden collections per second and
//      their pauses, beside the client's p50/p99 latency.
//
// Expected (what would fix it): a way to receive socket data without an allocation per read,
// e.g. a handler option that lends a view of Bun's receive buffer valid only during the callback
// (the shape of Node's `net.Socket` `onread: { buffer, callback }`), so a proxy can parse frames in
// place and copy only what it keeps.
import { gcAndSweep, heapStats } from "bun:jsc";

const args = process.argv.slice(2);
function arg(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const clients = arg("clients", 5000);
const size = arg("size", 1024);
const seconds = arg("seconds", 10);
const perSecond = arg("rate", 10);

if (args.includes("--client")) await runClients(arg("port", 0));
else if (args.includes("--server")) await runServer();
else await runParent();

/** Spawns the server (with the GC log on) and reads its report. */
async function runParent(): Promise<void> {
  const server = Bun.spawn([process.execPath, import.meta.path, "--server", ...args], {
    env: { ...process.env, BUN_JSC_logGC: "1" },
    stdout: "inherit",
    stderr: "pipe",
  });
  const gcLog = await new Response(server.stderr).text();
  await server.exited;
  const pauses: number[] = [];
  let eden = 0;
  let full = 0;
  // Only the collections during the load (the server prints markers into its stderr).
  const during = gcLog.slice(gcLog.indexOf("LOAD-START"), gcLog.indexOf("LOAD-END"));
  for (const m of during.matchAll(/=> (EdenCollection|FullCollection).*?p=([\d.]+)ms/g)) {
    if (m[1] === "EdenCollection") eden++;
    else full++;
    pauses.push(Number(m[2]));
  }
  pauses.sort((a, b) => a - b);
  const total = pauses.reduce((a, b) => a + b, 0);
  const q = (p: number) => (pauses.length === 0 ? 0 : pauses[Math.min(pauses.length - 1, Math.floor(p * pauses.length))]!);
  console.log(
    `GC during ${seconds} s of load: ${eden} eden + ${full} full collections (${(eden / seconds).toFixed(1)}/s); ` +
      `pause median ${q(0.5).toFixed(2)} ms, max ${(pauses.at(-1) ?? 0).toFixed(2)} ms; ` +
      `${(total / seconds).toFixed(1)} ms paused per second (${((total / seconds / 1000) * 100).toFixed(2)}% of wall time)`,
  );
}

async function runServer(): Promise<void> {
  let reads = 0;
  let bytes = 0;
  let sample: Uint8Array[] | null = null;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        socket.setNoDelay(true);
      },
      data(socket, chunk) {
        reads++;
        bytes += chunk.length;
        if (sample !== null && sample.length < 1000) sample.push(chunk);
        socket.write(chunk); // small messages: the kernel takes them whole
      },
    },
  });
  const client = Bun.spawn([process.execPath, import.meta.path, "--client", "--port", String(listener.port), ...args], { stdout: "pipe", stderr: "inherit" });
  await Bun.sleep(1000 + (clients / 2500) * 1000); // connections ramp at 2,500/s
  // First the load with no forced collection: what the GC log reports.
  process.stderr.write("LOAD-START\n");
  const r0 = reads;
  const b0 = bytes;
  const t0 = performance.now();
  await Bun.sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  const loadReads = reads - r0;
  const loadBytes = bytes - b0;
  process.stderr.write("LOAD-END\n");
  // A sample of chunks to look at (outside every window: reading `.buffer` can allocate).
  sample = [];
  await Bun.sleep(300);
  const chunks = sample as Uint8Array[];
  sample = null;
  // Then allocation windows, short enough to fit between two collections (each starts with a
  // forced one, so they come after the GC log's window). What heapStats() itself allocates is
  // measured back to back and subtracted.
  gcAndSweep();
  const s0 = { ...heapStats().objectTypeCounts };
  const s1 = heapStats().objectTypeCounts;
  const overhead: Record<string, number> = {};
  for (const [k, v] of Object.entries(s1)) if (v !== (s0[k] ?? 0)) overhead[k] = v - (s0[k] ?? 0);
  const perRead: Record<string, number> = {};
  let windowReads = 0;
  let kept = 0;
  for (let i = 0; i < 40 && kept < 8; i++) {
    gcAndSweep();
    const sentinel = new WeakRef({});
    const before = { ...heapStats().objectTypeCounts };
    const startReads = reads;
    await Bun.sleep(100);
    const after = heapStats().objectTypeCounts;
    if (sentinel.deref() === undefined) continue; // a collection ran inside the window
    kept++;
    windowReads += reads - startReads;
    for (const [k, v] of Object.entries(after)) {
      const d = v - (before[k] ?? 0) - (overhead[k] ?? 0);
      if (d !== 0) perRead[k] = (perRead[k] ?? 0) + d;
    }
  }
  const latency = await new Response(client.stdout).text();
  await client.exited;
  listener.stop(true);

  const buffers = new Set(chunks.map((c) => c.buffer));
  console.log(`Bun ${Bun.version}, ${clients} clients x ${perSecond} msg/s x ${size} B`);
  console.log(`reads: ${(loadReads / wall).toFixed(0)}/s, ${(loadBytes / loadReads).toFixed(0)} bytes per read`);
  console.log(
    `of ${chunks.length} consecutive chunks: ${buffers.size} distinct ArrayBuffers, ` +
      `${chunks.filter((c) => c.byteOffset === 0).length} at byteOffset 0, ` +
      `${chunks.filter((c) => c.buffer.byteLength === c.length).length} whose ArrayBuffer is exactly the chunk`,
  );
  const cells = Object.entries(perRead)
    .map(([k, v]) => [k, v / windowReads] as const)
    .filter(([, v]) => Math.abs(v) >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(", ");
  console.log(`heap cells allocated per read (${kept} windows, ${windowReads} reads, no collection inside): ${cells}`);
  console.log(`client latency: ${latency.trim()}`);
}

/** N connections, each sending one message every 1000/perSecond ms; prints p50/p99 of the echoes. */
async function runClients(port: number): Promise<void> {
  const message = new Uint8Array(size).fill(7);
  const samples: number[] = [];
  const sentAt: number[][] = [];
  const sockets: Bun.Socket<number>[] = [];
  // Only echoes of messages sent in the first `seconds` of sending count: the server's GC-log
  // window; after it the server forces collections to count allocations.
  let loadStart = Number.POSITIVE_INFINITY;
  for (let i = 0; i < clients; i++) {
    sentAt.push([]);
    const id = i;
    let pending = 0;
    sockets.push(
      await Bun.connect({
        hostname: "127.0.0.1",
        port,
        data: id,
        socket: {
          data(socket, chunk) {
            // Echoes of size-byte messages: one completes every `size` bytes.
            pending += chunk.length;
            while (pending >= size) {
              pending -= size;
              const t = sentAt[socket.data]!.shift();
              if (t !== undefined && t >= loadStart && t - loadStart < seconds * 1000) samples.push(performance.now() - t);
            }
          },
        },
      }),
    );
    if (i % 25 === 24) await Bun.sleep(10); // about 2,500 connections a second
  }
  const interval = 1000 / perSecond;
  const start = performance.now();
  loadStart = start;
  let slot = 0;
  const slotsPerTick = clients / (interval / 5);
  // One 5 ms timer spreads each connection's sends evenly over the interval.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 5) * slotsPerTick);
    for (; slot < due; slot++) {
      const i = slot % clients;
      sentAt[i]!.push(performance.now());
      sockets[i]!.write(message);
    }
  }, 5);
  await Bun.sleep(seconds * 1000 + 10_000);
  clearInterval(timer);
  await Bun.sleep(500);
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? 0;
  console.log(`${samples.length} echoes, p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, p99.9 ${q(0.999).toFixed(2)} ms`);
  for (const s of sockets) s.end();
  process.exit(0);
}
