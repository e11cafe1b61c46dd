// The Go client's process metrics that prom-client lacks are read from /proc text; these are the
// formats the kernel writes (proc(5)), with the values the Go client reports for them.
import { expect, test } from "bun:test";
import { maxAddressSpace, netDevTotals } from "../../src/admin/process-metrics.ts";

const LIMITS = (value: string) =>
  [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max open files            20000                20000                files     ",
    `Max address space         ${value.padEnd(20)} unlimited            bytes     `,
    "Max file locks            unlimited            unlimited            locks     ",
  ].join("\n");

test("process_virtual_memory_max_bytes: the soft address-space limit; unlimited is 2^64-1, as the Go client reports it", () => {
  expect(maxAddressSpace(LIMITS("unlimited"))).toBe(2 ** 64 - 1);
  expect(maxAddressSpace(LIMITS("8589934592"))).toBe(8589934592);
  expect(maxAddressSpace("Max open files 1024 1024 files")).toBeNull();
});

test("process_network_*_bytes_total: received and transmitted bytes summed over every interface", () => {
  const table = [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0",
    "  eth0:250 3 0 0 0 0 0 0 4000 7 0 0 0 0 0 0",
  ].join("\n");
  expect(netDevTotals(table)).toEqual({ receive: 1250, transmit: 5000 });
  expect(netDevTotals("")).toEqual({ receive: 0, transmit: 0 });
});
