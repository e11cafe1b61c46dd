import type { GrpcPoolFactory } from "../backend-pool.ts";
import type { GrpcPoolDeps } from "./grpc-endpoint-pool.ts";

// The one door to the gRPC transport. @grpc/grpc-js is imported only when some route names a gRPC
// backend (server.use_grpc, a rule's transport), so a TCP-only gateway starts and runs as before.
// The specifier is computed, so the bundler does not inline grpc-transport.ts into the main bundle;
// scripts/build.ts compiles it as an entry point of its own, embedded at its path under the
// entries' common root (as span export's otlp-tracer.ts).
const GRPC_TRANSPORT_URL = import.meta.url.startsWith("file:///$bunfs/")
  ? "/$bunfs/root/backend/grpc/grpc-transport.js"
  : new URL("./grpc-transport.ts", import.meta.url).href;

export type GrpcTransportDeps = Omit<GrpcPoolDeps, "clientConstructor">;

/** Makes gRPC pools once the deps are known (the gateway's metrics, relay and logs). */
export type GrpcTransport = (deps: GrpcTransportDeps) => GrpcPoolFactory;

export async function loadGrpcTransport(): Promise<GrpcTransport> {
  const { grpcPoolFactory } = (await import(GRPC_TRANSPORT_URL)) as typeof import("./grpc-transport.ts");
  return grpcPoolFactory;
}
