// The OTLP/gRPC trace receiver of otlp-receiver.ts, hosted by Node.js instead of Bun: a gRPC
// server on Node's own HTTP/2, so the gateway's exporter (grpc-js on Bun's HTTP/2 client) is
// checked against a server that Bun did not implement, as a real collector is. It decodes
// nothing: each Export request's bytes go to stdout as one JSON line, {"export":"<base64>"};
// the first line is {"port":N}.
import * as grpc from "@grpc/grpc-js";

const server = new grpc.Server();
server.addService(
  {
    Export: {
      path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
      requestStream: false,
      responseStream: false,
      requestSerialize: (x) => x,
      requestDeserialize: (b) => b,
      responseSerialize: () => Buffer.alloc(0), // an empty ExportTraceServiceResponse: full success
      responseDeserialize: (b) => b,
    },
  },
  {
    Export: (call, done) => {
      process.stdout.write(`${JSON.stringify({ export: call.request.toString("base64") })}\n`);
      done(null, Buffer.alloc(0));
    },
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => {
  if (e) {
    process.stderr.write(`otlp receiver: ${e.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
