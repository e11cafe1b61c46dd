// loadtest --tls against a real gateway whose client listeners serve TLS (server.tls.*), with
// certificates made by openssl: TCP clients over TLS and wss:// clients, the certificate checked
// (a private CA via --tls-ca, or not at all via --tls-insecure) or refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { runLoadtest } from "../../src/loadtest/main.ts";
import { parseLoadtestArgs } from "../../src/loadtest/options.ts";
import { rule, startGateway, type TestGateway } from "../support/harness.ts";
import { makeCertificates } from "../support/tls-certificates.ts";

interface Json {
  connections: { attempted: number; ok: number; failed: number; closedByPeer: number };
  messages: { sent: number; received: number; timedOut: number; lost: number };
  errors: Record<string, number> & { total: number };
}

async function runJson(args: string[]): Promise<{ code: number; j: Json; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runLoadtest([...args, "--json"], { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  try {
    return { code, j: JSON.parse(stdout) as Json, stderr };
  } catch {
    throw new Error(`--json output did not parse (exit ${code}):\n${stdout}\n--- stderr:\n${stderr}`);
  }
}

function openssl(dir: string, ...args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

describe("loadtest --tls: clients round-tripping through a gateway's TLS listeners", () => {
  let dir: string;
  let backend: DemoBackend;
  let gw: TestGateway;
  const load = ["-host", "127.0.0.1", "-connections", "10", "-duration", "500ms", "-rate", "0", "--in-flight", "4", "-message-size", "64"];

  beforeAll(async () => {
    dir = makeCertificates();
    // A server certificate for 127.0.0.1 signed by the test CA, so --tls-ca can verify it fully.
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ip.key", "-out", "ip.csr", "-subj", "/CN=127.0.0.1");
    openssl(dir, "x509", "-req", "-in", "ip.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "ip.crt", "-days", "1", "-extfile", "san.ext");
    backend = await DemoBackend.start({ port: 0 });
    gw = startGateway({
      server: { ws_listen_addr: "127.0.0.1:0", tls: { cert_file: join(dir, "ip.crt"), key_file: join(dir, "ip.key") } },
      routing: { rules: [rule(10, [`127.0.0.1:${backend.port}`])] },
    });
  });

  afterAll(async () => {
    await gw.stop();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function expectClean(code: number, j: Json, stderr: string): void {
    if (code !== 0) throw new Error(`exit ${code}: ${JSON.stringify(j)}\n${stderr}`);
    expect(j.connections.ok).toBe(10);
    expect(j.errors.total).toBe(0);
    expect(j.messages.sent).toBeGreaterThan(0);
    expect(j.messages.received).toBe(j.messages.sent);
  }

  test("TCP over TLS, --tls-insecure: every frame echoed intact", async () => {
    const { code, j, stderr } = await runJson([...load, "-port", String(gw.gateway.port), "--tls", "--tls-insecure"]);
    expectClean(code, j, stderr);
  });

  test("TCP over TLS, --tls-ca with the CA that signed the certificate: verified, every frame echoed", async () => {
    const { code, j, stderr } = await runJson([...load, "-port", String(gw.gateway.port), "--tls", "--tls-ca", join(dir, "ca.crt")]);
    expectClean(code, j, stderr);
  });

  test("two worker processes carry --tls to their connections", async () => {
    const { code, j, stderr } = await runJson([...load, "-port", String(gw.gateway.port), "--tls", "--tls-insecure", "--processes", "2"]);
    expectClean(code, j, stderr);
  });

  test("wss:// to the dedicated WebSocket listener and to the sniffed TCP port", async () => {
    for (const [port, path] of [[gw.gateway.wsPort, "/ws"], [gw.gateway.port, "/game"]] as const) {
      const { code, j, stderr } = await runJson([...load, "-port", String(port), "--ws", "--ws-path", path, "--tls", "--tls-insecure"]);
      expectClean(code, j, stderr);
    }
  });

  test("-verbose says why a certificate was not accepted", async () => {
    let stderr = "";
    await runLoadtest([...load, "-port", String(gw.gateway.port), "--tls", "-verbose"], { stdout: () => {}, stderr: (s) => void (stderr += s) });
    expect(stderr).toContain("TLS: server certificate not accepted");
  });

  test("a certificate the client cannot verify (a CA it does not trust): every connection fails, exit 1", async () => {
    const { code, j } = await runJson([...load, "-port", String(gw.gateway.port), "--tls", "--tls-ca", join(dir, "gw-b.crt")]);
    expect(code).toBe(1);
    expect(j.errors.connect_failed).toBe(10);
    expect(j.connections.ok).toBe(0);
    expect(j.messages.received).toBe(0);
  });

  test("--ws --tls with a CA it does not trust: -verbose names the certificate error, as for TCP", async () => {
    for (const [port, path] of [[gw.gateway.wsPort, "/ws"], [gw.gateway.port, "/game"]] as const) {
      let stderr = "";
      const code = await runLoadtest([...load, "-port", String(port), "--ws", "--ws-path", path, "--tls", "--tls-ca", join(dir, "gw-b.crt"), "-verbose"], {
        stdout: () => {},
        stderr: (s) => void (stderr += s),
      });
      expect(code).toBe(1);
      expect(stderr).toContain("failed to open: TLS: server certificate not accepted: ");
    }
  });

  test("a --tls-ca file that is no certificate (a private key, junk, a truncated certificate): exit 2 before any connection, naming the flag and why", async () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    const truncated = join(dir, "truncated.pem");
    const cert = readFileSync(join(dir, "ca.crt"), "utf8");
    writeFileSync(truncated, cert.replace(/\n[A-Za-z0-9+/=]{64}\n/, "\nAAAA\n"));
    for (const [file, why] of [
      ["ip.key", "not a PEM certificate (it holds a PRIVATE KEY, no CERTIFICATE)"],
      ["junk.pem", "not a PEM certificate (no PEM block in it)"],
      ["truncated.pem", "not a PEM certificate (certificate 1 of 1 does not parse"],
    ] as const) {
      let stderr = "";
      const code = await runLoadtest([...load, "-port", String(gw.gateway.port), "--tls", "--tls-ca", join(dir, file)], { stdout: () => {}, stderr: (s) => void (stderr += s) });
      expect(code).toBe(2);
      expect(stderr).toContain(`--tls-ca ${join(dir, file)}: ${why}`);
    }
  });

  test("plain clients on the TLS listener get no round trip: the listener really is TLS", async () => {
    const { code, j } = await runJson([...load, "-port", String(gw.gateway.port), "--reply-timeout", "1s"]);
    expect(code).toBe(1);
    expect(j.messages.received).toBe(0);
  });
});

describe("loadtest --tls flags", () => {
  test("--tls-insecure and --tls-ca need --tls, and contradict each other", () => {
    expect(() => parseLoadtestArgs(["--tls-insecure"])).toThrow("--tls-insecure applies to --tls only: add --tls");
    expect(() => parseLoadtestArgs(["--tls-ca", "ca.pem"])).toThrow("--tls-ca applies to --tls only: add --tls");
    expect(() => parseLoadtestArgs(["--tls", "--tls-ca", "ca.pem", "--tls-insecure"])).toThrow("contradict");
    const p = parseLoadtestArgs(["-tls", "-tls-insecure"]);
    expect(p.kind === "run" && p.options.tls && p.options.tlsInsecure).toBe(true);
  });

  test("a --tls-ca file that cannot be read: exit 2, naming the flag and the file", async () => {
    let stderr = "";
    const code = await runLoadtest(["--tls", "--tls-ca", "/nonexistent/ca.pem", "-duration", "100ms"], { stdout: () => {}, stderr: (s) => void (stderr += s) });
    expect(code).toBe(2);
    expect(stderr).toContain("--tls-ca /nonexistent/ca.pem: cannot read it");
  });
});
