// Stack configuration -> Settings. Pure: the same function serves `pulumi up` (values from the
// engine) and the offline render (values read from Pulumi.<stack>.yaml), so both reject the same
// config with the same messages, before anything is registered or written.
import { canonicalIp, isDnsLabel, isDnsName, isIp, isIPv4, isLinkLocalIPv4 } from "./addresses";
import { Checker, ConfigError, join, RawConfig } from "./configCheck";
import {
  checkSecret,
  isStateDir,
  parseKubeletFile,
  parseDiscover,
  parseNodes,
  parseSsh,
  PORT,
  STATE_DIR_PARENTS,
} from "./configNodes";
import {
  parseImage,
  parseLabels,
  parseNodeSelector,
  parseResources,
  parseTolerations,
} from "./configPod";
import type { BatchLimit } from "./rollout";
import { DEFAULTS, Settings } from "./settings";

export { ConfigError, RawConfig };

export const PROJECT = "nodelocaldns";

export interface ParsedConfig {
  settings: Settings;
  warnings: string[];
}

/** Every config key, and whether its value is structured (JSON text from the engine, YAML maps or
 * lists in stack files) rather than a scalar. The order is the one messages list them in. */
const KEYS = {
  clusterDnsIp: false,
  dnsServiceName: false,
  localDnsIp: false,
  fallbackToKubeDns: false,
  kubeadmKubeletConfig: false,
  liveView: false,
  restartWorkloads: false,
  clusterDomain: false,
  kubeProxyMode: false,
  image: false,
  cache: true,
  healthPort: false,
  metricsPort: false,
  resources: true,
  priorityClassName: false,
  tolerations: true,
  nodeSelector: true,
  monitoring: true,
  nodes: true,
  discover: true,
  ssh: true,
  kubelet: true,
  rollout: true,
  stateDir: false,
} as const;

export const CONFIG_KEYS = Object.keys(KEYS) as (keyof typeof KEYS)[];
export const STRUCTURED_KEYS: readonly string[] = CONFIG_KEYS.filter((key) => KEYS[key]);

const KUBE_PROXY_MODES = ["ipvs", "iptables", "nftables"] as const;

/** node-cache serves its own metrics on 0.0.0.0:9353 (-metrics-listen-address), host network. */
const NODE_CACHE_OWN_METRICS_PORT = 9353;

export function parseSettings(raw: RawConfig): ParsedConfig {
  const c = new Checker(PROJECT, raw.isSecret);
  const v = raw.values;
  c.unknownKeys("", v, CONFIG_KEYS);

  // Canonical form: the node program compares localDnsIp with what `ip addr` prints.
  const ip = (key: "clusterDnsIp" | "localDnsIp") => {
    const value = c.string(key, v[key], isIp, "an IP address");
    return value === undefined ? undefined : canonicalIp(value);
  };
  const clusterDnsIp = ip("clusterDnsIp");
  const localDnsIp = ip("localDnsIp") ?? DEFAULTS.localDnsIp;
  if (clusterDnsIp !== undefined && clusterDnsIp === localDnsIp) {
    c.problem("localDnsIp", `must differ from clusterDnsIp (both are ${localDnsIp})`);
  }
  if (clusterDnsIp !== undefined && isIPv4(clusterDnsIp) !== isIPv4(localDnsIp)) {
    c.problem(
      "localDnsIp",
      `${localDnsIp} and clusterDnsIp ${clusterDnsIp} must be of one address family (the cache replaces the kube-dns entry of its own family)`,
    );
  }
  if (isIPv4(localDnsIp) && !isLinkLocalIPv4(localDnsIp)) {
    c.warn("localDnsIp", `${localDnsIp} is not link-local (169.254.0.0/16) as upstream recommends`);
  }

  // One design for every mode: the cache binds only localDnsIp and kubelet is switched to it, so
  // nothing depends on kube-proxy intercepting the kube-dns ClusterIP (README "kube-proxy modes").
  const kubeProxyMode =
    c.oneOf("kubeProxyMode", v.kubeProxyMode, KUBE_PROXY_MODES) ?? DEFAULTS.kubeProxyMode;

  const healthPort = c.integer("healthPort", v.healthPort, ...PORT) ?? DEFAULTS.healthPort;
  const metricsPort = c.integer("metricsPort", v.metricsPort, ...PORT) ?? DEFAULTS.metricsPort;
  if (healthPort === metricsPort) {
    c.problem("metricsPort", `must differ from healthPort (both are ${healthPort})`);
  }
  for (const [key, port] of [
    ["healthPort", healthPort],
    ["metricsPort", metricsPort],
  ] as const) {
    if (port === 53) c.problem(key, "53 is the DNS port itself");
    if (port === NODE_CACHE_OWN_METRICS_PORT) {
      c.problem(key, `${port} is node-cache's own metrics listener on the host network`);
    }
  }

  const ssh = parseSsh(c, v.ssh);
  const kubelet = parseKubeletFile(c, "kubelet", v.kubelet, DEFAULTS.kubelet);
  checkSecret(c, raw, "ssh.privateKey", ssh.privateKey);
  checkSecret(c, raw, "ssh.proxy.privateKey", ssh.proxy?.privateKey);

  const settings: Settings = {
    clusterDnsIp,
    dnsServiceName:
      c.string("dnsServiceName", v.dnsServiceName, isDnsLabel, "a DNS label") ??
      DEFAULTS.dnsServiceName,
    localDnsIp,
    fallbackToKubeDns:
      c.boolean("fallbackToKubeDns", v.fallbackToKubeDns) ?? DEFAULTS.fallbackToKubeDns,
    kubeadmKubeletConfig:
      c.boolean("kubeadmKubeletConfig", v.kubeadmKubeletConfig) ?? DEFAULTS.kubeadmKubeletConfig,
    liveView: c.boolean("liveView", v.liveView) ?? DEFAULTS.liveView,
    restartWorkloads:
      c.boolean("restartWorkloads", v.restartWorkloads) ?? DEFAULTS.restartWorkloads,
    clusterDomain:
      c.string("clusterDomain", v.clusterDomain, isDnsName, "a DNS name") ?? DEFAULTS.clusterDomain,
    kubeProxyMode,
    image: parseImage(c, v.image),
    cache: parseCache(c, v.cache),
    healthPort,
    metricsPort,
    resources: parseResources(c, v.resources),
    priorityClassName:
      c.string("priorityClassName", v.priorityClassName, isDnsName, "a priority class name") ??
      DEFAULTS.priorityClassName,
    tolerations: parseTolerations(c, v.tolerations),
    nodeSelector: parseNodeSelector(c, v.nodeSelector),
    monitoring: parseMonitoring(c, v.monitoring),
    // Hosts are optional exactly when discovery is on; null, like absent, leaves it off.
    nodes: parseNodes(c, raw, v.nodes, ssh, kubelet, v.discover != null),
    rollout: parseRollout(c, v.rollout),
    stateDir:
      c.string(
        "stateDir",
        v.stateDir,
        isStateDir,
        `a directory of its own under ${STATE_DIR_PARENTS.join(", ")} (plain names only)`,
      ) ?? DEFAULTS.stateDir,
  };

  const discover = parseDiscover(c, v.discover, ssh, kubelet);
  if (discover !== undefined) settings.discover = discover;

  if (c.problems.length > 0) throw new ConfigError(c.problems);
  return { settings, warnings: c.warnings };
}

