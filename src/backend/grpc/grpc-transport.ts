import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
// Embedded as a file: in a compiled binary it is read from the binary itself ($bunfs). A path
// made with new URL(..., import.meta.url) would point outside the binary and break there.
import protoPath from "./game_gateway.proto" with { type: "file" };
import type { GrpcPoolFactory } from "../backend-pool.ts";
import { GrpcEndpointPool, type GrpcPoolDeps } from "./grpc-endpoint-pool.ts";
import { decodePacket } from "./game-packet-codec.ts";

// The gRPC transport's entry point, imported only when some route names a gRPC backend
// (load-grpc.ts): a TCP-only gateway never loads @grpc/grpc-js.

const SERVICE = "gateway.GameGatewayService";

/**
 * The reference's service (package gateway, GameGatewayService) from its .proto, with GamePacket
 * encoded and decoded by game-packet-codec.ts rather than protobufjs: packets are sent as the
 * Buffers game-packet.ts encodes, and read into ReceivedPacket records.
 */
export function gameGatewayServiceClient(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true });
  const service = definition[SERVICE] as grpc.ServiceDefinition | undefined;
  const method = service?.StreamPackets;
  if (method === undefined || !method.requestStream || !method.responseStream) throw new Error(`${SERVICE}.StreamPackets missing from the embedded .proto`);
  const streamPackets: grpc.MethodDefinition<Buffer, unknown> = {
    ...method,
    requestSerialize: (packet: Buffer) => packet,
    responseDeserialize: decodePacket,
  };
  return grpc.makeGenericClientConstructor({ StreamPackets: streamPackets }, SERVICE);
}

export function grpcPoolFactory(deps: Omit<GrpcPoolDeps, "clientConstructor">): GrpcPoolFactory {
  const clientConstructor = gameGatewayServiceClient();
  const all: GrpcPoolDeps = { ...deps, clientConstructor };
  return (endpoint) => new GrpcEndpointPool(endpoint, all);
}
