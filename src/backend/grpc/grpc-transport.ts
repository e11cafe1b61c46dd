import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
// Embedded as a file: in a compiled binary it is read from the binary itself ($bunfs). A path
// made with new URL(..., import.meta.url) would point outside the binary and break there.
import protoPath from "./game_gateway.proto" with { type: "file" };
import type { GrpcPoolFactory } from "../backend-pool.ts";
import { GrpcEndpointPool, type GrpcPoolDeps } from "./grpc-endpoint-pool.ts";

// The gRPC transport's entry point, imported only when some route names a gRPC backend
// (load-grpc.ts): a TCP-only gateway never loads @grpc/grpc-js.

/** The reference's service definition (package gateway, GameGatewayService). */
export function gameGatewayServiceClient(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { gateway: { GameGatewayService: grpc.ServiceClientConstructor } };
  return pkg.gateway.GameGatewayService;
}

export function grpcPoolFactory(deps: Omit<GrpcPoolDeps, "clientConstructor">): GrpcPoolFactory {
  const clientConstructor = gameGatewayServiceClient();
  const all: GrpcPoolDeps = { ...deps, clientConstructor };
  return (endpoint) => new GrpcEndpointPool(endpoint, all);
}
