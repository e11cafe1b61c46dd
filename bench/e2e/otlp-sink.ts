// An OTLP/gRPC trace receiver for bench-e2e's gateway-otel target: accepts every Export and
// answers success, decoding nothing (its CPU is its own process's, not the gateway's).
//   bun bench/e2e/otlp-sink.ts   prints "otlp sink listening on 127.0.0.1:PORT"; on SIGTERM,
//   "otlp sink: N requests, B bytes".
import * as grpc from "@grpc/grpc-js";

let requests = 0;
let bytes = 0;
const server = new grpc.Server();
server.addService(
  {
    Export: {
      path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      requestStream: false,
      responseStream: false,
      requestSerialize: (x: Buffer) => x,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: () => Buffer.alloc(0), // an empty ExportTraceServiceResponse: full success
      responseDeserialize: (b: Buffer) => b,
    },
  },
  {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      requests++;
      bytes += call.request.length;
      done(null, Buffer.alloc(0));
    },
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => {
  if (e) {
    process.stderr.write(`otlp sink: ${e.message}\n`);
    process.exit(1);
  }
  console.log(`otlp sink listening on 127.0.0.1:${port}`);
});
process.on("SIGTERM", () => {
  console.log(`otlp sink: ${requests} requests, ${bytes} bytes`);
  server.forceShutdown();
  process.exit(0);
});
