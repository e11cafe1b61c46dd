// A client listener behind an admission gate that answers later (a worker asking its
// supervisor): the gateway holds the connection's early bytes until the answer, then routes the
// session as usual, or refuses it exactly as a local refusal (metric, access-log record). The
// gate is the worker's real RemoteAdmission; the test carries its messages to a real
// AdmissionBroker when it chooses, so "later" is as late as the test needs.

import { afterEach, describe, expect, test } from "bun:test";
import { serverIdFor } from "../../src/client/game-client.ts";
import { OpCode } from "../../src/protocol/server-frame.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";
import { AdmissionBroker } from "../../src/net/admission-broker.ts";
import type { AdmissionMessage } from "../../src/net/admission-gate.ts";
import { RemoteAdmission } from "../../src/net/remote-admission.ts";
import { eventually, rule, str, testConfig, text, TestScope } from "../support/harness.ts";
import { proxyV1 } from "../support/proxy-header.ts";
import { WsPeer } from "../support/ws-peer.ts";

const T = 10;
const scope = new TestScope();
afterEach(scope.release);

/** A worker's gate whose questions wait in `outbox` until deliver() takes them to the broker. */
function heldGate(limits: { maxPerIp: number }, timeoutMs = 30_000) {
  const broker = new AdmissionBroker({ maxPerIp: limits.maxPerIp, ratePerSec: 1_000_000, maxTrackedIps: 1000 });
  const outbox: AdmissionMessage[] = [];
  const gate = new RemoteAdmission((m) => outbox.push(m), { worker: 0, timeoutMs });
  const deliver = (): void => {
    // Replies may make the gate send more (a release): keep going until nothing is left.
    while (outbox.length > 0) {
      const reply = broker.receive(outbox.shift(), 0);
      if (reply !== null) gate.receive(reply);
    }
  };
  return { broker, gate, outbox, deliver };
}

const admits = (outbox: readonly AdmissionMessage[]): number => outbox.filter((m) => m.t === "admit").length;
/** Lets bytes already written reach the gateway's socket (not a pass/fail timing: the outcome is the same either way). */
const settle = (): Promise<void> => Bun.sleep(50);

describe("TCP listener with a gate that answers later", () => {
  test("bytes sent before the answer are held, then the session routes as usual", async () => {
    const backend = await scope.backend();
    const { gate, outbox, deliver, broker } = heldGate({ maxPerIp: 3 });
    const gw = scope.gateway({ routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } }, { admissionGate: gate });
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("sent before admission"));
    c.send(1, serverIdFor(T), text("and a second frame"));
    await eventually(() => admits(outbox) === 1, "the gate to ask");
    await settle();
    // Nothing reached a backend while the answer was pending.
    expect(backend.events.filter((e) => e.opcode === OpCode.Connect)).toHaveLength(0);
    deliver();
    expect(str((await c.next()).body)).toBe("sent before admission");
    expect(str((await c.next()).body)).toBe("and a second frame");
    expect(broker.heldBy(0, "127.0.0.1")).toBe(1);
    c.close();
    await eventually(() => {
      deliver();
      return broker.heldBy(0) === 0;
    }, "the close to release the broker's count");
  });

  test("refused after the wait: the same refusal, metric and access-log record as a local one", async () => {
    const backend = await scope.backend();
    const { gate, deliver, outbox } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway({ routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } }, { admissionGate: gate });
    const first = await gw.connect();
    await eventually(() => admits(outbox) === 1, "the first question");
    deliver();
    const second = await gw.connect();
    second.send(1, serverIdFor(T), text("never routed"));
    await eventually(() => admits(outbox) === 1, "the second question");
    deliver();
    await second.closed;
    first.send(1, serverIdFor(T), text("first still served"));
    expect(str((await first.next()).body)).toBe("first still served");
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);
    expect(await gw.gateway.metrics.value("connection_rejected_total", { reason: "ip_rate_limit" })).toBe(1);
    first.close();
    await gw.gateway.stop();
    expect(gw.accessLog.lines.filter((l) => l.status === "rejected")).toMatchObject([
      { "client.address": "127.0.0.1", status: "rejected", refusal: "per_ip_limit", "session.id": "" },
    ]);
    expect(backend.events.filter((e) => e.opcode === OpCode.Connect)).toHaveLength(1);
  });

  test("a client that leaves before the answer holds nothing, even when the answer admits it", async () => {
    const { gate, deliver, outbox, broker } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway({}, { admissionGate: gate });
    const c = await gw.connect();
    await eventually(() => admits(outbox) === 1, "the gate to ask");
    c.close();
    await eventually(() => gw.gateway.clientConnections === 0, "the gateway to see the close");
    deliver(); // admits: the gate gives it straight back
    expect(broker.heldBy(0)).toBe(0);
    expect(gate.counts.abandonedAnswers).toBe(1);
    expect(gw.accessLog.lines.filter((l) => l.status === "rejected")).toHaveLength(0);
  });

  test("no answer in time: refused as admission_timeout, and a late admitting answer is released", async () => {
    const { gate, deliver, broker } = heldGate({ maxPerIp: 5 }, 200);
    const gw = scope.gateway({}, { admissionGate: gate });
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("too late"));
    await c.closed;
    expect(gate.counts.timeouts).toBe(1);
    expect(await gw.gateway.metrics.value("connection_rejected_total", { reason: "admission_timeout" })).toBe(1);
    expect(gw.log.find("connection refused")).toMatchObject([{ reason: "admission_timeout" }]);
    deliver();
    expect(broker.heldBy(0)).toBe(0);
    await gw.gateway.stop();
    expect(gw.accessLog.lines.filter((l) => l.status === "rejected")).toMatchObject([{ refusal: "admission_timeout", "client.address": "127.0.0.1" }]);
  });

  test("a reload's per-IP limits reach the broker, which holds the machine's limits", async () => {
    const { gate, deliver, outbox, broker } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway({}, { admissionGate: gate });
    const reload = gw.gateway.reload(testConfig({ security: { max_connections_per_ip: 2, connection_rate_limit: 100_000 } }));
    expect(reload).toMatchObject({ ok: true });
    expect(outbox).toMatchObject([{ t: "update", worker: 0, options: { maxPerIp: 2, ratePerSec: 100_000 } }]);
    deliver();
    expect([broker.admit(1, "10.0.0.1"), broker.admit(1, "10.0.0.1"), broker.admit(1, "10.0.0.1")]).toEqual([null, null, "per_ip_limit"]);
  });

  test("a trusted balancer's PROXY header and first frame in one write: admitted by the player's address", async () => {
    const backend = await scope.backend();
    const { gate, deliver, outbox, broker } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway(
      { security: { proxy_protocol: "required", trusted_proxies: ["127.0.0.0/8"] }, routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } },
      { admissionGate: gate },
    );
    const c = await gw.connect();
    c.sendRaw(new Uint8Array([...proxyV1("203.0.113.7", "10.0.0.1", 50000, 8080), ...encodeClientFrame(1, serverIdFor(T), text("via the balancer"))]));
    await eventually(() => admits(outbox) === 1, "the gate to ask");
    expect(outbox[0]).toMatchObject({ t: "admit", ip: "203.0.113.7" });
    deliver();
    expect(str((await c.next()).body)).toBe("via the balancer");
    expect(broker.heldBy(0, "203.0.113.7")).toBe(1);
    c.close();
  });
});

