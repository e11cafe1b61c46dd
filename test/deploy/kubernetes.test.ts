// deploy/kubernetes and the Dockerfile: well formed, consistent with each other and with the config
// they ship, and naming only paths, ports and metrics that the gateway really serves. No cluster or
// container daemon here: `kubectl kustomize` renders the manifests, and the checks below stand in
// for a schema validator (no kubeconform or hadolint can be installed offline).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { GameClient, serverIdFor } from "../../src/client/game-client.ts";
import { parseArgs, UsageError } from "../../src/cli/args.ts";
import { DEFAULT_HEALTH_URL } from "../../src/cli/healthcheck.ts";
import { parseConfig, parseHostPort } from "../../src/config/load.ts";
import type { GatewayConfig } from "../../src/config/types.ts";
import { DemoBackend } from "../../src/demo/demo-backend.ts";
import { Gateway } from "../../src/gateway.ts";
import { Logger } from "../../src/log/logger.ts";
import { ALERTS_PATH, PROMETHEUS_RULE_PATH, prometheusRuleYaml } from "../../scripts/k8s-prometheus-rule.ts";
import { CapturedLog } from "../support/harness.ts";
import { parseExposition, type Exposition } from "../support/prom-text.ts";

const ROOT = join(import.meta.dir, "../..");
const K8S = join(ROOT, "deploy/kubernetes");
const MAIN = join(ROOT, "src/cli/main.ts");

// Loose shapes of the manifests: the checks below assert the fields they read.
type Obj = Record<string, any>;

/** `kubectl kustomize` when kubectl is installed; else the same resources read from the files. */
function render(): { docs: Obj[]; by: "kubectl" | "files" } {
  const kubectl = Bun.which("kubectl");
  if (kubectl !== null) {
    const r = Bun.spawnSync([kubectl, "kustomize", K8S], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`kubectl kustomize ${K8S} failed: ${r.stderr}`);
    return { docs: YAML.parseAllDocuments(r.stdout.toString()).map((d) => d.toJS() as Obj), by: "kubectl" };
  }
  const k = YAML.parse(readFileSync(join(K8S, "kustomization.yaml"), "utf8")) as { resources: string[] };
  const docs = k.resources.flatMap((f) => YAML.parseAllDocuments(readFileSync(join(K8S, f), "utf8")).map((d) => d.toJS() as Obj));
  docs.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "game-gateway-config" }, data: { "config.yaml": readFileSync(join(K8S, "config.yaml"), "utf8") } });
  return { docs, by: "files" };
}

