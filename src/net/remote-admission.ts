// A worker's AdmissionGate: every per-IP question goes to the supervisor's AdmissionBroker over
// IPC (`send`), and its answer comes back through receive(). The listener holds the connection's
// early bytes meanwhile (tcp-listener.ts) or the upgrade request (ws-listener.ts).
//
// Bounded: at most maxPending questions unanswered at once; past that a connection is refused at
// once (admission_pending_limit). A question unanswered for timeoutMs is refused
// (admission_timeout): a supervisor that stopped answering must not hold sockets open forever,
// and a limit that cannot be checked is not waived. Both are counted (connection_refusals_total,
// through the listener's refusal) and logged through the refusal log's throttle.
// An answer that arrives for a connection no longer waiting (it closed, or timed out) and admits
// it is released at once, so the broker never counts a connection this worker does not hold. That
// holds even after the question itself was let go (abandoned and unanswered for twice the timeout,
// e.g. a supervisor stopped for seconds): the answer names its address, and an admitting answer
// for an id this worker no longer knows is released (ids are unique per worker and answered once).
// So the questions kept stay bounded (maxPending) and no slot is lost however late the answer is.

import type { AdmissionOptions } from "./admission.ts";
import {
  ADMISSION_PENDING,
  type AdmissionGate,
  type AdmissionMessage,
  type AdmissionPending,
  type AdmissionWaiter,
  type GateRefusal,
  isAdmissionMessage,
} from "./admission-gate.ts";

export interface RemoteAdmissionOptions {
  /** This worker's index, named in every message. */
  readonly worker: number;
  /** Questions unanswered at once (and answers still owed for abandoned ones); default 4096. */
  readonly maxPending?: number;
  /** How long an answer may take before the connection is refused; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Milliseconds (default Date.now). */
  readonly now?: () => number;
}

interface Question {
  readonly ip: string;
  readonly askedAt: number;
  /** null once the connection stopped waiting (closed, timed out): an admitting answer is released. */
  waiter: AdmissionWaiter | null;
}

export const DEFAULT_MAX_PENDING_ADMISSIONS = 4096;
export const DEFAULT_ADMISSION_TIMEOUT_MS = 2000;

export class RemoteAdmission implements AdmissionGate {
  readonly answersAtOnce = false;
  private readonly worker: number;
  private readonly maxPending: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** Unanswered questions by id, oldest first (ids only grow). */
  private readonly questions = new Map<number, Question>();
  private readonly idOf = new Map<AdmissionWaiter, number>();
  private nextId = 1;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly onTimer = (): void => this.expire();
  /** Counts for status and tests: refused at the pending bound, refused unanswered, answers after the connection left. */
  readonly counts = { pendingLimit: 0, timeouts: 0, abandonedAnswers: 0 };

  constructor(
    private readonly send: (message: AdmissionMessage) => void,
    options: RemoteAdmissionOptions,
  ) {
    this.worker = options.worker;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING_ADMISSIONS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ADMISSION_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
  }

  /** Questions sent and not yet answered (abandoned ones included: their answers are still owed). */
  get pending(): number {
    return this.questions.size;
  }

  request(ip: string, waiter: AdmissionWaiter): GateRefusal | AdmissionPending {
    if (this.questions.size >= this.maxPending) {
      this.counts.pendingLimit++;
      return "admission_pending_limit";
    }
    const id = this.nextId++;
    this.questions.set(id, { ip, askedAt: this.now(), waiter });
    this.idOf.set(waiter, id);
    this.send({ t: "admit", id, worker: this.worker, ip });
    if (this.timer === null) {
      this.timer = setTimeout(this.onTimer, this.timeoutMs);
      this.timer.unref?.(); // the listeners keep a worker alive, not this
    }
    return ADMISSION_PENDING;
  }

  cancel(waiter: AdmissionWaiter): void {
    const id = this.idOf.get(waiter);
    if (id === undefined) return;
    this.idOf.delete(waiter);
    this.questions.get(id)!.waiter = null;
  }

  release(ip: string): void {
    this.send({ t: "release", worker: this.worker, ip });
  }

  /** Sends the new limits to the supervisor's broker, which holds the one AdmissionControl. */
  update(options: AdmissionOptions): void {
    this.send({ t: "update", worker: this.worker, options });
  }

  /** A message from the supervisor; true when it was an admission answer (others are not this gate's). */
  receive(message: unknown): boolean {
    if (!isAdmissionMessage(message) || message.t !== "admission") return false;
    const q = this.questions.get(message.id);
    if (q === undefined) {
      // Let go after it timed out (the broker answers each question once): the broker counts an
      // admission this worker never used, so give it back.
      if (message.refusal === null && typeof message.ip === "string" && message.id < this.nextId) {
        this.counts.abandonedAnswers++;
        this.release(message.ip);
      }
      return true;
    }
    this.questions.delete(message.id);
    const waiter = q.waiter;
    if (waiter === null) {
      this.counts.abandonedAnswers++;
      if (message.refusal === null) this.release(q.ip);
      return true;
    }
    this.idOf.delete(waiter);
    waiter.admissionDecided(message.refusal);
    return true;
  }

  /** Refuses the questions older than the timeout; they stay until answered, so a late admit is released. */
  private expire(): void {
    this.timer = null;
    const now = this.now();
    for (const [id, q] of this.questions) {
      const due = q.askedAt + this.timeoutMs;
      if (due > now) {
        // Oldest first: the rest are younger. Wake again when this one is due.
        this.timer = setTimeout(this.onTimer, due - now);
        break;
      }
      const waiter = q.waiter;
      if (waiter === null) {
        // Abandoned and still unanswered after a timeout (twice, counting from the ask), or the
        // bound needs the room: let it go. Its answer, if it ever comes, names the address, so an
        // admission is still given back (receive).
        if (now - q.askedAt >= 2 * this.timeoutMs || this.questions.size >= this.maxPending) this.questions.delete(id);
        continue;
      }
      q.waiter = null;
      this.idOf.delete(waiter);
      this.counts.timeouts++;
      waiter.admissionDecided("admission_timeout");
    }
    if (this.timer === null && this.questions.size > 0) this.timer = setTimeout(this.onTimer, this.timeoutMs);
    this.timer?.unref?.();
  }

  /** Stops the timer; questions still open are refused (the worker is shutting down). */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const q of this.questions.values()) {
      const waiter = q.waiter;
      q.waiter = null;
      if (waiter !== null) waiter.admissionDecided("admission_timeout");
    }
    this.idOf.clear();
  }
}
