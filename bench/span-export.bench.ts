// What span export costs per connection: the process CPU of the OtlpConnectionTracer calls a
// session makes (started, routed, ended: four spans) plus their batching, protobuf encoding and
// OTLP/gRPC export to bench/e2e/otlp-sink.ts in a process of its own (whose CPU is not counted).
// Nothing here is per message: a message's path does not touch the tracer.
//
//   bun bench/span-export.bench.ts [--connections N]    (default 50,000; prints one JSON line)
import { join } from "node:path";
import { Logger } from "../src/log/logger.ts";
import { SpanId, TraceId } from "../src/protocol/trace-context.ts";
import type { ClientPort } from "../src/session/client-port.ts";
import { Session } from "../src/session/session.ts";
import { otlpSettingsFromEnv } from "../src/tracing/otlp-settings.ts";
import { OtlpConnectionTracer } from "../src/tracing/otlp-tracer.ts";

const arg = process.argv.indexOf("--connections");
const CONNECTIONS = arg > 0 ? Number(process.argv[arg + 1]) : 50_000;
const WARMUP = 5_000;
/** Connections ended per event-loop turn; the exporter runs between turns. */
const CHUNK = 100;

const sink = Bun.spawn([process.execPath, join(import.meta.dir, "e2e/otlp-sink.ts")], { stdout: "pipe", stderr: "inherit" });
const reader = sink.stdout.getReader();
let banner = "";
while (!/listening on ([\d.]+:\d+)/.test(banner)) {
  const { value, done } = await reader.read();
  if (done) throw new Error("otlp sink exited before listening");
  banner += new TextDecoder().decode(value);
}
const endpoint = banner.match(/listening on ([\d.]+:\d+)/)![1]!;

const settings = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: "50" }, "bench")!;
const tracer = new OtlpConnectionTracer(settings, new Logger("warn", { write: () => {} }));
// The tracer reads two fields of the client port.
const port = { remoteAddress: "127.0.0.1", protocol: "tcp" } as unknown as ClientPort;

async function connections(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = new Session(1, i, port, { serverType: 10, worldId: 1, instId: 0 }, Date.now());
    s.traceId = TraceId.random();
    s.spanId = SpanId.random();
    const spans = tracer.sessionStarted(s, Date.now());
    tracer.sessionRouted(s, spans, "127.0.0.1:9000");
    s.messagesIn = s.messagesOut = 10;
    tracer.sessionEnded(s, spans, "client_closed");
    s.spans = null;
    if (i % CHUNK === CHUNK - 1) {
      // Keep the queue below its bound so every span is exported, not dropped.
      do await Bun.sleep(0);
      while (tracer.stats().pending > settings.maxQueueSize / 2);
    }
  }
  while (tracer.stats().pending > 0) await Bun.sleep(5);
}

await connections(WARMUP);
const before = tracer.stats();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await connections(CONNECTIONS);
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
const after = tracer.stats();
await tracer.shutdown();
sink.kill("SIGTERM");
console.log(
  JSON.stringify({
    connections: CONNECTIONS,
    spansExported: after.exported - before.exported,
    spansDropped: after.dropped - before.dropped,
    spansFailed: after.failed - before.failed,
    cpuUsPerConnection: Number(((cpu.user + cpu.system) / CONNECTIONS).toFixed(2)),
    wallUsPerConnection: Number(((wallMs * 1000) / CONNECTIONS).toFixed(2)),
  }),
);
process.exit(0);
