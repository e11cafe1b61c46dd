// A game server written against the reference gateway's gRPC transport (GameGatewayService.StreamPackets),
// run as a process of its own under Node (an HTTP/2 and gRPC implementation independent of Bun's)
// or under Bun. It prints one JSON line per event on stdout, the first being {"event":"listening","port":N}:
//   {"event":"stream","gateway_name":...}                         a stream opened (its request metadata)
//   {"event":"packet","session_id":"...","msg_id":N,"payload":"<utf8>","metadata":{...}}
//   {"event":"stream_end"}
// and answers as a game server would:
//   connect packet         -> server_connect for that session
//   msg_id 1 (echo)        -> the same msg_id and payload back to the session
//   msg_id 2 (kick)        -> server_disconnect for the session, reason = payload
//   msg_id 3 (multicast)   -> payload {"targets":["id",...],"text":"...","repeat":N}: msg_id 3, text, to every
//                             target; the list is sent repeat times over (default 1: duplicates on purpose)
//   msg_id 4 (stall)       -> stops reading the stream for STALL_MS (--stall-ms), then reads again
//   msg_id 6 (end)         -> ends the stream: status OK, in trailers
//   msg_id 7 (huge)        -> payload "N": a packet with an N-byte payload back to the session
// Usage: node grpc-game-server.mjs <proto path> [port] [--quiet] [--stall-ms N]
//   --quiet: no packet events (the benchmark's echo backend).
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const [protoPath, portArg = "0", ...flags] = process.argv.slice(2);
const quiet = flags.includes("--quiet");
const stallAt = flags.indexOf("--stall-ms");
const STALL_MS = stallAt >= 0 ? Number(flags[stallAt + 1]) : 3000;

const definition = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, defaults: true });
const pkg = grpc.loadPackageDefinition(definition);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function streamPackets(call) {
  out({ event: "stream", gateway_name: call.metadata.get("gateway-name")[0] ?? null });
  call.on("data", (p) => {
    if (!quiet) out({ event: "packet", session_id: p.session_id, msg_id: p.msg_id, payload: Buffer.from(p.payload).toString("utf8"), metadata: p.metadata });
    const type = p.metadata.packet_type;
    if (type === "connect") {
      call.write({ session_id: p.session_id, msg_id: 0, payload: Buffer.alloc(0), metadata: { packet_type: "server_connect" } });
      return;
    }
    if (type) return;
    switch (p.msg_id) {
      case 2:
        call.write({ session_id: p.session_id, msg_id: 0, payload: Buffer.alloc(0), metadata: { packet_type: "server_disconnect", reason: Buffer.from(p.payload).toString("utf8") } });
        break;
      case 3: {
        const { targets, text, repeat = 1 } = JSON.parse(Buffer.from(p.payload).toString("utf8"));
        const listed = Array.from({ length: repeat }, () => targets).flat();
        call.write({ session_id: "0", msg_id: 3, payload: Buffer.from(text), metadata: {}, target_session_ids: listed });
        break;
      }
      case 4:
        // Stop reading: HTTP/2 flow control fills, and the gateway must hold and then pause.
        call.pause();
        out({ event: "stalled" });
        setTimeout(() => {
          out({ event: "resumed" });
          call.resume();
        }, STALL_MS);
        break;
      case 7:
        call.write({ session_id: p.session_id, msg_id: 7, payload: Buffer.alloc(Number(Buffer.from(p.payload).toString("utf8")), 0x68), metadata: {} });
        break;
      case 6:
        out({ event: "ending" });
        call.end();
        break;
      default:
        call.write({ session_id: p.session_id, msg_id: p.msg_id, payload: p.payload, metadata: {} });
    }
  });
  call.on("end", () => {
    out({ event: "stream_end" });
    call.end();
  });
  call.on("error", () => {});
}

const server = new grpc.Server();
server.addService(pkg.gateway.GameGatewayService.service, { StreamPackets: streamPackets });
server.bindAsync(`127.0.0.1:${portArg}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(String(err) + "\n");
    process.exit(1);
  }
  out({ event: "listening", port });
});
