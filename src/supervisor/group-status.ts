// The status page's figures for a group, merged from each worker's /api/status body
// (Gateway.status()), so every figure the page shows is the machine's, not one worker's:
//   connections, pending_first_frame, sessions, messages (and their rates)  summed
//   buffers, span_export (counts and bytes)                                summed
//   backends: one row per endpoint  connections_open, sessions, queued_bytes summed; breaker the
//                                   worst of the workers' (each worker has its own breaker:
//                                   open > half-open > closed); reachable only when every worker
//                                   reaches it
//   routes: one row per (server_type, world_id, service_name)  reachable: the fewest endpoints any
//                                   worker reaches (what every worker can serve)
//   latency                         per direction, the slowest worker's p50/p90/p99 (quantiles do
//                                   not add up; the worst is what a player may see), count summed;
//                                   each worker's own in its row of `workers`
//   config_version                  the lowest (every worker has at least it); each in its row
//   reloads                         the lowest-index answering worker's (every worker applies the
//                                   same reload), named by reloads_worker
// Workers that did not answer are left out of every figure (and named by not_ready_reason).

type Body = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const obj = (v: unknown): Body => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Body) : {});
const list = (v: unknown): Body[] => (Array.isArray(v) ? v.map(obj) : []);

/** Each numeric field summed over the objects (the fields of the first that has any). */
function sumFields(objects: readonly Body[]): Body | null {
  if (objects.length === 0) return null;
  const out: Body = {};
  for (const o of objects) for (const [k, v] of Object.entries(o)) if (typeof v === "number") out[k] = num(out[k]) + v;
  return out;
}

const BREAKER_RANK: Readonly<Record<string, number>> = { closed: 0, "half-open": 1, open: 2 };

function worstBreaker(a: unknown, b: unknown): unknown {
  return (BREAKER_RANK[String(b)] ?? -1) > (BREAKER_RANK[String(a)] ?? -1) ? b : a;
}

function mergeBackends(bodies: readonly Body[]): Body[] {
  const rows = new Map<string, Body>();
  for (const b of bodies) {
    for (const row of list(b.backends)) {
      const endpoint = String(row.endpoint);
      const had = rows.get(endpoint);
      if (had === undefined) {
        rows.set(endpoint, { ...row, workers: 1 });
        continue;
      }
      had.connections_open = num(had.connections_open) + num(row.connections_open);
      had.sessions = num(had.sessions) + num(row.sessions);
      had.queued_bytes = num(had.queued_bytes) + num(row.queued_bytes);
      had.breaker = worstBreaker(had.breaker, row.breaker);
      had.reachable = had.reachable === true && row.reachable === true;
      had.workers = num(had.workers) + 1;
    }
  }
  return [...rows.values()];
}

function mergeRoutes(bodies: readonly Body[]): Body[] {
  const rows = new Map<string, Body>();
  for (const b of bodies) {
    for (const row of list(b.routes)) {
      const key = `${String(row.server_type)}/${String(row.world_id)}/${String(row.service_name)}`;
      const had = rows.get(key);
      if (had === undefined) rows.set(key, { ...row });
      else had.reachable = Math.min(num(had.reachable), num(row.reachable));
    }
  }
  return [...rows.values()];
}

const QUANTILES = ["p50_ms", "p90_ms", "p99_ms"] as const;

function mergeLatency(bodies: readonly Body[]): Body {
  const out: Body = { merged: "the slowest worker's quantiles; count summed" };
  for (const direction of ["upstream", "downstream"]) {
    const parts = bodies.map((b) => obj(obj(b.latency)[direction]));
    const merged: Body = { count: parts.reduce((t, p) => t + num(p.count), 0) };
    for (const q of QUANTILES) {
      const values = parts.map((p) => p[q]).filter((v): v is number => typeof v === "number");
      merged[q] = values.length === 0 ? null : Math.max(...values);
    }
    out[direction] = merged;
  }
  return out;
}

/** The group's figures from the answering workers' bodies (in worker order; null: no answer). */
export function mergeWorkerStatus(bodies: readonly (Body | null)[]): Body {
  const answered = bodies.filter((b): b is Body => b !== null);
  const first = answered[0] ?? {};
  const sum = (get: (b: Body) => unknown): number => answered.reduce((t, b) => t + num(get(b)), 0);
  const versions = answered.map((b) => b.config_version).filter((v): v is number => typeof v === "number");
  const spans = answered.map((b) => b.span_export).filter((s): s is Body => typeof s === "object" && s !== null);
  return {
    gateway: first.gateway,
    config_version: versions.length === 0 ? null : Math.min(...versions),
    connections: sum((b) => b.connections),
    pending_first_frame: sum((b) => b.pending_first_frame),
    sessions: sum((b) => b.sessions),
    messages: {
      in: sum((b) => obj(b.messages).in),
      out: sum((b) => obj(b.messages).out),
      in_per_s: sum((b) => obj(b.messages).in_per_s),
      out_per_s: sum((b) => obj(b.messages).out_per_s),
    },
    latency: mergeLatency(answered),
    buffers: sumFields(answered.map((b) => obj(b.buffers))),
    backends: mergeBackends(answered),
    routes: mergeRoutes(answered),
    reloads: first.reloads ?? [],
    reloads_worker: answered.length === 0 ? null : bodies.indexOf(first),
    span_export: spans.length === 0 ? null : sumFields(spans),
  };
}
