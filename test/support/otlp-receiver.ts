// A local OTLP/gRPC trace receiver for tests: a real gRPC server (@grpc/grpc-js) serving
// opentelemetry.proto.collector.trace.v1.TraceService/Export, decoding each request with
// protobufjs from the OTLP message definitions (field numbers as in opentelemetry-proto; the
// fields a test reads, the rest skipped as unknown). Not our code on either side of the wire.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package opentelemetry.proto;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    bytes bytes_value = 7;
  }
}
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  Status status = 15;
}
`;

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

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<OtlpReceiver> {
    const server = new grpc.Server();
    let receiver: OtlpReceiver | null = null;
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
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
    receiver = new OtlpReceiver(server, port);
    return receiver;
  }

  private record(body: Buffer): void {
    this.requests++;
    const req = Request.toObject(Request.decode(body), { longs: Number, defaults: false }) as {
      resourceSpans?: { resource?: { attributes?: DecodedKeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
    };
    for (const rs of req.resourceSpans ?? []) {
      const resource = attributes(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
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
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
