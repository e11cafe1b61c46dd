import { readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";

// The standard process metrics the Go client exports and prom-client's defaults lack, read from
// /proc when scraped, as the Go client reads them: process_virtual_memory_max_bytes (the address
// space limit; unlimited is 2^64-1) and process_network_{receive,transmit}_bytes_total (the
// process's network namespace, every interface). Registered only where /proc has them (Linux).

const UNLIMITED = 18446744073709551615; // the Go client's float64(^uint64(0))

/** The soft "Max address space" limit in bytes, or null when /proc does not say. */
export function maxAddressSpace(limits: string): number | null {
  const m = /^Max address space\s+(\S+)/m.exec(limits);
  if (m === null) return null;
  return m[1] === "unlimited" ? UNLIMITED : Number(m[1]);
}

/** Received and transmitted bytes summed over every interface of a /proc/<pid>/net/dev table. */
export function netDevTotals(table: string): { receive: number; transmit: number } {
  let receive = 0;
  let transmit = 0;
  for (const line of table.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    receive += Number(f[0]);
    transmit += Number(f[8]);
  }
  return { receive, transmit };
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

export function registerGoProcessExtras(registry: Registry): void {
  const registers = [registry];
  if (readOrNull("/proc/self/limits") !== null) {
    new Gauge({
      name: "process_virtual_memory_max_bytes",
      help: "Maximum amount of virtual memory available in bytes.",
      registers,
      collect() {
        const max = maxAddressSpace(readOrNull("/proc/self/limits") ?? "");
        if (max !== null) this.set(max);
      },
    });
  }
  if (readOrNull("/proc/self/net/dev") !== null) {
    const totals = (): { receive: number; transmit: number } => netDevTotals(readOrNull("/proc/self/net/dev") ?? "");
    new Counter({
      name: "process_network_receive_bytes_total",
      help: "Number of bytes received by the process over the network.",
      registers,
      collect() {
        this.reset();
        this.inc(totals().receive);
      },
    });
    new Counter({
      name: "process_network_transmit_bytes_total",
      help: "Number of bytes sent by the process over the network.",
      registers,
      collect() {
        this.reset();
        this.inc(totals().transmit);
      },
    });
  }
}
