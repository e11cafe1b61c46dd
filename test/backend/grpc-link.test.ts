// The gRPC stream as a BackendLink: the one BackendLink contract suite, against a real
// GameGatewayService server (grpc-js's server, in this process) on loopback.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { GatewayMetrics } from "../../src/admin/metrics.ts";
import { GrpcEndpointPool } from "../../src/backend/grpc/grpc-endpoint-pool.ts";
import { gameGatewayServiceClient } from "../../src/backend/grpc/grpc-transport.ts";
import { Logger, ThrottledLog } from "../../src/log/logger.ts";
import { SharedQueueTally } from "../../src/net/socket-writer.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { SpanIdSource } from "../../src/protocol/trace-context.ts";
import { BackendRelay } from "../../src/session/backend-relay.ts";
import { SessionIdGenerator } from "../../src/session/session-id.ts";
import { SessionManager } from "../../src/session/session-manager.ts";
import type { Session } from "../../src/session/session.ts";
import { systemClock } from "../../src/time/clock.ts";
import { eventually } from "../support/eventually.ts";
import { GAME_GATEWAY_PROTO } from "../support/grpc-game-server.ts";
import { type ContractBackend, type LinkFactory, type ReceivedFrame, backendLinkContract, sessionIdOf } from "../contracts/backend-link.contract.ts";

interface Packet {
  session_id: string;
  msg_id: number;
  payload: Buffer;
  metadata: Record<string, string>;
}

const OPCODE_OF: Record<string, number> = { connect: OpCode.Connect, disconnect: OpCode.Disconnect };
const encoder = new TextEncoder();

/** A gRPC game server that records what arrived in the wire protocol's terms (see ContractBackend). */
class GrpcContractBackend implements ContractBackend {
  readonly frames: ReceivedFrame[] = [];
  private readonly calls = new Set<grpc.ServerDuplexStream<Packet, Packet>>();
  private stalled = false;
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<GrpcContractBackend> {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(GAME_GATEWAY_PROTO, { keepCase: true, longs: String, defaults: true })) as unknown as {
      gateway: { GameGatewayService: grpc.ServiceClientConstructor };
    };
    const server = new grpc.Server();
    let backend: GrpcContractBackend | null = null;
    server.addService(pkg.gateway.GameGatewayService.service, {
      StreamPackets: (call: grpc.ServerDuplexStream<Packet, Packet>) => backend!.onStream(call),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    backend = new GrpcContractBackend(server, port);
    return backend;
  }

  of(session: Session, opcode?: number): ReceivedFrame[] {
    const id = sessionIdOf(session);
    return this.frames.filter((f) => f.sessionId === id && (opcode === undefined || f.opcode === opcode));
  }

  stall(): void {
    this.stalled = true;
    for (const c of this.calls) c.pause();
  }

  resume(): void {
    this.stalled = false;
    for (const c of this.calls) c.resume();
  }

  stop(): void {
    this.server.forceShutdown();
  }

  private onStream(call: grpc.ServerDuplexStream<Packet, Packet>): void {
    this.calls.add(call);
    if (this.stalled) call.pause();
    call.on("data", (p: Packet) => {
      const kind = p.metadata.packet_type;
      const { packet_type: _, ...rest } = p.metadata;
      this.frames.push({
        opcode: kind === undefined ? OpCode.Trans : (OPCODE_OF[kind] ?? -1),
        sessionId: BigInt(p.session_id),
        type: p.msg_id,
        body: kind === undefined ? new Uint8Array(p.payload) : encoder.encode(JSON.stringify(rest)),
      });
    });
    call.on("end", () => call.end());
    call.on("error", () => {});
    call.on("close", () => this.calls.delete(call));
  }
}

const grpcLinks: LinkFactory = (port, limits) => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const log = new Logger("warn", { write: () => {} });
  const throttled = new ThrottledLog(log);
  const pool = new GrpcEndpointPool(`127.0.0.1:${port}`, {
    settings: {
      gatewayName: "contract",
      breaker: { failureThreshold: 5, windowMs: 60_000, openTimeoutMs: 30_000, halfOpenMaxRequests: 1 },
      heartbeatIntervalMs: 30_000,
      connectionTimeoutMs: 5_000,
      retryDelayMs: 100,
      reconnectIntervalMs: 1_000,
      maxReconnectAttempts: 0,
      writeTimeoutMs: 0,
      maxReceiveMessageSize: 4 * 1024 * 1024,
      highWater: limits.highWater,
      limit: limits.limit,
      totalLimit: 1 << 30,
      traceContext: false,
    },
    handler: new BackendRelay({ sessions: new SessionManager(new SessionIdGenerator("contract"), 1_000), metrics, throttledLog: throttled, logger: log }),
    metrics,
    log,
    throttledLog: throttled,
    telemetry: { latency: metrics.requestLatency, spans: new SpanIdSource(), totalQueued: new SharedQueueTally() },
    clientConstructor: gameGatewayServiceClient(),
    clock: systemClock,
  });
  pool.start();
  return {
    bind(session) {
      if (!pool.attach(session)) throw new Error("the stream is not there to bind to");
      return session.link!;
    },
    async close() {
      pool.close();
      await eventually(() => pool.finished, "the stream to finish", 20_000);
    },
  };
};

backendLinkContract("GrpcEndpointPool (one StreamPackets stream)", grpcLinks, () => GrpcContractBackend.start());