const { docs, by: renderedBy } = render();
const one = (kind: string, name?: string): Obj => {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
};
const deployment = one("Deployment");
const pod = deployment.spec.template.spec as Obj;
const container = (pod.containers as Obj[])[0]!;
const portNamed = (name: string): number => (container.ports as Obj[]).find((p) => p.name === name)!.containerPort as number;
const configText = one("ConfigMap", "game-gateway-config").data["config.yaml"] as string;
const config: GatewayConfig = parseConfig(configText, {}).config;
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe(`deploy/kubernetes (rendered by ${renderedBy})`, () => {
  test("every resource has an apiVersion its kind is served at, a name, and the kinds the issue asks for", () => {
    const served: Record<string, string> = {
      ConfigMap: "v1",
      Service: "v1",
      Deployment: "apps/v1",
      HorizontalPodAutoscaler: "autoscaling/v2",
      PodDisruptionBudget: "policy/v1",
      ServiceMonitor: "monitoring.coreos.com/v1",
      PrometheusRule: "monitoring.coreos.com/v1",
    };
    for (const d of docs) {
      expect({ kind: d.kind, apiVersion: d.apiVersion }).toEqual({ kind: d.kind, apiVersion: served[d.kind] });
      expect(typeof d.metadata?.name).toBe("string");
      expect(d.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(docs.map((d) => d.kind).sort()).toEqual(
      ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "PrometheusRule", "Service", "Service", "ServiceMonitor"],
    );
  });

  test("the ConfigMap is a config the gateway accepts, mounted where it loads it by default", () => {
    expect(config.server.listen_addr).toBe(":8080");
    const mount = (container.volumeMounts as Obj[]).find((m) => m.name === "config")!;
    const volume = (pod.volumes as Obj[]).find((v) => v.name === "config")!;
    expect(volume.configMap.name).toBe("game-gateway-config");
    expect(mount.subPath).toBeUndefined(); // a subPath mount never sees ConfigMap updates
    // The image's WORKDIR is /app and the gateway reads config/config.yaml from its working directory.
    expect(join(mount.mountPath, "config.yaml")).toBe("/app/config/config.yaml");
    expect(container.args ?? []).toEqual([]);
  });

  test("the Deployment's ports are the config's listeners; probes on /health and /ready at the admin port", () => {
    expect(parseHostPort(config.server.listen_addr)?.port).toBe(portNamed("game"));
    expect(portNamed("admin")).toBe(config.server.health_check_port);
    for (const probe of ["startupProbe", "livenessProbe"]) expect(container[probe].httpGet).toEqual({ path: "/health", port: "admin" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/ready", port: "admin" });
  });

  test("termination grace covers preStop + drain_delay + graceful_shutdown_timeout with a margin", () => {
    const preStop = container.lifecycle.preStop.sleep.seconds as number;
    const needed = preStop + config.server.drain_delay / 1000 + config.graceful_shutdown_timeout / 1000;
    expect(config.server.drain_delay).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(needed + 5);
    expect(pod.terminationGracePeriodSeconds).toBeLessThanOrEqual(needed + 30); // not so long a stuck pod lingers
  });

  test("the reference's environment from the downward API", () => {
    const env = new Map((container.env as Obj[]).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env.get("POD_NAME")).toBe("metadata.name");
    expect(env.get("POD_NAMESPACE")).toBe("metadata.namespace");
    expect(env.get("NODE_NAME")).toBe("spec.nodeName");
    expect(env.get("NODE_IP")).toBe("status.hostIP");
  });

  test("resources from the guide's capacity plan for max_connections; non-root, read-only root", () => {
    // 70m idle + 180m per 1,000 connections; ~131MB at 1,000 (performance guide, "Capacity Planning").
    const cpuMillis = 70 + (config.connection_pool.max_connections / 1000) * 180;
    expect(container.resources.requests.cpu).toBe(`${cpuMillis}m`);
    const mib = (q: string): number => Number(/^(\d+)Mi$/.exec(q)![1]);
    expect(mib(container.resources.requests.memory)).toBeGreaterThanOrEqual(131);
    expect(mib(container.resources.limits.memory)).toBeGreaterThanOrEqual(mib(container.resources.requests.memory));
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  });

  test("selectors select the pods; Services, ServiceMonitor and HPA name what exists", () => {
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(matches(one("PodDisruptionBudget").spec.selector.matchLabels, podLabels)).toBe(true);
    for (const svc of docs.filter((d) => d.kind === "Service")) {
      expect(matches(svc.spec.selector, podLabels)).toBe(true);
      for (const p of svc.spec.ports as Obj[]) expect(container.ports.some((c: Obj) => c.name === p.targetPort)).toBe(true);
    }
    // Per-IP limits need the client's address: the game Service must not SNAT it away.
    expect(one("Service", "game-gateway").spec.externalTrafficPolicy).toBe("Local");
    const monitor = one("ServiceMonitor");
    const scraped = docs.filter((d) => d.kind === "Service" && matches(monitor.spec.selector.matchLabels, d.metadata.labels ?? {}));
    expect(scraped.map((s) => s.metadata.name)).toEqual(["game-gateway-admin"]);
    expect(monitor.spec.endpoints.map((e: Obj) => [e.port, e.path])).toEqual([["admin", "/metrics"]]);
    expect((scraped[0]!.spec.ports as Obj[]).some((p) => p.name === "admin")).toBe(true);
    const hpa = one("HorizontalPodAutoscaler");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    expect(hpa.spec.metrics.map((m: Obj) => m.resource?.name ?? m.pods?.metric?.name)).toEqual(["cpu", "game_gateway_connections_active"]);
  });

  test("the PrometheusRule is deploy/prometheus-alerts.yaml, generated (bun scripts/k8s-prometheus-rule.ts)", () => {
    const alertsText = readFileSync(ALERTS_PATH, "utf8");
    expect(readFileSync(PROMETHEUS_RULE_PATH, "utf8")).toBe(prometheusRuleYaml(alertsText));
    expect(one("PrometheusRule").spec).toEqual(YAML.parse(alertsText));
  });
});

describe("Dockerfile", () => {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const instructions = text
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.trim().split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
  const all = (op: string) => instructions.filter((i) => i.op === op).map((i) => i.args);
  const final = instructions.slice(instructions.map((i) => i.op).lastIndexOf("FROM"));
  const finalOf = (op: string) => final.filter((i) => i.op === op).map((i) => i.args);

  test("multi-stage: builds in one stage, runs on distroless cc as a non-root user", () => {
    expect(all("FROM").length).toBe(2);
    expect(finalOf("FROM")[0]).toMatch(/^gcr\.io\/distroless\/cc-debian\d+:nonroot$/);
    expect(finalOf("COPY")).toEqual(["--from=build /src/dist/game-gateway /app/game-gateway"]);
    const user = finalOf("USER").at(-1)!;
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    expect(pod.securityContext.runAsUser).toBe(Number(user.split(":")[0]));
  });

  test("the Deployment's ports are exposed; the working directory is where the ConfigMap goes", () => {
    expect(finalOf("EXPOSE")).toEqual([`${portNamed("game")} ${portNamed("admin")}`]);
    expect(finalOf("WORKDIR")).toEqual(["/app"]);
  });

  test("SIGTERM drains; the documented stop timeout covers the drain with the default config", () => {
    expect(finalOf("STOPSIGNAL")).toEqual(["SIGTERM"]);
    const defaults = parseConfig("{}", {}).config;
    const stopTimeout = Number(/--stop-timeout (\d+)/.exec(text)![1]);
    expect(stopTimeout).toBeGreaterThanOrEqual((defaults.server.drain_delay + defaults.graceful_shutdown_timeout) / 1000 + 5);
    expect(text).toContain(`stop_grace_period: ${stopTimeout}s`);
  });

  test("HEALTHCHECK runs the binary's own healthcheck against /health on the admin port (no shell in the image)", () => {
    const hc = finalOf("HEALTHCHECK")[0]!;
    const cmd = JSON.parse(hc.slice(hc.indexOf("CMD ") + 4)) as string[];
    expect(cmd).toEqual(["/app/game-gateway", "healthcheck", "--url", `http://127.0.0.1:${portNamed("admin")}/health`]);
    expect(finalOf("ENTRYPOINT")).toEqual(['["/app/game-gateway"]']);
  });
});

describe("game-gateway healthcheck (arguments)", () => {
  test("defaults to /health on the default admin port; takes --url in every spelling; refuses what is not an HTTP URL", () => {
    expect(DEFAULT_HEALTH_URL).toBe(`http://127.0.0.1:${parseConfig("{}", {}).config.server.health_check_port}/health`);
    expect(parseArgs(["healthcheck"])).toEqual({ kind: "healthcheck", url: DEFAULT_HEALTH_URL });
    for (const argv of [["healthcheck", "--url", "http://h:1/x"], ["healthcheck", "-url=http://h:1/x"]]) {
      expect(parseArgs(argv)).toEqual({ kind: "healthcheck", url: "http://h:1/x" });
    }
    expect(() => parseArgs(["healthcheck", "--url", "127.0.0.1:9090/health"])).toThrow(UsageError);
    expect(() => parseArgs(["healthcheck", "--port", "9090"])).toThrow('healthcheck: unknown argument "--port"');
  });
});

describe("what the manifests name exists in the running gateway", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  let gateway: Gateway;
  let exposition: Exposition;
  const T = 10;

  beforeAll(async () => {
    const backend = await DemoBackend.start({ port: 0 });
    cleanup.push(() => backend.stop());
    // The ConfigMap's config as shipped, on ephemeral loopback ports and routed to a real backend.
    const raw = YAML.parse(configText) as Obj;
    raw.server.listen_addr = "127.0.0.1:0";
    raw.admin = { listen_addr: "127.0.0.1:0" };
    raw.routing.rules = [{ server_type: T, endpoints: [`127.0.0.1:${backend.port}`] }];
    const cfg = parseConfig(YAML.stringify(raw), {}).config;
    gateway = Gateway.start(cfg, { defaultMetrics: true, logger: new Logger("warn", new CapturedLog()), accessLogSink: new CapturedLog() });
    cleanup.push(() => gateway.stop());
    const client = await GameClient.connect("127.0.0.1", gateway.port);
    cleanup.push(() => client.close());
    client.send(1, serverIdFor(T), "hello");
    await client.next();
    exposition = parseExposition(await (await fetch(`http://127.0.0.1:${gateway.adminPort}/metrics`)).text());
  });

  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  test("every probe path answers 200 on the admin port, and the ServiceMonitor's path is the exposition", async () => {
    const paths = [container.startupProbe, container.livenessProbe, container.readinessProbe].map((p: Obj) => p.httpGet.path as string);
    for (const path of new Set(paths)) {
      const res = await fetch(`http://127.0.0.1:${gateway.adminPort}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
    const scrape = await fetch(`http://127.0.0.1:${gateway.adminPort}${one("ServiceMonitor").spec.endpoints[0].path}`);
    expect(scrape.headers.get("content-type")).toContain("text/plain");
  });

  test("the HPA's connections metric (and the adapter rule's series) is an exported gauge", () => {
    const name = one("HorizontalPodAutoscaler").spec.metrics[1].pods.metric.name as string;
    expect(exposition.types.get(name)).toBe("gauge");
    const adapterRule = /seriesQuery: '(\w+)\{/.exec(readFileSync(join(K8S, "hpa.yaml"), "utf8"))![1];
    expect(adapterRule).toBe(name);
    // One client is connected: the gauge counts it.
    expect(exposition.samples.find((s) => s.name === name)?.value).toBe(1);
  });

  test("`game-gateway healthcheck` exits 0 on a healthy /health, 1 on a refusing port or a non-2xx answer", async () => {
    // Asynchronous: the gateway answering runs on this test's event loop.
    const run = async (url: string): Promise<{ exitCode: number; stderr: string }> => {
      const child = Bun.spawn([process.execPath, MAIN, "healthcheck", "--url", url], { stdout: "ignore", stderr: "pipe" });
      const [exitCode, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
      return { exitCode, stderr };
    };
    const ok = await run(`http://127.0.0.1:${gateway.adminPort}/health`);
    expect({ exit: ok.exitCode, stderr: ok.stderr }).toEqual({ exit: 0, stderr: "" });
    // A port nothing listens on: bind one and close it.
    const spare = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const closedPort = spare.port;
    spare.stop(true);
    const refused = await run(`http://127.0.0.1:${closedPort}/health`);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`healthcheck: http://127.0.0.1:${closedPort}/health:`);
    const notFound = await run(`http://127.0.0.1:${gateway.adminPort}/no-such-path`);
    expect(notFound.exitCode).toBe(1);
    expect(notFound.stderr).toMatch(/HTTP (404|503)/);
  });
});
