// Before a group starts, its client ports are bound once without SO_REUSEPORT and closed again.
// Workers bind with SO_REUSEPORT so they can share a port, and the kernel lets any other process
// that also sets it join in: a second group (a stale instance, a manual run beside systemd) would
// silently take part of the players. An exclusive bind fails when anything listens there, so the
// second group stops with the same "address already in use" a single process gives.
//
// The race: between this probe closing and worker 0 binding (milliseconds), another group that
// probes at the same moment could pass too. Two starts at the same instant are an operator's
// doing; the probe is for the common case, a group started beside one already running.

import { listenError } from "../net/binder.ts";

/** Throws ListenError (naming `key`) when `host:port` cannot be bound exclusively; port 0 is always free. */
export function probeExclusiveBind(key: string, host: string, port: number): void {
  if (port === 0) return;
  try {
    const probe = Bun.listen({ hostname: host, port, socket: { data() {} } });
    probe.stop(true);
  } catch (e) {
    throw listenError(key, host, port, e);
  }
}
