// Prometheus Operator objects for the cache, as pure data: a ServiceMonitor for the metrics
// Service and a PrometheusRule with the alerts that matter for a switched fleet. Each is created
// only when asked (settings.monitoring) and when its CRD is installed (monitoringPlan); the
// program reads which CRDs are (fleetSources.ts), the component registers the objects.
//
// The CoreDNS metric names in the rules were read from the metrics endpoint of CoreDNS 1.13.2,
// the version node-cache 1.26 links (the end-to-end harness checks them against a running cache).
import type { KubernetesObject } from "./kubernetesObjects";
import { APP_NAME, MonitoringSettings, NAMESPACE, ResolvedSettings } from "./settings";

export const MONITORING_API_VERSION = "monitoring.coreos.com/v1";

/** Per object: its kind, its CRD (as `kubectl get crd` names it), its resource name's suffix. */
export const MONITORING_KINDS = {
  serviceMonitor: {
    kind: "ServiceMonitor",
    crd: "servicemonitors.monitoring.coreos.com",
    resourceSuffix: "service-monitor",
  },
  prometheusRule: {
    kind: "PrometheusRule",
    crd: "prometheusrules.monitoring.coreos.com",
    resourceSuffix: "prometheus-rule",
  },
} as const;

export type MonitoringKind = keyof typeof MONITORING_KINDS;
const KINDS = Object.keys(MONITORING_KINDS) as MonitoringKind[];
/** Every CRD the monitoring objects need. */
export const MONITORING_CRDS = KINDS.map((k) => MONITORING_KINDS[k].crd);
const JOB = APP_NAME;
/** Where the DNS cache's pods run (kube-state-metrics' series for them). */
const PODS = `namespace="${NAMESPACE}",pod=~"${APP_NAME}-.+"`;

function metadata(s: ResolvedSettings) {
  return {
    name: APP_NAME,
    namespace: NAMESPACE,
    labels: { "k8s-app": APP_NAME, ...s.monitoring.labels },
  };
}

/** Scrapes the metrics Service's endpoints (one per node), labelled with their node. */
function serviceMonitor(s: ResolvedSettings): KubernetesObject {
  return {
    apiVersion: MONITORING_API_VERSION,
    kind: MONITORING_KINDS.serviceMonitor.kind,
    metadata: metadata(s),
    spec: {
      // job="node-local-dns", from the Service's k8s-app label.
      jobLabel: "k8s-app",
      selector: { matchLabels: { "k8s-app": APP_NAME } },
      namespaceSelector: { matchNames: [NAMESPACE] },
      endpoints: [
        {
          port: "metrics",
          interval: "30s",
          relabelings: [{ sourceLabels: ["__meta_kubernetes_pod_node_name"], targetLabel: "node" }],
        },
      ],
    },
  };
}

interface Alert {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: "critical" | "warning" };
  annotations: { summary: string; description: string };
}

/** The alerts: each names the node whose pods are affected. */
export function alerts(s: ResolvedSettings): Alert[] {
  const pods = s.fallbackToKubeDns
    ? "its pods wait for a resolver timeout, then ask kube-dns"
    : "DNS fails in its pods";
  return [
    {
      alert: "NodeLocalDNSCacheNotReady",
      expr:
        `(kube_pod_status_ready{${PODS},condition="true"} == 0)` +
        ` * on (namespace, pod) group_left (node) kube_pod_info{${PODS}}`,
      for: "5m",
      labels: { severity: s.fallbackToKubeDns ? "warning" : "critical" },
      annotations: {
        summary: "The DNS cache on node {{ $labels.node }} is not ready",
        description:
          `kubelet on {{ $labels.node }} gives pods ${s.localDnsIp} as their DNS server; ` +
          `while the cache pod {{ $labels.pod }} is not ready, ${pods}.`,
      },
    },
    {
      alert: "NodeLocalDNSCacheServfails",
      expr:
        `sum by (node) (rate(coredns_dns_responses_total{job="${JOB}",rcode="SERVFAIL"}[5m]))` +
        ` / sum by (node) (rate(coredns_dns_responses_total{job="${JOB}"}[5m])) > 0.05`,
      for: "10m",
      labels: { severity: "warning" },
      annotations: {
        summary: "The DNS cache on node {{ $labels.node }} answers SERVFAIL to over 5% of queries",
        description:
          "Its upstreams (kube-dns through kube-dns-upstream, or the node's resolv.conf) fail to answer it.",
      },
    },
    {
      alert: "NodeLocalDNSCacheForwardFailing",
      expr: `sum by (node) (rate(coredns_proxy_healthcheck_failures_total{job="${JOB}",proxy_name="forward"}[5m])) > 0`,
      for: "5m",
      labels: { severity: "warning" },
      annotations: {
        summary: "The DNS cache on node {{ $labels.node }} fails health checks of an upstream",
        description:
          "An upstream (kube-dns-upstream or the node's resolv.conf nameservers) does not answer its health checks.",
      },
    },
    {
      alert: "NodeLocalDNSCacheUpstreamsDown",
      expr: `sum by (node) (increase(coredns_forward_healthcheck_broken_total{job="${JOB}"}[5m])) > 0`,
      for: "0m",
      labels: { severity: "critical" },
      annotations: {
        summary:
          "Every upstream of the DNS cache on node {{ $labels.node }} failed its health checks",
        description:
          "The cache then tries upstreams at random; queries it cannot answer from its cache fail.",
      },
    },
  ];
}

function prometheusRule(s: ResolvedSettings): KubernetesObject {
  return {
    apiVersion: MONITORING_API_VERSION,
    kind: MONITORING_KINDS.prometheusRule.kind,
    metadata: metadata(s),
    spec: { groups: [{ name: APP_NAME, rules: alerts(s) }] },
  };
}

/** The objects asked for in settings.monitoring, by kind. */
export function monitoringObjects(
  s: ResolvedSettings,
): Partial<Record<MonitoringKind, KubernetesObject>> {
  return {
    ...(s.monitoring.serviceMonitor ? { serviceMonitor: serviceMonitor(s) } : {}),
    ...(s.monitoring.prometheusRule ? { prometheusRule: prometheusRule(s) } : {}),
  };
}

export interface MonitoringPlan {
  /** The kinds to create: asked for, and their CRD is installed. */
  create: MonitoringKind[];
  /** One line per kind asked for but skipped, naming its CRD. */
  warnings: string[];
}

/**
 * Which asked-for objects to create, given the CRDs the cluster has, or why the cluster could not
 * be asked (then every object asked for, with a warning).
 */
export function monitoringPlan(
  asked: MonitoringSettings,
  installed: ReadonlySet<string> | { unknown: string },
): MonitoringPlan {
  const plan: MonitoringPlan = { create: [], warnings: [] };
  for (const kind of KINDS.filter((k) => asked[k])) {
    const crd = MONITORING_KINDS[kind].crd;
    // A read that failed must not drop objects an earlier up created: they are kept as asked,
    // and the kubernetes provider fails clearly if the CRD is really missing.
    if ("unknown" in installed) {
      plan.create.push(kind);
      plan.warnings.push(
        `nodelocaldns:monitoring.${kind}: cannot tell whether CRD ${crd} is installed (${installed.unknown}); declared as asked`,
      );
    } else if (installed.has(crd)) {
      plan.create.push(kind);
    } else {
      plan.warnings.push(
        `nodelocaldns:monitoring.${kind}: skipped: CRD ${crd} is not installed (install the Prometheus Operator's CRDs, then run up again)`,
      );
    }
  }
  return plan;
}
