// What a client listener asks before it admits a connection: the per-IP limits
// (security.max_connections_per_ip, connection_rate_limit). One process answers at once from its
// own AdmissionControl (admission.ts); a worker of a group asks the supervisor, which holds the
// one AdmissionControl of the machine (admission-broker.ts), and gets its answer later
// (remote-admission.ts). The synchronous case stays a plain call: no Promise, no allocation.

/** Why the per-IP limits refuse a connection. */
export type AdmissionRefusal = "per_ip_limit" | "rate_limited";

export interface AdmissionOptions {
  readonly maxPerIp: number;
  readonly ratePerSec: number;
  readonly maxTrackedIps: number;
}

/** The answer will come later, through the waiter's admissionDecided. */
export const ADMISSION_PENDING: unique symbol = Symbol("admission pending");
export type AdmissionPending = typeof ADMISSION_PENDING;

/**
 * Why a gate refused: a per-IP limit, or (a worker's gate) the supervisor could not be asked:
 * admission_pending_limit, too many questions already unanswered; admission_timeout, no answer
 * in time. Both refuse: a limit that cannot be checked is not waived.
 */
export type GateRefusal = AdmissionRefusal | "admission_pending_limit" | "admission_timeout";

/** Told the decision a gate could not give at once; exactly once, unless cancelled first. */
/** The HTTP status a refused WebSocket upgrade gets: 429 for the per-IP limits; 503 when the supervisor could not be asked. */
export function refusalHttpStatus(refusal: GateRefusal): number {
  return refusal === "per_ip_limit" || refusal === "rate_limited" ? 429 : 503;
}

export interface AdmissionWaiter {
  admissionDecided(refusal: GateRefusal | null): void;
}

export interface AdmissionGate {
  /**
   * True when request() never returns ADMISSION_PENDING: a caller that would need an object to
   * wait with (the WebSocket upgrade) can then skip making one.
   */
  readonly answersAtOnce: boolean;
  /**
   * Admits a connection from ip: null (admitted now; release(ip) when it closes), a refusal, or
   * ADMISSION_PENDING: waiter.admissionDecided follows, never from inside this call.
   */
  request(ip: string, waiter: AdmissionWaiter): GateRefusal | null | AdmissionPending;
  /**
   * The waiter's connection closed before its answer: it is never called, and an admission the
   * answer grants is released by the gate (the connection holds nothing it was not granted).
   */
  cancel(waiter: AdmissionWaiter): void;
  /** A connection admitted for ip has closed. */
  release(ip: string): void;
  /** New limits (reload); counts and buckets are kept. */
  update(options: AdmissionOptions): void;
}

/** Between a worker's RemoteAdmission and the supervisor's AdmissionBroker, over Bun's IPC. */
export type AdmissionMessage =
  /** Worker to supervisor: may this connection from ip be admitted? Answered by an `admission` with the same id. */
  | { readonly t: "admit"; readonly id: number; readonly worker: number; readonly ip: string }
  /**
   * Supervisor to worker: the answer (refusal null: admitted, and counted as the worker's until
   * released). It names the address again so a worker that no longer remembers the question (it
   * timed out and was let go) can still give an admission back.
   */
  | { readonly t: "admission"; readonly id: number; readonly ip: string; readonly refusal: AdmissionRefusal | null }
  /** Worker to supervisor: a connection it was admitted for has closed. */
  | { readonly t: "release"; readonly worker: number; readonly ip: string }
  /** Worker to supervisor: the limits of a reloaded config (the supervisor may also update its broker directly). */
  | { readonly t: "update"; readonly worker: number; readonly options: AdmissionOptions };

const MESSAGE_TYPES: ReadonlySet<string> = new Set(["admit", "admission", "release", "update"]);

/** True for an object shaped as an AdmissionMessage (IPC carries whatever a process sends). */
export function isAdmissionMessage(m: unknown): m is AdmissionMessage {
  return typeof m === "object" && m !== null && MESSAGE_TYPES.has((m as { t?: unknown }).t as string);
}
