// A local OTLP/gRPC trace receiver for tests: a real gRPC server (@grpc/grpc-js) serving
// opentelemetry.proto.collector.trace.v1.TraceService/Export, decoding each request with
// protobufjs from the OTLP message definitions (field numbers as in opentelemetry-proto; the
// fields a test reads, the rest skipped as unknown). Not our code on either side of the wire.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";

const OTLP_TRACE_PROTO = readFileSync(join(import.meta.dir, "otlp-trace.proto"), "utf8");

const Request = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType("opentelemetry.proto.ExportTraceServiceRequest");

type Value = string | number | boolean;

/** One exported span, flattened with its resource: IDs as lowercase hex (W3C byte order). */
export interface ReceivedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly attributes: Readonly<Record<string, Value>>;
  /** 0 unset, 1 ok, 2 error (OTLP StatusCode). */
  readonly statusCode: number;
  readonly resource: Readonly<Record<string, Value>>;
}

interface DecodedKeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: number; doubleValue?: number };
}

function attributes(kvs: DecodedKeyValue[] | undefined): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const kv of kvs ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? v.boolValue ?? v.intValue ?? v.doubleValue ?? "";
  }
  return out;
}

const hex = (b: Uint8Array | undefined): string => (b === undefined ? "" : Buffer.from(b).toString("hex"));

/** Decodes one ExportTraceServiceRequest into the spans it carries. */
function decodeExport(body: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const req = Request.toObject(Request.decode(body), { longs: Number, defaults: false }) as {
    resourceSpans?: { resource?: { attributes?: DecodedKeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
  };
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          name: s.name as string,
          traceId: hex(s.traceId as Uint8Array),
          spanId: hex(s.spanId as Uint8Array),
          parentSpanId: hex(s.parentSpanId as Uint8Array | undefined),
          attributes: attributes(s.attributes as DecodedKeyValue[] | undefined),
          statusCode: (s.status as { code?: number } | undefined)?.code ?? 0,
          resource,
        });
      }
    }
  }
  return out;
}

const EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;

  private constructor(
    readonly port: number,
    private readonly close: () => void,
  ) {}

  /** A gRPC server in this process (Bun's HTTP/2). */
  static async start(): Promise<OtlpReceiver> {
    const server = new grpc.Server();
    let receiver: OtlpReceiver | null = null;
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (x: Buffer) => x,
        requestDeserialize: (b: Buffer) => b,
        // An empty ExportTraceServiceResponse: full success.
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        receiver?.record(call.request);
        done(null, Buffer.alloc(0));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    receiver = new OtlpReceiver(port, () => server.forceShutdown());
    return receiver;
  }

  /** The same receiver hosted by Node.js (otlp-receiver-node.mjs): Node's HTTP/2 server, as a collector's is not Bun's. */
  static async startOnNode(): Promise<OtlpReceiver> {
    const proc = Bun.spawn(["node", join(import.meta.dir, "otlp-receiver-node.mjs")], { stdout: "pipe", stderr: "inherit", stdin: "ignore" });
    const lines = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let receiver: OtlpReceiver | null = null;
    let pending = "";
    const port = await new Promise<number>((resolve, reject) => {
      void (async () => {
        for (;;) {
          const { value, done } = await lines.read();
          if (done) return reject(new Error("the Node.js OTLP receiver exited"));
          pending += value;
          let nl: number;
          while ((nl = pending.indexOf("\n")) >= 0) {
            const msg = JSON.parse(pending.slice(0, nl)) as { port?: number; export?: string };
            pending = pending.slice(nl + 1);
            if (msg.port !== undefined) resolve(msg.port);
            if (msg.export !== undefined) receiver?.record(Buffer.from(msg.export, "base64"));
          }
        }
      })();
    });
    receiver = new OtlpReceiver(port, () => proc.kill("SIGTERM"));
    return receiver;
  }

  private record(body: Uint8Array): void {
    this.requests++;
    this.spans.push(...decodeExport(body));
  }

  stop(): void {
    this.close();
  }
}