function parseCache(c: Checker, value: unknown): Settings["cache"] {
  const d = DEFAULTS.cache;
  const obj = c.object("cache", value) ?? {};
  c.unknownKeys("cache", obj, Object.keys(d));
  const int = (k: keyof typeof d, min: number) =>
    c.integer(join("cache", k), obj[k], min, 2 ** 31 - 1) ?? d[k];
  return {
    successSize: int("successSize", 1),
    successTtl: int("successTtl", 0),
    denialSize: int("denialSize", 1),
    denialTtl: int("denialTtl", 0),
    ttl: int("ttl", 0),
  };
}

function parseMonitoring(c: Checker, value: unknown): Settings["monitoring"] {
  const d = DEFAULTS.monitoring;
  const obj = c.object("monitoring", value) ?? {};
  c.unknownKeys("monitoring", obj, Object.keys(d));
  return {
    serviceMonitor: c.boolean("monitoring.serviceMonitor", obj.serviceMonitor) ?? d.serviceMonitor,
    prometheusRule: c.boolean("monitoring.prometheusRule", obj.prometheusRule) ?? d.prometheusRule,
    labels: parseLabels(c, "monitoring.labels", obj.labels) ?? { ...d.labels },
  };
}

function parseRollout(c: Checker, value: unknown): Settings["rollout"] {
  const d = DEFAULTS.rollout;
  const obj = c.object("rollout", value) ?? {};
  c.unknownKeys("rollout", obj, ["batchSize", ...Object.keys(d)]);
  const batchSize = c.integer("rollout.batchSize", obj.batchSize, 1, 10000);
  const growing = ["canary", "maxBatch", "growth"].filter((k) => obj[k] !== undefined);
  if (batchSize !== undefined && growing.length > 0) {
    c.problem(
      "rollout.batchSize",
      `fixed batches cannot be combined with ${growing.join(", ")}: set one or the other`,
    );
  }
  const rollout: Settings["rollout"] = {
    canary: c.integer("rollout.canary", obj.canary, 1, 10000) ?? d.canary,
    maxBatch: parseBatchLimit(c, "rollout.maxBatch", obj.maxBatch) ?? d.maxBatch,
    growth: c.integer("rollout.growth", obj.growth, 1, 100) ?? d.growth,
    readyTimeoutSeconds:
      c.integer("rollout.readyTimeoutSeconds", obj.readyTimeoutSeconds, 1, 3600) ??
      d.readyTimeoutSeconds,
    kubeletTimeoutSeconds:
      c.integer("rollout.kubeletTimeoutSeconds", obj.kubeletTimeoutSeconds, 1, 600) ??
      d.kubeletTimeoutSeconds,
  };
  if (batchSize !== undefined) rollout.batchSize = batchSize;
  return rollout;
}

/** A number of nodes (5, "5") or a share of them ("10%", 1 to 100). */
function parseBatchLimit(c: Checker, path: string, value: unknown): BatchLimit | undefined {
  if (value === undefined || value === null) return undefined;
  const percent = typeof value === "string" ? /^([0-9]{1,3})%$/.exec(value) : null;
  if (percent !== null) {
    const n = Number(percent[1]);
    if (n >= 1 && n <= 100) return { percent: n };
    c.problem(path, `${value} is out of range (1% to 100%)`);
    return undefined;
  }
  if (typeof value === "string" && !/^[0-9]+$/.test(value)) {
    c.problem(path, `${c.show(path, value)} is not a number of nodes or a share ("10%")`);
    return undefined;
  }
  const count = c.integer(path, value, 1, 10000);
  return count === undefined ? undefined : { count };
}
