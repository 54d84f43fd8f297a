// The Prometheus Operator objects (components/monitoring.ts), pure: what is rendered, that the
// ServiceMonitor really selects the metrics Service the component creates, and which objects
// are created for the CRDs a cluster has. The CoreDNS metric names the alerts use are checked
// against a running cache in the end-to-end harness (test/e2e/harness.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSettings } from "../components/config";
import { nodeLocalDnsObjects } from "../components/kubernetesObjects";
import {
  alerts,
  MONITORING_CRDS,
  monitoringObjects,
  monitoringPlan,
} from "../components/monitoring";
import { DEFAULTS } from "../components/settings";
import { resolvedSettings } from "./support/settingsFixture";

const both = { ...DEFAULTS.monitoring, serviceMonitor: true, prometheusRule: true };

describe("monitoringObjects", () => {
  it("renders nothing unless asked", () => {
    assert.deepEqual(monitoringObjects(resolvedSettings()), {});
  });

  it("a ServiceMonitor that selects the metrics Service and scrapes its metrics port", () => {
    const s = resolvedSettings({ monitoring: { ...both, labels: { release: "prom" } } });
    const monitor = monitoringObjects(s).serviceMonitor!;
    const service = nodeLocalDnsObjects(s).metricsService;
    const spec = monitor.spec as {
      selector: { matchLabels: Record<string, string> };
      namespaceSelector: { matchNames: string[] };
      endpoints: { port: string }[];
    };
    const labels = (service.metadata as { labels: Record<string, string> }).labels;
    for (const [key, value] of Object.entries(spec.selector.matchLabels)) {
      assert.equal(labels[key], value, `the Service carries ${key}`);
    }
    assert.deepEqual(spec.namespaceSelector.matchNames, [service.metadata.namespace]);
    const ports = (service.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
    assert.ok(ports.includes(spec.endpoints[0]!.port), "the endpoint names a port of the Service");
    assert.deepEqual(monitor.metadata.labels, { "k8s-app": "node-local-dns", release: "prom" });
  });

  it("a PrometheusRule with the four alerts, each naming the node", () => {
    const rule = monitoringObjects(resolvedSettings({ monitoring: both })).prometheusRule!;
    const groups = (rule.spec as { groups: { name: string; rules: { alert: string }[] }[] }).groups;
    assert.deepEqual(
      groups[0]!.rules.map((r) => r.alert),
      [
        "NodeLocalDNSCacheNotReady",
        "NodeLocalDNSCacheServfails",
        "NodeLocalDNSCacheForwardFailing",
        "NodeLocalDNSCacheUpstreamsDown",
      ],
    );
    for (const alert of alerts(resolvedSettings())) {
      assert.match(alert.expr, /\(node\)/, `${alert.alert} keeps the node label`);
      assert.match(alert.annotations.summary, /\{\{ \$labels\.node \}\}/);
    }
  });

  it("a cache pod not ready is critical, and a warning with fallbackToKubeDns", () => {
    const notReady = (fallbackToKubeDns: boolean) =>
      alerts(resolvedSettings({ fallbackToKubeDns }))[0]!;
    assert.equal(notReady(false).labels.severity, "critical");
    assert.match(notReady(false).annotations.description, /DNS fails in its pods/);
    assert.equal(notReady(true).labels.severity, "warning");
    assert.match(notReady(true).annotations.description, /wait for a resolver timeout/);
  });
});

describe("monitoringPlan", () => {
  const installed = (...names: string[]) => new Set(names);
  it("creates what is asked for and installed; names each CRD that is missing", () => {
    assert.deepEqual(monitoringPlan(DEFAULTS.monitoring, installed()), {
      create: [],
      warnings: [],
    });
    assert.deepEqual(monitoringPlan(both, installed(...MONITORING_CRDS)).create, [
      "serviceMonitor",
      "prometheusRule",
    ]);
    const half = monitoringPlan(both, installed("servicemonitors.monitoring.coreos.com"));
    assert.deepEqual(half.create, ["serviceMonitor"]);
    assert.deepEqual(half.warnings, [
      "nodelocaldns:monitoring.prometheusRule: skipped: CRD prometheusrules.monitoring.coreos.com is not installed (install the Prometheus Operator's CRDs, then run up again)",
    ]);
  });

  it("keeps what is asked for when the cluster cannot be asked (a failed read drops nothing)", () => {
    const plan = monitoringPlan(both, { unknown: "connect ECONNREFUSED" });
    assert.deepEqual(plan.create, ["serviceMonitor", "prometheusRule"]);
    assert.equal(plan.warnings.length, 2);
    assert.match(
      plan.warnings[0]!,
      /cannot tell whether CRD .* is installed \(connect ECONNREFUSED\); declared as asked/,
    );
  });
});

describe("the monitoring key", () => {
  const raw = (monitoring: unknown) => ({
    values: { nodes: [], monitoring },
    isSecret: () => false,
  });
  it("defaults to nothing; takes booleans and labels", () => {
    assert.deepEqual(parseSettings(raw(undefined)).settings.monitoring, DEFAULTS.monitoring);
    assert.deepEqual(
      parseSettings(raw({ serviceMonitor: "true", labels: { release: "prom" } })).settings
        .monitoring,
      { serviceMonitor: true, prometheusRule: false, labels: { release: "prom" } },
    );
  });

  it("names every bad key at once", () => {
    assert.throws(
      () =>
        parseSettings(
          raw({ serviceMonitors: true, prometheusRule: "yes", labels: { "a b": "c" } }),
        ),
      (err: Error) =>
        /monitoring\.serviceMonitors: unknown key/.test(err.message) &&
        /monitoring\.prometheusRule: must be true or false, got "yes"/.test(err.message) &&
        /monitoring\.labels\.a b: the key is not a label key/.test(err.message),
    );
  });
});
