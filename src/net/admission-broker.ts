// The supervisor's side of machine-wide per-IP limits. With SO_REUSEPORT the kernel spreads one
// address's connections over every worker, so each worker's own AdmissionControl would let
// max_connections_per_ip through per worker; the broker holds the one AdmissionControl of the
// group and answers every worker's `admit` (remote-admission.ts is the worker's side).
// It also remembers what each worker holds, per address, so a worker that dies gives back
// exactly its connections (dropWorker) and a release for a count a worker does not hold is
// ignored rather than taken from another worker.

import { AdmissionControl, type AdmissionOptions } from "./admission.ts";
import { type AdmissionMessage, isAdmissionMessage } from "./admission-gate.ts";

export type AdmissionReply = Extract<AdmissionMessage, { t: "admission" }>;

export class AdmissionBroker {
  private readonly control: AdmissionControl;
  /** Worker index -> address -> connections admitted and not yet released. */
  private readonly held = new Map<number, Map<string, number>>();

  /** now: milliseconds since the epoch (default Date.now), for the rate buckets. */
  constructor(options: AdmissionOptions, now: () => number = Date.now) {
    this.control = new AdmissionControl(options, now);
  }

  /**
   * One message from a worker; the reply to send back to it, if any. `from` is the worker the
   * message came from (its IPC channel), which counts over the message's own `worker` field.
   */
  receive(message: unknown, from?: number): AdmissionReply | null {
    if (!isAdmissionMessage(message)) return null;
    switch (message.t) {
      case "admit": {
        if (typeof message.id !== "number") return null;
        const ip = String(message.ip);
        return { t: "admission", id: message.id, ip, refusal: this.admit(from ?? message.worker, ip) };
      }
      case "release":
        this.release(from ?? message.worker, String(message.ip));
        return null;
      case "update":
        if (isAdmissionOptions(message.options)) this.update(message.options);
        return null;
      default:
        return null;
    }
  }

  /** Admits a connection from ip on worker; counted as that worker's until released. */
  admit(worker: number, ip: string): AdmissionReply["refusal"] {
    const refusal = this.control.admit(ip);
    if (refusal === null) {
      let ips = this.held.get(worker);
      if (ips === undefined) this.held.set(worker, (ips = new Map()));
      ips.set(ip, (ips.get(ip) ?? 0) + 1);
    }
    return refusal;
  }

  /** A connection worker was admitted for has closed; a release it holds no count for is ignored. */
  release(worker: number, ip: string): void {
    const ips = this.held.get(worker);
    const n = ips?.get(ip);
    if (ips === undefined || n === undefined) return;
    if (n <= 1) ips.delete(ip);
    else ips.set(ip, n - 1);
    this.control.release(ip);
  }

  /** The worker is gone (exited, killed): everything it held is released. */
  dropWorker(worker: number): void {
    const ips = this.held.get(worker);
    if (ips === undefined) return;
    this.held.delete(worker);
    for (const [ip, n] of ips) for (let i = 0; i < n; i++) this.control.release(ip);
  }

  /** New limits (a reload); counts and buckets are kept. */
  update(options: AdmissionOptions): void {
    this.control.update(options);
  }

  /** Connections a worker holds from ip (all of its addresses when ip is omitted). */
  heldBy(worker: number, ip?: string): number {
    const ips = this.held.get(worker);
    if (ips === undefined) return 0;
    if (ip !== undefined) return ips.get(ip) ?? 0;
    let n = 0;
    for (const c of ips.values()) n += c;
    return n;
  }
}

function isAdmissionOptions(o: unknown): o is AdmissionOptions {
  if (typeof o !== "object" || o === null) return false;
  const { maxPerIp, ratePerSec, maxTrackedIps } = o as Record<string, unknown>;
  return typeof maxPerIp === "number" && typeof ratePerSec === "number" && typeof maxTrackedIps === "number";
}