describe("dedicated WebSocket listener with a gate that answers later", () => {
  test("the upgrade waits for the answer: admitted, it carries the session; refused, it gets 429 and the same record", async () => {
    const backend = await scope.backend();
    const { gate, deliver, outbox, broker } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway(
      { server: { ws_listen_addr: "127.0.0.1:0", ws_path: "/ws" }, routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } },
      { admissionGate: gate },
    );
    const connecting = WsPeer.connect(gw.gateway.wsPort, "/ws");
    await eventually(() => admits(outbox) === 1, "the gate to ask");
    deliver();
    const peer = await connecting;
    await peer.send(encodeClientFrame(1, serverIdFor(T), text("over ws")));
    await eventually(() => peer.received().length >= 8 + "over ws".length, "the echo");
    expect(str(peer.received().subarray(8))).toBe("over ws");
    expect(broker.heldBy(0, "127.0.0.1")).toBe(1);

    const refused = WsPeer.connect(gw.gateway.wsPort, "/ws").then(
      () => "upgraded",
      (e: Error) => e.message,
    );
    await eventually(() => admits(outbox) === 1, "the second question");
    deliver();
    expect(await refused).toContain("429");
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);
    peer.end();
    await eventually(() => {
      deliver();
      return broker.heldBy(0) === 0;
    }, "the close to release the broker's count");
    await gw.gateway.stop();
    expect(gw.accessLog.lines.filter((l) => l.status === "rejected")).toMatchObject([{ refusal: "per_ip_limit", "network.protocol.name": "ws" }]);
  });
});

describe("TCP port behind a trusted proxy, with a gate that answers later", () => {
  test("a sniffed upgrade is admitted by its X-Forwarded-For address once the gate answers; refused, it gets 429", async () => {
    const backend = await scope.backend();
    const { gate, deliver, outbox, broker } = heldGate({ maxPerIp: 1 });
    const gw = scope.gateway(
      { security: { trusted_proxies: ["127.0.0.1/32"] }, routing: { rules: [rule(T, [`127.0.0.1:${backend.port}`])] } },
      { admissionGate: gate },
    );
    const connecting = WsPeer.connect(gw.gateway.port, "/game", "127.0.0.1", { "X-Forwarded-For": "203.0.113.7" });
    await eventually(() => admits(outbox) === 1, "the gate to ask");
    // Asked for the player behind the proxy, never for the proxy's own address.
    expect(outbox[0]).toMatchObject({ t: "admit", ip: "203.0.113.7" });
    deliver();
    const peer = await connecting;
    await peer.send(encodeClientFrame(1, serverIdFor(T), text("through the proxy")));
    await eventually(() => peer.received().length >= 8 + "through the proxy".length, "the echo");
    expect(str(peer.received().subarray(8))).toBe("through the proxy");
    expect(broker.heldBy(0, "203.0.113.7")).toBe(1);

    const refused = WsPeer.connect(gw.gateway.port, "/game", "127.0.0.1", { "X-Forwarded-For": "203.0.113.7" }).then(
      () => "upgraded",
      (e: Error) => e.message,
    );
    await eventually(() => admits(outbox) === 1, "the second question");
    deliver();
    expect(await refused).toContain("429");
    expect(await gw.gateway.metrics.value("connection_refusals_total", { refusal: "per_ip_limit" })).toBe(1);

    // A game client from the proxy's address is admitted by that address, after the gate answers.
    const c = await gw.connect();
    c.send(1, serverIdFor(T), text("plain game client"));
    await eventually(() => admits(outbox) === 1, "the game client's question");
    expect(outbox[0]).toMatchObject({ t: "admit", ip: "127.0.0.1" });
    deliver();
    expect(str((await c.next()).body)).toBe("plain game client");
    peer.end();
    c.close();
    await eventually(() => {
      deliver();
      return broker.heldBy(0) === 0;
    }, "both closes to release the broker's counts");
  });
});
