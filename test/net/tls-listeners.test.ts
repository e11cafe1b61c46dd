// TLS on the client listeners (server.tls.*): certificates made by openssl, clients from Node
// (a child process, not Bun's TLS) and Bun; rotation on reload without dropping live sessions;
// client certificates required when server.tls.client_ca_file is set; bad files named.
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { serverIdFor } from "../../src/client/game-client.ts";
import { Gateway } from "../../src/gateway.ts";
import { TlsFileError } from "../../src/net/tls-material.ts";
import { makeCertificates } from "../support/tls-certificates.ts";
import { ChildOutput, eventually, rule, testConfig, TestScope, type Overrides } from "../support/harness.ts";

const T = 10;
const SERVER_ID = serverIdFor(T);
const scope = new TestScope();
afterEach(scope.release);

type NodeEvent = { event: string; cn?: string; protocol?: string; body?: string; code?: string; secure?: boolean };

/** A game client in a child `node` process (test/support/node-tls-client.mjs). */
class NodeTlsClient {
  private readonly out: ChildOutput;
  private seen = 0;
  constructor(
    port: number,
    private readonly proc = Bun.spawn(["node", join(import.meta.dir, "../support/node-tls-client.mjs"), String(port)], { stdin: "pipe", stdout: "pipe", stderr: "pipe" }),
  ) {
    this.out = new ChildOutput(this.proc);
    scope.defer(() => this.proc.kill());
  }
  static withCertificate(port: number, dir: string): NodeTlsClient {
    const proc = Bun.spawn(["node", join(import.meta.dir, "../support/node-tls-client.mjs"), String(port), join(dir, "client.crt"), join(dir, "client.key")], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    return new NodeTlsClient(port, proc);
  }
  /** The next event line. */
  async next(): Promise<NodeEvent> {
    const lines = await eventually(() => {
      const l = this.out.stdout.split("\n").slice(0, -1);
      return l.length > this.seen ? l : null;
      // A child process starting on a loaded 2-core machine: a generous bound.
    }, "an event from the node client", 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; its stdout: ${this.out.stdout}; stderr: ${this.out.stderr}`);
    });
    return JSON.parse(lines[this.seen++]!) as NodeEvent;
  }
  async roundTrip(body: string): Promise<NodeEvent> {
    this.proc.stdin.write(`${SERVER_ID} ${body}\n`);
    await this.proc.stdin.flush();
    return this.next();
  }
}

function tlsGateway(dir: string, backendPort: number, extra: Overrides = {}) {
  const overrides = tlsOverrides(dir, backendPort, extra);
  return { gw: scope.gateway(overrides), overrides };
}

function tlsOverrides(dir: string, backendPort: number, extra: Overrides = {}): Overrides {
  return {
    server: { ws_listen_addr: "127.0.0.1:0", tls: { cert_file: join(dir, "server.crt"), key_file: join(dir, "server.key"), ...extra } },
    routing: { rules: [rule(T, [`127.0.0.1:${backendPort}`])] },
  };
}

/** One frame to T over Bun's TLS client; resolves with the CN the server presented and the reply body. */
async function bunRoundTrip(port: number, body: string): Promise<{ cn: string; reply: string }> {
  const { promise, resolve, reject } = Promise.withResolvers<{ cn: string; reply: string }>();
  const frame = new Uint8Array(8 + body.length);
  const view = new DataView(frame.buffer);
  view.setUint16(0, body.length, true);
  view.setUint16(2, 1, true);
  view.setUint32(4, SERVER_ID, true);
  frame.set(new TextEncoder().encode(body), 8);
  let got = new Uint8Array(0);
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    tls: { rejectUnauthorized: false },
    socket: {
      handshake: (s) => void s.write(frame),
      data: (s, chunk) => {
        got = new Uint8Array([...got, ...chunk]);
        const len = got.length >= 8 ? new DataView(got.buffer).getUint16(0, true) : -1;
        if (len >= 0 && got.length >= 8 + len) {
          const cert = s.getPeerCertificate() as { subject: { CN: string } };
          resolve({ cn: cert.subject.CN, reply: new TextDecoder().decode(got.subarray(8, 8 + len)) });
          s.end();
        }
      },
      close: () => reject(new Error("closed before a reply")),
      error: (_s, e) => reject(e),
    },
  });
  scope.defer(() => void socket.end());
  return promise;
}

/** One binary WebSocket message over wss (Bun's WebSocket client); resolves with the reply body. */
async function wssRoundTrip(port: number, body: string, path = "/ws"): Promise<string> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, { tls: { rejectUnauthorized: false } } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  scope.defer(() => ws.close());
  const { promise, resolve, reject } = Promise.withResolvers<string>();
  ws.onopen = () => {
    const frame = new Uint8Array(8 + body.length);
    const view = new DataView(frame.buffer);
    view.setUint16(0, body.length, true);
    view.setUint32(4, SERVER_ID, true);
    frame.set(new TextEncoder().encode(body), 8);
    ws.send(frame);
  };
  ws.onmessage = (m) => resolve(new TextDecoder().decode(new Uint8Array(m.data as ArrayBuffer).subarray(8)));
  ws.onerror = () => reject(new Error("wss error"));
  return promise;
}

describe("TLS on the client listeners", () => {
  test("the TCP port serves TLS: Node's and Bun's clients see the certificate and round-trip through a backend, sniffed wss too", async () => {
    const dir = makeCertificates();
    const be = await scope.backend();
    const { gw } = tlsGateway(dir, be.port);
    const node = new NodeTlsClient(gw.gateway.port);
    expect(await node.next()).toMatchObject({ event: "secure", cn: "gw-a", protocol: "TLSv1.3" });
    expect(await node.roundTrip("over node tls")).toEqual({ event: "reply", body: "over node tls" });
    expect(await bunRoundTrip(gw.gateway.port, "over bun tls")).toEqual({ cn: "gw-a", reply: "over bun tls" });
    // A WebSocket handshake on the TCP port is sniffed inside TLS: wss there too.
    expect(await wssRoundTrip(gw.gateway.port, "sniffed wss", "/")).toBe("sniffed wss");
  });

  test("the WebSocket listener serves wss", async () => {
    const dir = makeCertificates();
    const be = await scope.backend();
    const { gw } = tlsGateway(dir, be.port);
    const node = new NodeTlsClient(gw.gateway.wsPort);
    expect(await node.next()).toMatchObject({ event: "secure", cn: "gw-a" });
    expect(await wssRoundTrip(gw.gateway.wsPort, "over wss")).toBe("over wss");
  });

  test("a reload with a new certificate: new connections get it, open ones keep round-tripping", async () => {
    const dir = makeCertificates();
    const be = await scope.backend();
    const { gw, overrides } = tlsGateway(dir, be.port);
    const old = new NodeTlsClient(gw.gateway.port);
    expect(await old.next()).toMatchObject({ event: "secure", cn: "gw-a" });
    expect(await old.roundTrip("before")).toEqual({ event: "reply", body: "before" });
    const oldWs = new WebSocket(`wss://127.0.0.1:${gw.gateway.wsPort}/ws`, { tls: { rejectUnauthorized: false } } as unknown as string[]);
    scope.defer(() => oldWs.close());
    await new Promise((r) => (oldWs.onopen = r));

    copyFileSync(join(dir, "gw-b.crt"), join(dir, "server.crt"));
    copyFileSync(join(dir, "gw-b.key"), join(dir, "server.key"));
    const file = join(dir, "gw.yaml");
    writeFileSync(file, YAML.stringify(overrides));
    expect(await gw.gateway.reloadFromFile(file)).toMatchObject({ ok: true });

    const fresh = new NodeTlsClient(gw.gateway.port);
    expect(await fresh.next()).toMatchObject({ event: "secure", cn: "gw-b" });
    expect(await fresh.roundTrip("new")).toEqual({ event: "reply", body: "new" });
    expect(await old.roundTrip("after")).toEqual({ event: "reply", body: "after" });
    const freshWs = new NodeTlsClient(gw.gateway.wsPort);
    expect(await freshWs.next()).toMatchObject({ event: "secure", cn: "gw-b" });
    // The WebSocket opened before the rotation still round-trips.
    const reply = new Promise<string>((r) => (oldWs.onmessage = (m) => r(new TextDecoder().decode(new Uint8Array(m.data as ArrayBuffer).subarray(8)))));
    oldWs.binaryType = "arraybuffer";
    const frame = new Uint8Array(8 + 2);
    new DataView(frame.buffer).setUint16(0, 2, true);
    new DataView(frame.buffer).setUint32(4, SERVER_ID, true);
    frame.set([0x6f, 0x6b], 8);
    oldWs.send(frame);
    expect(await reply).toBe("ok");
  });

  test("with client_ca_file, a client without a certificate is refused; one the CA signed is served", async () => {
    const dir = makeCertificates();
    const be = await scope.backend();
    const { gw } = tlsGateway(dir, be.port, { client_ca_file: join(dir, "ca.crt") });
    const anonymous = new NodeTlsClient(gw.gateway.port);
    // TLS 1.3: the client's handshake completes before the server has checked its (absent) certificate; the alert closes it.
    const events: NodeEvent[] = [];
    for (;;) {
      const e = await anonymous.next();
      events.push(e);
      // The alert is the answer; Node's close event after it can lag on a loaded machine.
      if (e.event === "closed" || e.event === "error") break;
      if (e.event === "secure") anonymous["proc"].stdin.write(`${SERVER_ID} hello\n`);
    }
    expect(events.filter((e) => e.event === "reply")).toEqual([]);
    expect(events.find((e) => e.event === "error")?.code).toBe("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");

    const player = NodeTlsClient.withCertificate(gw.gateway.port, dir);
    expect(await player.next()).toMatchObject({ event: "secure", cn: "gw-a" });
    expect(await player.roundTrip("signed")).toEqual({ event: "reply", body: "signed" });
  });

  test("bad files refuse the start naming the key, the path and the problem; on reload the old certificate stays", async () => {
    const dir = makeCertificates();
    const missing = join(dir, "nope.crt");
    const start = (tls: Overrides) => () => Gateway.start(testConfig({ server: { tls } }));
    expect(start({ cert_file: missing, key_file: join(dir, "server.key") })).toThrow(new TlsFileError("server.tls.cert_file", missing, "no such file"));
    expect(start({ cert_file: join(dir, "server.key"), key_file: join(dir, "server.key") })).toThrow(
      `server.tls.cert_file "${join(dir, "server.key")}": not a PEM certificate (expected -----BEGIN CERTIFICATE-----)`,
    );
    expect(start({ cert_file: join(dir, "server.crt"), key_file: join(dir, "gw-b.key") })).toThrow(
      `server.tls.key_file "${join(dir, "gw-b.key")}": not the private key of the certificate in server.tls.cert_file (${join(dir, "server.crt")})`,
    );
    expect(start({ cert_file: join(dir, "server.crt") })).toThrow(`server.tls.key_file "": required when server.tls.cert_file is set`);

    const be = await scope.backend();
    const { gw, overrides } = tlsGateway(dir, be.port);
    writeFileSync(join(dir, "server.crt"), "garbage\n");
    const file = join(dir, "gw.yaml");
    writeFileSync(file, YAML.stringify(overrides));
    const record = await gw.gateway.reloadFromFile(file);
    expect(record).toMatchObject({ ok: false, error: `server.tls.cert_file "${join(dir, "server.crt")}": not a PEM certificate (expected -----BEGIN CERTIFICATE-----)` });
    expect(gw.gateway.configVersion).toBe(1);
    const node = new NodeTlsClient(gw.gateway.port);
    expect(await node.next()).toMatchObject({ event: "secure", cn: "gw-a" });
  });
});
