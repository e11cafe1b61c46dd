// The supervisor's AdmissionBroker: one AdmissionControl for every worker of the machine.

import { describe, expect, test } from "bun:test";
import { AdmissionBroker } from "../../src/net/admission-broker.ts";

const LIMITS = { maxPerIp: 3, ratePerSec: 1_000_000, maxTrackedIps: 1000 };

describe("AdmissionBroker", () => {
  test("the per-IP limit holds across workers, and each worker's release frees one of its own", () => {
    const broker = new AdmissionBroker(LIMITS);
    const answers = [0, 1, 0, 1, 2].map((worker, id) => broker.receive({ t: "admit", id, worker, ip: "10.0.0.1" }));
    expect(answers.map((a) => a?.refusal)).toEqual([null, null, null, "per_ip_limit", "per_ip_limit"]);
    expect(answers.map((a) => a?.id)).toEqual([0, 1, 2, 3, 4]);
    expect([broker.heldBy(0, "10.0.0.1"), broker.heldBy(1, "10.0.0.1"), broker.heldBy(2)]).toEqual([2, 1, 0]);
    // Another address is counted on its own.
    expect(broker.receive({ t: "admit", id: 5, worker: 2, ip: "10.0.0.2" })?.refusal).toBeNull();

    // Worker 2 holds nothing from 10.0.0.1: its release must not free worker 0's slot.
    expect(broker.receive({ t: "release", worker: 2, ip: "10.0.0.1" })).toBeNull();
    expect(broker.admit(2, "10.0.0.1")).toBe("per_ip_limit");
    broker.receive({ t: "release", worker: 1, ip: "10.0.0.1" });
    expect(broker.admit(2, "10.0.0.1")).toBeNull();
    expect(broker.heldBy(1)).toBe(0);
  });

  test("a dead worker's connections are all released, and only its own", () => {
    const broker = new AdmissionBroker(LIMITS);
    broker.admit(0, "10.0.0.1");
    broker.admit(1, "10.0.0.1");
    broker.admit(1, "10.0.0.1");
    broker.admit(1, "10.0.0.9");
    expect(broker.admit(0, "10.0.0.1")).toBe("per_ip_limit");
    broker.dropWorker(1);
    expect(broker.heldBy(1)).toBe(0);
    expect(broker.admit(0, "10.0.0.1")).toBeNull();
    expect(broker.admit(0, "10.0.0.1")).toBeNull();
    expect(broker.admit(0, "10.0.0.1")).toBe("per_ip_limit"); // worker 0's three are still counted
    broker.dropWorker(1); // twice: nothing more to release
    expect(broker.admit(2, "10.0.0.1")).toBe("per_ip_limit");
  });

  test("the channel's worker counts over the message's own field", () => {
    const broker = new AdmissionBroker(LIMITS);
    broker.receive({ t: "admit", id: 1, worker: 7, ip: "10.0.0.1" }, 0);
    expect([broker.heldBy(0), broker.heldBy(7)]).toEqual([1, 0]);
    broker.receive({ t: "release", worker: 0, ip: "10.0.0.1" }, 7); // claims to be worker 0, comes from 7
    expect(broker.heldBy(0)).toBe(1);
  });

  test("a reload's limits apply to the next admission; counts are kept", () => {
    const broker = new AdmissionBroker(LIMITS);
    for (let i = 0; i < 3; i++) broker.admit(0, "10.0.0.1");
    broker.receive({ t: "update", worker: 0, options: { ...LIMITS, maxPerIp: 4 } });
    expect(broker.admit(1, "10.0.0.1")).toBeNull();
    expect(broker.admit(1, "10.0.0.1")).toBe("per_ip_limit");
    broker.update({ ...LIMITS, maxPerIp: 1 });
    broker.receive({ t: "release", worker: 0, ip: "10.0.0.1" });
    expect(broker.admit(1, "10.0.0.1")).toBe("per_ip_limit"); // 3 still held, limit 1
  });

  test("the rate limit is the machine's too", () => {
    let now = 0;
    const broker = new AdmissionBroker({ maxPerIp: 100, ratePerSec: 2, maxTrackedIps: 1000 }, () => now);
    expect([broker.admit(0, "10.0.0.1"), broker.admit(1, "10.0.0.1"), broker.admit(2, "10.0.0.1")]).toEqual([null, null, "rate_limited"]);
    now += 500;
    expect(broker.admit(2, "10.0.0.1")).toBeNull();
  });

  test("what is not an admission message is ignored", () => {
    const broker = new AdmissionBroker(LIMITS);
    for (const m of [null, 3, "admit", { t: "other" }, { t: "admit", id: "x", worker: 0, ip: "10.0.0.1" }, { t: "update", worker: 0, options: { maxPerIp: "9" } }]) {
      expect(broker.receive(m)).toBeNull();
    }
    expect(broker.heldBy(0)).toBe(0);
    for (let i = 0; i < 3; i++) expect(broker.admit(0, "10.0.0.1")).toBeNull(); // limits unchanged by the bad update
    expect(broker.admit(0, "10.0.0.1")).toBe("per_ip_limit");
  });
});
