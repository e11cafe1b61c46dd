// Writes deploy/kubernetes/prometheus-rule.yaml: deploy/prometheus-alerts.yaml's groups wrapped in a
// Prometheus Operator PrometheusRule, so the alerts have one source. Run after editing the alerts:
//   bun scripts/k8s-prometheus-rule.ts
// test/deploy/kubernetes.test.ts fails when the committed file is not what this produces.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const ALERTS_PATH = join(import.meta.dir, "../deploy/prometheus-alerts.yaml");
export const PROMETHEUS_RULE_PATH = join(import.meta.dir, "../deploy/kubernetes/prometheus-rule.yaml");

/**
 * The PrometheusRule for the alerts file's text. The text is indented, not parsed and re-dumped,
 * so the rules keep their comments and layout. The file's leading comment block is replaced by a
 * header naming its source.
 */
export function prometheusRuleYaml(alertsText: string): string {
  const lines = alertsText.split("\n");
  const start = lines.findIndex((l) => l.trim() !== "" && !l.startsWith("#"));
  if (start < 0 || !lines[start]!.startsWith("groups:")) throw new Error("prometheus-alerts.yaml: expected a top-level groups: after the leading comments");
  const body = lines
    .slice(start)
    .map((l) => (l === "" ? l : `  ${l}`))
    .join("\n");
  return [
    "# GENERATED from deploy/prometheus-alerts.yaml by `bun scripts/k8s-prometheus-rule.ts`: edit that file, then rerun.",
    "# The performance guide's alerts for the Prometheus Operator (test/deploy/kubernetes.test.ts checks they match).",
    "apiVersion: monitoring.coreos.com/v1",
    "kind: PrometheusRule",
    "metadata:",
    "  name: game-gateway",
    "spec:",
    body,
  ].join("\n");
}

if (import.meta.main) {
  writeFileSync(PROMETHEUS_RULE_PATH, prometheusRuleYaml(readFileSync(ALERTS_PATH, "utf8")));
  console.log(`wrote ${PROMETHEUS_RULE_PATH}`);
}
