// `game-gateway demo-backend --trace-header`: the standalone demo backend behind a gateway that
// propagates trace context (tracing.enable_trace_propagation), driven by `game-gateway loadtest`.
// Real processes and sockets: the demo backend is the CLI (src/cli/main.ts) in a child process,
// the gateway runs in-process, the load test in-process.
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parseArgs, UsageError } from "../../src/cli/args.ts";
import { runLoadtest } from "../../src/loadtest/main.ts";
import { ChildOutput, rule, TestScope } from "../support/harness.ts";

setDefaultTimeout(30_000);

const main = join(import.meta.dir, "../../src/cli/main.ts");
const scope = new TestScope();
afterEach(scope.release);
const children: Subprocess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

/** The CLI's demo backend on an ephemeral port; resolves with the port its banner names. */
async function demoBackend(flags: string[]): Promise<number> {
  const proc = Bun.spawn([process.execPath, main, "demo-backend", "--port", "0", ...flags], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  children.push(proc);
  const [, port] = await new ChildOutput(proc).line(/demo backend listening on 127\.0\.0\.1:(\d+)/);
  return Number(port);
}

interface Json {
  connections: { ok: number };
  messages: { sent: number; received: number };
  errors: Record<string, number> & { total: number };
}

/** A short loadtest through a gateway with trace propagation on, routed to `backendPort`. */
async function loadThroughTracingGateway(backendPort: number): Promise<{ code: number; j: Json }> {
  const gw = scope.gateway({ tracing: { enable_trace_propagation: true }, routing: { rules: [rule(10, [`127.0.0.1:${backendPort}`])] } });
  let stdout = "";
  const args = ["-host", "127.0.0.1", "-port", String(gw.gateway.port), "-connections", "4", "-duration", "400ms", "-rate", "0", "--in-flight", "2", "-message-size", "16", "--json"];
  const code = await runLoadtest(args, { stdout: (s) => void (stdout += s), stderr: () => {} });
  return { code, j: JSON.parse(stdout) as Json };
}

describe("demo-backend --trace-header", () => {
  test("behind a gateway with tracing.enable_trace_propagation: every reply is the body sent, 0 errors", async () => {
    const { code, j } = await loadThroughTracingGateway(await demoBackend(["--trace-header"]));
    expect(j.errors.total).toBe(0);
    expect(j.messages.sent).toBeGreaterThan(0);
    expect(j.messages.received).toBe(j.messages.sent);
    expect(code).toBe(0);
  });

  test("without the flag the 24 trace bytes come back inside the body: the load test sees every reply differ", async () => {
    const { code, j } = await loadThroughTracingGateway(await demoBackend([]));
    expect(code).toBe(1);
    expect(j.errors.total).toBeGreaterThan(0);
  });

  test("the flag's spellings, and a value that is not a switch named with what is expected", () => {
    for (const argv of [["demo-backend", "--trace-header"], ["demo-backend", "-trace-header"], ["demo-backend", "--trace-header=true"]]) {
      expect(parseArgs(argv)).toMatchObject({ kind: "demo-backend", traceHeader: true });
    }
    expect(parseArgs(["demo-backend"])).toMatchObject({ kind: "demo-backend", traceHeader: false });
    expect(parseArgs(["demo-backend", "--trace-header=false"])).toMatchObject({ traceHeader: false });
    expect(() => parseArgs(["demo-backend", "--trace-header=yes"])).toThrow(new UsageError('--trace-header: got "yes", expected no value, true or false'));
    expect(parseArgs(["demo-backend", "--help"])).toEqual({ kind: "help" });
  });
});
