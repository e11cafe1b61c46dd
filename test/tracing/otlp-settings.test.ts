// Span export settings from the environment: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, the
// reference's bare host:port form, and a bad value named with what was expected.
import { describe, expect, test } from "bun:test";
import { OtlpSettingsError, otlpSettingsFromEnv } from "../../src/tracing/otlp-settings.ts";

describe("otlpSettingsFromEnv", () => {
  test("no endpoint (unset or blank): no export", () => {
    expect(otlpSettingsFromEnv({}, "1.0.0")).toBeNull();
    expect(otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "  " }, "1.0.0")).toBeNull();
  });

  test("host:port is insecure gRPC, as the reference; a URL is kept; the pod's names become k8s resource attributes", () => {
    const s = otlpSettingsFromEnv(
      { OTEL_EXPORTER_OTLP_ENDPOINT: "otel-collector:4317", POD_NAME: "gw-0", POD_NAMESPACE: "prod", NODE_NAME: "n1" },
      "1.2.3",
    )!;
    expect(s.url).toBe("http://otel-collector:4317");
    expect(s.resource).toEqual({
      "service.name": "game-gateway",
      "service.version": "1.2.3",
      "k8s.pod.name": "gw-0",
      "k8s.namespace.name": "prod",
      "k8s.node.name": "n1",
    });
    expect(otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example:4317" }, "1")!.url).toBe("https://collector.example:4317");
  });

  test("the SDK's batch defaults, and the OTEL_BSP_* variables", () => {
    expect(otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317" }, "1")).toMatchObject({
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMs: 5000,
      exportTimeoutMs: 30000,
      warnings: [],
    });
    const s = otlpSettingsFromEnv(
      { OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317", OTEL_BSP_MAX_QUEUE_SIZE: "100", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "500", OTEL_BSP_EXPORT_TIMEOUT: "2000" },
      "1",
    )!;
    expect(s.maxQueueSize).toBe(100);
    expect(s.maxExportBatchSize).toBe(100); // never larger than the queue
    expect(s.exportTimeoutMs).toBe(2000);
  });

  test("a bad value is named with what was expected", () => {
    expect(() => otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317", OTEL_BSP_MAX_QUEUE_SIZE: "lots" }, "1")).toThrow(
      new OtlpSettingsError('OTEL_BSP_MAX_QUEUE_SIZE: expected an integer >= 1, got "lots"'),
    );
    expect(() => otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://bad host:4317" }, "1")).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT: expected host:port or a URL/);
  });

  // Both are the SDK's timer delays: a longer one would fire after 1 ms (TimeoutOverflowWarning).
  test.each(["OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT"])("%s is at most what a timer holds", (name) => {
    expect(otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317", [name]: "2147483647" }, "1")).toBeDefined();
    expect(() => otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "c:4317", [name]: "2147483648" }, "1")).toThrow(
      new OtlpSettingsError(`${name}: expected an integer 1..2147483647 (milliseconds: the most a timer holds), got "2147483648"`),
    );
  });

  test("a protocol other than grpc is warned about, not followed", () => {
    const s = otlpSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }, "1")!;
    expect(s.warnings).toEqual([expect.stringContaining("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf is not supported")]);
  });
});
