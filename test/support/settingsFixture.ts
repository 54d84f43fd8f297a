// Test-only: ResolvedSettings built from DEFAULTS, with kube-dns at 10.96.0.10 and no nodes.

import { DEFAULTS, ResolvedSettings } from "../../components/settings";

/** Fresh settings each call (no object shared with DEFAULTS or another call). */
export function resolvedSettings(overrides: Partial<ResolvedSettings> = {}): ResolvedSettings {
  const base: ResolvedSettings = {
    clusterDnsIp: "10.96.0.10",
    dnsServiceName: DEFAULTS.dnsServiceName,
    localDnsIp: DEFAULTS.localDnsIp,
    fallbackToKubeDns: DEFAULTS.fallbackToKubeDns,
    kubeadmKubeletConfig: DEFAULTS.kubeadmKubeletConfig,
    liveView: DEFAULTS.liveView,
    restartWorkloads: DEFAULTS.restartWorkloads,
    clusterDomain: DEFAULTS.clusterDomain,
    kubeProxyMode: DEFAULTS.kubeProxyMode,
    image: DEFAULTS.image,
    cache: { ...DEFAULTS.cache },
    healthPort: DEFAULTS.healthPort,
    metricsPort: DEFAULTS.metricsPort,
    resources: structuredClone(DEFAULTS.resources),
    priorityClassName: DEFAULTS.priorityClassName,
    tolerations: structuredClone(DEFAULTS.tolerations),
    nodeSelector: { ...DEFAULTS.nodeSelector },
    monitoring: structuredClone(DEFAULTS.monitoring),
    nodes: [],
    rollout: { ...DEFAULTS.rollout },
    stateDir: DEFAULTS.stateDir,
  };
  return { ...base, ...overrides };
}

/** Non-default addresses, domain and ports (valid config), shared by the renderer tests. */
export const NON_DEFAULT_NETWORK = {
  localDnsIp: "169.254.25.10",
  clusterDnsIp: "10.233.0.3",
  clusterDomain: "corp.example",
  healthPort: 8181,
  metricsPort: 9354,
} satisfies Partial<ResolvedSettings>;
