// A worker's RemoteAdmission on its own: its bounds, and what it owes the broker.

import { describe, expect, test } from "bun:test";
import { ADMISSION_PENDING, type AdmissionMessage, type GateRefusal } from "../../src/net/admission-gate.ts";
import { RemoteAdmission } from "../../src/net/remote-admission.ts";
import { eventually } from "../support/eventually.ts";

function recorder() {
  const decisions: (GateRefusal | null)[] = [];
  return { decisions, waiter: { admissionDecided: (r: GateRefusal | null) => void decisions.push(r) } };
}

describe("RemoteAdmission", () => {
  test("asks with increasing ids, never answers from inside request(), and hands each answer to its own waiter", () => {
    const sent: AdmissionMessage[] = [];
    const gate = new RemoteAdmission((m) => sent.push(m), { worker: 4 });
    const a = recorder();
    const b = recorder();
    expect(gate.request("10.0.0.1", a.waiter)).toBe(ADMISSION_PENDING);
    expect(gate.request("10.0.0.2", b.waiter)).toBe(ADMISSION_PENDING);
    expect(sent).toEqual([
      { t: "admit", id: 1, worker: 4, ip: "10.0.0.1" },
      { t: "admit", id: 2, worker: 4, ip: "10.0.0.2" },
    ]);
    expect([a.decisions, b.decisions]).toEqual([[], []]);
    expect(gate.receive({ t: "admission", id: 2, refusal: "per_ip_limit" })).toBe(true);
    expect(gate.receive({ t: "admission", id: 1, refusal: null })).toBe(true);
    expect(gate.receive({ t: "admission", id: 1, refusal: null })).toBe(true); // a duplicate: nothing happens
    expect([a.decisions, b.decisions]).toEqual([[null], ["per_ip_limit"]]);
    expect(gate.receive({ t: "something else" })).toBe(false);
    gate.release("10.0.0.1");
    gate.update({ maxPerIp: 2, ratePerSec: 3, maxTrackedIps: 4 });
    expect(sent.slice(2)).toEqual([
      { t: "release", worker: 4, ip: "10.0.0.1" },
      { t: "update", worker: 4, options: { maxPerIp: 2, ratePerSec: 3, maxTrackedIps: 4 } },
    ]);
    expect(gate.pending).toBe(0);
    gate.close();
  });

  test("past maxPending unanswered questions a connection is refused at once, and counted", () => {
    const sent: AdmissionMessage[] = [];
    const gate = new RemoteAdmission((m) => sent.push(m), { worker: 0, maxPending: 2 });
    const r = recorder();
    expect([gate.request("10.0.0.1", r.waiter), gate.request("10.0.0.1", r.waiter), gate.request("10.0.0.1", r.waiter)]).toEqual([
      ADMISSION_PENDING,
      ADMISSION_PENDING,
      "admission_pending_limit",
    ]);
    expect(sent).toHaveLength(2);
    expect(gate.counts.pendingLimit).toBe(1);
    gate.receive({ t: "admission", id: 1, refusal: null });
    expect(gate.request("10.0.0.1", recorder().waiter)).toBe(ADMISSION_PENDING);
    gate.close();
  });

  test("unanswered past timeoutMs: refused as admission_timeout once; a later admitting answer is released", async () => {
    const sent: AdmissionMessage[] = [];
    const gate = new RemoteAdmission((m) => sent.push(m), { worker: 1, timeoutMs: 30 });
    const r = recorder();
    gate.request("10.0.0.1", r.waiter);
    await eventually(() => r.decisions.length === 1, "the timeout");
    expect(r.decisions).toEqual(["admission_timeout"]);
    expect(gate.counts.timeouts).toBe(1);
    gate.receive({ t: "admission", id: 1, refusal: null });
    expect(r.decisions).toHaveLength(1);
    expect(sent.at(-1)).toEqual({ t: "release", worker: 1, ip: "10.0.0.1" });
    expect(gate.counts.abandonedAnswers).toBe(1);
    gate.close();
  });

  test("a cancelled waiter is never called; a refusing answer for it releases nothing", () => {
    const sent: AdmissionMessage[] = [];
    const gate = new RemoteAdmission((m) => sent.push(m), { worker: 0 });
    const r = recorder();
    gate.request("10.0.0.1", r.waiter);
    gate.cancel(r.waiter);
    gate.receive({ t: "admission", id: 1, refusal: "rate_limited" });
    expect(r.decisions).toEqual([]);
    expect(sent.filter((m) => m.t === "release")).toHaveLength(0);
    gate.close();
  });

  test("an admitting answer after the question was let go (twice the timeout) is still released; a refusing one releases nothing", async () => {
    const sent: AdmissionMessage[] = [];
    const gate = new RemoteAdmission((m) => sent.push(m), { worker: 2, timeoutMs: 20 });
    const r = recorder();
    gate.request("10.0.0.1", r.waiter);
    gate.request("10.0.0.2", r.waiter);
    await eventually(() => gate.pending === 0, "both questions let go");
    expect(r.decisions).toEqual(["admission_timeout", "admission_timeout"]);
    gate.receive({ t: "admission", id: 1, ip: "10.0.0.1", refusal: null });
    gate.receive({ t: "admission", id: 2, ip: "10.0.0.2", refusal: "per_ip_limit" });
    gate.receive({ t: "admission", id: 99, ip: "10.0.0.3", refusal: null }); // never asked: not this worker's
    expect(sent.filter((m) => m.t === "release")).toEqual([{ t: "release", worker: 2, ip: "10.0.0.1" }]);
    expect(gate.counts.abandonedAnswers).toBe(1);
    gate.close();
  });
});
