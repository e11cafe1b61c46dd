// scripts/bench-e2e.ts end to end, briefly: workload f (fixed offered rates) through the nginx
// peer and the gateway, as a user reads the result: both targets measured at the offered rate,
// the gateway compared with the best peer by name, and a rate no generator can offer labelled
// generator-limited rather than reported as the targets' figure. No timing is asserted.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SCRIPT = resolve(import.meta.dir, "../../scripts/bench-e2e.ts");
const dir = mkdtempSync(join(tmpdir(), "bench-e2e-test-"));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  target: string;
  key: string;
  ok: boolean;
  offeredPerSecond: number | null;
  errorsTotal: number;
  messages: { sent: number; received: number };
  proxyCpuUsPerRoundTrip: number | null;
  generatorCores: number | null;
  generatorPacing: { lateP50Ms: number; lateP99Ms: number; lateMaxMs: number; fromReplies: number; fromTimer: number } | null;
  generatorLimited: string | null;
}

test("f through nginx and the gateway: measured at the offered rate, compared with the best peer, an impossible rate labelled", async () => {
  const json = join(dir, "results.json");
  const proc = Bun.spawn(
    [process.execPath, SCRIPT, "--quick", "--workloads", "f", "--targets", "nginx,gateway", "--fixed-rates", "1000,1000000", "--fixed-bodies", "64", "--fixed-clients", "10", "--no-profile", "--json", json],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`bench-e2e exited ${code}\n${stdout}\n${stderr}`);
  const doc = JSON.parse(readFileSync(json, "utf8")) as { results: Result[]; ratios: Record<string, { gatewayVsBestPeer: Record<string, { peer: string } | null> }> };
  const run = (key: string, target: string): Result => {
    const r = doc.results.find((x) => x.key === key && x.target === target);
    if (r === undefined) throw new Error(`no ${key}/${target} result in ${JSON.stringify(doc.results.map((x) => `${x.key}/${x.target}`))}`);
    return r;
  };
  for (const target of ["nginx", "gateway"]) {
    const r = run("f1k-64B", target);
    expect(r.ok).toBe(true);
    expect(r.offeredPerSecond).toBe(1000);
    expect(r.errorsTotal).toBe(0);
    expect(r.messages.received).toBe(r.messages.sent);
    expect(r.proxyCpuUsPerRoundTrip).toBeGreaterThan(0);
    expect(r.generatorCores).not.toBeNull();
    // The generator's pacing comes with every open-loop result: every frame sent was paced by a reply or by the timer.
    const pacing = r.generatorPacing!;
    expect(pacing).not.toBeNull();
    expect(pacing.fromReplies + pacing.fromTimer).toBe(r.messages.sent);
    expect(pacing.lateMaxMs).toBeGreaterThanOrEqual(pacing.lateP99Ms);
    // 1,000,000 round trips/s from 10 clients and one load-tester process cannot be sent here.
    const impossible = run("f1000k-64B", target);
    expect(impossible.offeredPerSecond).toBe(1_000_000);
    expect(impossible.generatorLimited).toContain("of 1,000,000/s offered");
  }
  // The only peer run here is nginx, so it is the best peer on CPU per round trip, named as such.
  expect(doc.ratios["f1k-64B"]!.gatewayVsBestPeer["proxy CPU µs/rt"]).toMatchObject({ peer: "nginx" });
  expect(stdout).toContain("the gateway against the best peer");
  expect(stdout).toMatch(/\(f1000k-64B\) gateway CPU per round trip <= 0\.6x the best peer's: .*GENERATOR-LIMITED/);
}, 180_000);
