// The validated, defaulted settings of one stack (one cluster). Everything downstream (Corefile,
// Kubernetes objects, node scripts, the component) reads these types, never raw config.

import type { DiscoverSettings } from "./discovery";
import type { BatchLimit, RolloutPlanSettings } from "./rollout";

export type KubeProxyMode = "ipvs" | "iptables" | "nftables";
export type KubeletFormat = "auto" | "env-file" | "config-file" | "unit-file";

/** Stands in for a secret value wherever the secret itself is not available (render). */
export const SECRET_PLACEHOLDER = "[secret]";

export interface CacheSettings {
  /** Cluster-domain zone: `cache { success <successSize> <successTtl> }`. */
  successSize: number;
  successTtl: number;
  /** Cluster-domain zone: `cache { denial <denialSize> <denialTtl> }`. */
  denialSize: number;
  denialTtl: number;
  /** The other zones: `cache <ttl>`. */
  ttl: number;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  tolerationSeconds?: number;
}

export interface KubeletFile {
  format: KubeletFormat;
  /** Overrides the well-known location(s) for the format. */
  path?: string;
}

export interface SshProxy {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  hostKey?: string;
}

/** One node after the `ssh` and `kubelet` defaults are applied. */
export interface NodeSettings {
  name: string;
  host: string;
  port: number;
  user: string;
  /** Secret: never rendered, logged or put in command text. */
  privateKey?: string;
  hostKey?: string;
  proxy?: SshProxy;
  /** Wrap the node script in `sudo -n` (only when user is not root). */
  sudo: boolean;
  kubelet: KubeletFile;
}

/** Prometheus Operator objects, each created only when asked and when its CRD is installed. */
export interface MonitoringSettings {
  serviceMonitor: boolean;
  prometheusRule: boolean;
  /** Extra labels on both (the operator selects ServiceMonitors and rules by label). */
  labels: Record<string, string>;
}

export interface RolloutSettings extends RolloutPlanSettings {
  /** How long a node waits for its cache to answer before giving up, changing nothing. */
  readyTimeoutSeconds: number;
  /** How long a node waits for kubelet to come back healthy after a restart. */
  kubeletTimeoutSeconds: number;
}

export interface Settings {
  /** Absent: read from Service kube-system/<dnsServiceName> at program time. */
  clusterDnsIp?: string;
  dnsServiceName: string;
  localDnsIp: string;
  /** kubelet gets [localDnsIp, clusterDnsIp]: pods fall back to kube-dns when the cache is down. */
  fallbackToKubeDns: boolean;
  /** Also set clusterDNS in kubeadm's kube-system/kubelet-config, and put it back on destroy. */
  kubeadmKubeletConfig: boolean;
  /** Read each node's running cluster DNS (configz, through the API server) at program time. */
  liveView: boolean;
  /** After an up, restart the workloads whose pods still ask kube-dns (podsToRecreate.ts). */
  restartWorkloads: boolean;
  clusterDomain: string;
  kubeProxyMode: KubeProxyMode;
  image: string;
  cache: CacheSettings;
  healthPort: number;
  metricsPort: number;
  resources: ResourceRequirements;
  priorityClassName: string;
  tolerations: Toleration[];
  nodeSelector: Record<string, string>;
  monitoring: MonitoringSettings;
  nodes: NodeSettings[];
  /** Set: the cluster's Nodes are the fleet, and `nodes` only override them (discovery.ts). */
  discover?: DiscoverSettings;
  rollout: RolloutSettings;
  /** The one directory on each node that holds all node-side state. */
  stateDir: string;
}

/** Settings once the kube-dns ClusterIP is known (from config or from the cluster). */
export type ResolvedSettings = Settings & {
  clusterDnsIp: string;
  /**
   * The DaemonSet in the cluster is of an earlier version, whose pods tear down on exit: this
   * update replaces each old pod first (daemonSetRollout.ts). Default: false.
   */
  oldPodsTearDown?: boolean;
};

export const NAMESPACE = "kube-system";
export const APP_NAME = "node-local-dns";
export const UPSTREAM_SERVICE_NAME = "kube-dns-upstream";

export const DEFAULTS = {
  dnsServiceName: "kube-dns",
  localDnsIp: "169.254.20.10",
  fallbackToKubeDns: false,
  kubeadmKubeletConfig: false,
  liveView: true,
  restartWorkloads: false,
  clusterDomain: "cluster.local",
  kubeProxyMode: "ipvs" as KubeProxyMode,
  image: "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8",
  cache: { successSize: 9984, successTtl: 30, denialSize: 9984, denialTtl: 5, ttl: 30 },
  healthPort: 9254,
  metricsPort: 9253,
  resources: { requests: { cpu: "25m", memory: "50Mi" }, limits: { memory: "400Mi" } },
  priorityClassName: "system-node-critical",
  tolerations: [
    { key: "CriticalAddonsOnly", operator: "Exists" },
    { effect: "NoExecute", operator: "Exists" },
    { effect: "NoSchedule", operator: "Exists" },
  ] as Toleration[],
  nodeSelector: {} as Record<string, string>,
  monitoring: {
    serviceMonitor: false,
    prometheusRule: false,
    labels: {} as Record<string, string>,
  },
  ssh: { user: "root", port: 22, sudo: true },
  kubelet: { format: "auto" as KubeletFormat },
  rollout: {
    canary: 1,
    maxBatch: { percent: 10 } as BatchLimit,
    growth: 2,
    readyTimeoutSeconds: 120,
    kubeletTimeoutSeconds: 60,
  },
  stateDir: "/var/lib/nodelocaldns",
} as const;
