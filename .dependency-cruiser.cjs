// The layering of src/ (docs/architecture.md, "Layers"), checked by `npm run deps` in CI.
// Type-only imports count: a layer that names another's types depends on it.
// There is no list of known violations: every violation fails the check.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "Modules form no import cycle, type-only imports included.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "bytes-is-the-bottom",
      severity: "error",
      comment: "src/bytes holds helpers every layer may use; it imports nothing else from src.",
      from: { path: "^src/bytes/" },
      to: { path: "^src/", pathNot: "^src/bytes/" },
    },
    {
      name: "telemetry-has-no-dependencies",
      severity: "error",
      comment: "The data path's raw counters import nothing: no other layer, no package (prom-client reads them at scrape time).",
      from: { path: "^src/telemetry/" },
      to: { pathNot: "^src/telemetry/" },
    },
    {
      name: "time-has-no-dependencies",
      severity: "error",
      comment: "The Clock every layer takes (deadlines, timers) imports nothing.",
      from: { path: "^src/time/" },
      to: { pathNot: "^src/time/" },
    },
    {
      name: "protocol-imports-only-bytes",
      severity: "error",
      comment: "The wire format depends on nothing but the byte helpers.",
      from: { path: "^src/protocol/" },
      to: { path: "^src/", pathNot: "^src/(protocol|bytes)/" },
    },
    {
      name: "net-below-session-backend-admin",
      severity: "error",
      comment: "Transport knows nothing of sessions, backends or the admin surface.",
      from: { path: "^src/net/" },
      to: { path: "^src/(session|backend|admin)/" },
    },
    {
      name: "session-above-backend",
      severity: "error",
      comment:
        "Backends implement the session layer's BackendLink and call its relay through interfaces the session layer defines; the session layer names no backend module.",
      from: { path: "^src/session/" },
      to: { path: "^src/backend/" },
    },
    {
      name: "data-path-loads-no-admin",
      severity: "error",
      comment:
        "The data path counts into src/telemetry; it may name admin types (erased at build) but never loads src/admin, so prom-client stays off it.",
      from: { path: "^src/(protocol|net|session|backend|routing)/" },
      to: { path: "^src/admin/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "only-admin-imports-prom-client",
      severity: "error",
      comment: "prom-client is the admin surface's business.",
      from: { path: "^src/", pathNot: "^src/admin/" },
      to: { path: "node_modules/prom-client" },
    },
    {
      name: "only-otlp-tracer-imports-the-otel-sdk",
      severity: "error",
      comment: "The OpenTelemetry SDK and gRPC live behind ConnectionTracer, in src/tracing/otlp-tracer.ts alone.",
      from: { path: "^src/", pathNot: "^src/tracing/otlp-tracer\\.ts$" },
      to: { path: "node_modules/@opentelemetry/" },
    },
    {
      name: "only-otlp-tracer-and-grpc-transport-import-grpc",
      severity: "error",
      comment: "@grpc/grpc-js and @grpc/proto-loader: span export, and the gRPC backend transport in src/backend/grpc.",
      from: { path: "^src/", pathNot: "^src/(tracing/otlp-tracer|backend/grpc/(grpc-transport|grpc-endpoint-pool))\\.ts$" },
      to: { path: "node_modules/@grpc/" },
    },
    {
      name: "grpc-transport-loaded-only-on-demand",
      severity: "error",
      comment:
        "The gRPC backend transport is loaded by a dynamic import when some route names a gRPC backend (src/backend/grpc/load-grpc.ts), so a TCP-only gateway never loads @grpc/grpc-js; others may name its types.",
      from: { path: "^src/", pathNot: "^src/backend/grpc/grpc-transport\\.ts$" },
      to: { path: "^src/backend/grpc/grpc-(transport|endpoint-pool)\\.ts$", dependencyTypesNot: ["dynamic-import", "type-only", "type-import"] },
    },
    {
      name: "otlp-tracer-loaded-only-on-demand",
      severity: "error",
      comment:
        "The SDK is loaded by a dynamic import when OTEL_EXPORTER_OTLP_ENDPOINT is set (src/tracing/load-tracer.ts, which names the module's type with `typeof import(...)`: a type-import), so a gateway without it never loads it.",
      from: { path: "^src/" },
      to: { path: "^src/tracing/otlp-tracer\\.ts$", dependencyTypesNot: ["dynamic-import", "type-only", "type-import"] },
    },
    {
      name: "data-path-knows-no-tracing-module",
      severity: "error",
      comment: "The data path reports spans through ConnectionTracer (src/session); only the composition (cli, gateway.ts) names src/tracing.",
      from: { path: "^src/(protocol|net|session|backend|routing|admin|config|telemetry|bytes)/" },
      to: { path: "^src/tracing/" },
    },
    {
      name: "data-path-knows-no-discovery",
      severity: "error",
      comment: "Redis and Consul are read beside the data path; gateway.ts swaps in the Router they produce, so no message waits on them.",
      from: { path: "^src/(protocol|net|session|backend|routing|telemetry|bytes)/" },
      to: { path: "^src/discovery/" },
    },
    {
      name: "only-the-entry-point-runs-the-supervisor",
      severity: "error",
      comment:
        "The group of worker processes (src/supervisor) is composed by the entry point alone; no part of a gateway knows whether it is one worker of a group (it is told its WorkerSlot).",
      from: { path: "^src/", pathNot: "^src/(cli|supervisor)/" },
      to: { path: "^src/supervisor/" },
    },
    {
      name: "supervisor-knows-no-data-path",
      severity: "error",
      comment: "The supervisor starts processes and speaks to them; it carries no client or backend traffic, so it loads none of the data path's modules (types aside).",
      from: { path: "^src/supervisor/" },
      to: { path: "^src/(net/(?!binder)|session/(?!session-id)|backend|routing|protocol)", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "no-unresolvable",
      severity: "error",
      comment: "An import the checker cannot resolve is an import it cannot check.",
      from: {},
      // "bun" is the runtime's own module, not a file on disk.
      to: { couldNotResolve: true, pathNot: "^bun$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".json"] },
  },
};
