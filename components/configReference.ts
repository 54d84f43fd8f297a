// The configuration reference: every key the config parser knows, its default (taken from
// DEFAULTS, so it cannot drift from the code) and what it does, as the Markdown table the README
// carries between `<!-- config-reference -->` markers (test/readme.test.ts compares them).
import { CONFIG_KEYS } from "./config";
import { DEFAULTS } from "./settings";

type Key = (typeof CONFIG_KEYS)[number];

const code = (text: string) => `\`${text}\``;
const inline = (value: unknown) => code(JSON.stringify(value).replace(/"([A-Za-z]+)":/g, "$1: "));

/** Per key: its default as shown, and what it means. */
const REFERENCE: Record<Key, [string, string]> = {
  clusterDnsIp: [
    "read from the cluster",
    `kube-dns ClusterIP. Unset: read from Service \`kube-system/<dnsServiceName>\` (not declared in Pulumi.yaml: the CLI would require it)`,
  ],
  dnsServiceName: [
    code(DEFAULTS.dnsServiceName),
    "the cluster DNS Service read when `clusterDnsIp` is unset",
  ],
  localDnsIp: [
    code(DEFAULTS.localDnsIp),
    "address the cache binds on every node, kubelet's new cluster DNS; one address family with `clusterDnsIp` (a warning when not in 169.254.0.0/16)",
  ],
  fallbackToKubeDns: [
    code(String(DEFAULTS.fallbackToKubeDns)),
    '`true`: kubelet gets `[localDnsIp, clusterDnsIp]`, so pods fall back to kube-dns when their node\'s cache is down (cost: README "Fallback to kube-dns")',
  ],
  kubeadmKubeletConfig: [
    code(String(DEFAULTS.kubeadmKubeletConfig)),
    '`true` on kubeadm clusters: kubelet\'s cluster DNS is also set in `kube-system/kubelet-config`, so nodes that join or upgrade keep the cache; destroy puts the exact original value back (README "kubeadm clusters")',
  ],
  liveView: [
    code(String(DEFAULTS.liveView)),
    "at program time (preview too), read each node's running cluster DNS through the API server's configz proxy (RBAC `nodes/proxy`) and report it (stack output `kubeletLive`, one summary line); switch drifted nodes again and read changed nodes after their switch (README \"Live view\")",
  ],
  restartWorkloads: [
    code(String(DEFAULTS.restartWorkloads)),
    '`true`: after each `up`, restart the Deployments, StatefulSets and DaemonSets whose pods were set up before a switch that `up` made, as `kubectl rollout restart` does (RBAC `patch` on them); bare pods are only reported (README "Pods to recreate")',
  ],
  clusterDomain: [code(DEFAULTS.clusterDomain), "cluster DNS domain"],
  kubeProxyMode: [
    code(DEFAULTS.kubeProxyMode),
    '`ipvs`, `iptables` or `nftables`: the same design in each (README "kube-proxy modes")',
  ],
  image: [
    code(DEFAULTS.image),
    "node-cache image, with a tag or a digest (no implicit `:latest`); set your mirror",
  ],
  cache: [
    inline(DEFAULTS.cache),
    "cluster zone `cache { success …; denial … }`, other zones `cache <ttl>`",
  ],
  healthPort: [code(String(DEFAULTS.healthPort)), "health endpoint on `localDnsIp` (host network)"],
  metricsPort: [
    code(String(DEFAULTS.metricsPort)),
    "Prometheus port (host network); 9353 is node-cache's own",
  ],
  resources: [
    inline(DEFAULTS.resources),
    "container resources: `cpu`, `memory`, `ephemeral-storage`, `hugepages-<size>` or `domain/name`; quantities as the API server reads them; requests not above limits",
  ],
  priorityClassName: [code(DEFAULTS.priorityClassName), "pod priority class"],
  tolerations: ["upstream's three", "pod tolerations, checked as the API server checks them"],
  nodeSelector: ["none", "pod node selector (label keys and values)"],
  monitoring: [
    "none",
    '`serviceMonitor` and `prometheusRule` (booleans), `labels` (on both): Prometheus Operator objects, created only when their CRDs are installed (README "Monitoring")',
  ],
  nodes: [
    code("[]"),
    "the nodes whose kubelet is switched: `name`, `host`, and per node `port`, `user`, `privateKey`, `hostKey`, `proxy`, `kubelet` (see below); with `discover`, an entry named after a Node overrides it and may omit `host`",
  ],
  discover: [
    "none",
    '`{}` or more: the cluster\'s Nodes are the fleet: `selector` (a label selector, kubectl syntax), `exclude` (node names), `addressType` (`InternalIP`, `ExternalIP` or `Hostname`; default `InternalIP`) (README "Discovery")',
  ],
  ssh: [
    inline(DEFAULTS.ssh),
    "SSH defaults for every node: `user`, `port`, `sudo` (`sudo -n` for a user other than root), `privateKey` (a secret), `hostKey`, `knownHosts` (OpenSSH known_hosts text: each node's key by host), `proxy` (a bastion: `host`, `port`, `user`, `privateKey`, `hostKey`)",
  ],
  kubelet: [
    inline(DEFAULTS.kubelet),
    "pins for every node (optional): `path`, the file kubelet must take its cluster DNS from; `format`, `auto`, `env-file`, `config-file` or `unit-file`",
  ],
  rollout: [
    `${code("canary: 1, maxBatch: 10%, growth: 2")}, ${code(`readyTimeoutSeconds: ${DEFAULTS.rollout.readyTimeoutSeconds}, kubeletTimeoutSeconds: ${DEFAULTS.rollout.kubeletTimeoutSeconds}`)}`,
    "batches: a canary, then each batch `growth` times the one before, up to `maxBatch` (a count, or a share like `10%`); or `batchSize` for fixed batches. Waits: for the cache to answer, for kubelet to come back healthy",
  ],
  stateDir: [
    code(DEFAULTS.stateDir),
    "the directory on each node that holds the record and the original bytes; a directory of its own under `/var/lib`, `/var/opt`, `/opt` or `/srv`",
  ],
};

/** The table, one row per key in the parser's order. */
export function configReference(): string {
  const rows = CONFIG_KEYS.map((key) => {
    const [value, meaning] = REFERENCE[key];
    return `| ${code(key)} | ${value} | ${meaning} |`;
  });
  return ["| key | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
