// The gRPC-backend target's echo backend: a game server on the reference's gRPC transport
// (GameGatewayService.StreamPackets), run under Node, returning every game packet to its session
// unchanged (msg_id and payload), as bench/e2e/echo-server.ts and the demo backend do over TCP.
// Lifecycle packets (metadata.packet_type) are not answered. Prints "grpc echo listening on PORT".
// Usage: node bench/e2e/grpc-echo-server.mjs <proto path> [port]
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const [protoPath, port = "0"] = process.argv.slice(2);
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, defaults: true }));
const NO_METADATA = {};

function streamPackets(call) {
  call.on("data", (p) => {
    if (p.metadata.packet_type) return;
    call.write({ session_id: p.session_id, msg_id: p.msg_id, payload: p.payload, metadata: NO_METADATA });
  });
  call.on("end", () => call.end());
  call.on("error", () => {});
}

const server = new grpc.Server();
server.addService(pkg.gateway.GameGatewayService.service, { StreamPackets: streamPackets });
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    process.stderr.write(`${err}\n`);
    process.exit(1);
  }
  process.stdout.write(`grpc echo listening on ${bound}\n`);
});
