// The Kubernetes objects of NodeLocal DNSCache in IPVS mode, as plain JSON data: the same objects
// are handed to Pulumi resources and serialized by the offline `render` command, so they hold no
// `undefined` anywhere (absent keys are omitted) and share no object with the settings.
//
// Shapes follow the upstream addon (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml); IPVS
// differences: `-localip` holds only the link-local IP, and the Corefile is fully rendered except
// for `__PILLAR__UPSTREAM__SERVERS__`.

import { renderCorefile } from "./corefile";
import { SKIP_TEARDOWN, updateStrategy } from "./daemonSetRollout";
import { MANAGED_NODES_RECORD, managedNodesRecord } from "./discovery";
import { DELIVERED_NODE_PROGRAM, NODE_PROGRAM_DELIVERY } from "./nodeScript";
import {
  APP_NAME,
  NAMESPACE,
  ResolvedSettings,
  ResourceRequirements,
  Toleration,
  UPSTREAM_SERVICE_NAME,
} from "./settings";

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export interface KubernetesObjects {
  serviceAccount: KubernetesObject;
  /** `kube-dns-upstream`: node-cache reads its ClusterIP from the env var injected at pod start. */
  upstreamService: KubernetesObject;
  configMap: KubernetesObject;
  /** The node program, which the DaemonSet mounts so that kubelet puts it on every node. */
  nodeProgramConfigMap: KubernetesObject;
  daemonSet: KubernetesObject;
  /** Headless `node-local-dns` Service exposing the metrics port. */
  metricsService: KubernetesObject;
  /** With discovery: the nodes this update declares Commands for (discovery.ts). */
  managedNodesConfigMap?: KubernetesObject;
  /** Apply order: the DaemonSet comes after the kube-dns-upstream Service and the ConfigMaps. */
  all: KubernetesObject[];
}

/** Where the node program's volume is mounted in the container; node-cache never reads it. */
const NODE_PROGRAM_MOUNT_PATH = "/etc/nodelocaldns/node-program";
/** Where node-cache writes the Corefile it generates from Corefile.base. */
const COREFILE_PATH = "/etc/Corefile";
/** Inside the container; tells node-cache that CoreDNS is up so it sets up iptables at once. */
const PIDFILE_PATH = "/tmp/node-cache.pid";
const CONTAINER_NAME = "node-cache";
/**
 * How long a new pod runs before it reports Ready, and so before its node's old pod is deleted in
 * an upgrade. node-cache listens about 30 ms after its start (BENCHMARKS.md, section 8); a new
 * process that fails at start (a Corefile it cannot load) exits well within this, so the old pod
 * stays. A readiness delay, not minReadySeconds: the DaemonSet controller acts on a pod that
 * became Ready at once, while minReadySeconds needs a timed requeue that the controller can lose
 * (README "Cache upgrades").
 */
const UPGRADE_READY_DELAY_SECONDS = 10;

const CLUSTER_SERVICE_LABEL = { "kubernetes.io/cluster-service": "true" };
const RECONCILE_LABEL = { "addonmanager.kubernetes.io/mode": "Reconcile" };
/** The kubernetes provider applies an object so marked without waiting for it to be ready. */
const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";
const APP_LABELS = { "k8s-app": APP_NAME };

/** The container args. `-localip` holds exactly one address: a comma crashes node-cache. */
function nodeCacheArgs(s: ResolvedSettings): string[] {
  return [
    "-localip",
    s.localDnsIp,
    "-conf",
    COREFILE_PATH,
    "-upstreamsvc",
    UPSTREAM_SERVICE_NAME,
    // node-cache's own NOTRACK rules for the liveness probe use this port (its default is 8080).
    "-health-port",
    String(s.healthPort),
    // A ConfigMap change reloads CoreDNS in place (SIGUSR1 on itself) instead of through the
    // reload plugin's timer, so a Corefile update needs no pod restart.
    "-reloadwithsignal",
    // An upgrade starts the new pod beside the old one (maxSurge, see daemonSet); the old one must
    // then leave the interface and the iptables rules to it. Without this flag its exit removes
    // them under the new pod, which answers nothing until its next sync (60 s). The cleanup
    // Command removes them after the DaemonSet is deleted (cleanup.bash).
    SKIP_TEARDOWN,
    // Without it node-cache sets up its iptables rules only at the first sync (60 s after start).
    "-pidfile",
    PIDFILE_PATH,
  ];
}

function prometheusAnnotations(s: ResolvedSettings): Record<string, string> {
  return { "prometheus.io/port": String(s.metricsPort), "prometheus.io/scrape": "true" };
}

/** A copy of a toleration with only the keys that are set. */
function toleration(t: Toleration): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (t.key !== undefined) out.key = t.key;
  if (t.operator !== undefined) out.operator = t.operator;
  if (t.value !== undefined) out.value = t.value;
  if (t.effect !== undefined) out.effect = t.effect;
  if (t.tolerationSeconds !== undefined) out.tolerationSeconds = t.tolerationSeconds;
  return out;
}

/** A copy of the resources with only the parts that are set; undefined when nothing is. */
function resources(r: ResourceRequirements): Record<string, Record<string, string>> | undefined {
  const out: Record<string, Record<string, string>> = {};
  if (r.requests !== undefined && Object.keys(r.requests).length > 0) {
    out.requests = { ...r.requests };
  }
  if (r.limits !== undefined && Object.keys(r.limits).length > 0) {
    out.limits = { ...r.limits };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function serviceAccount(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: {
      name: APP_NAME,
      namespace: NAMESPACE,
      labels: { ...CLUSTER_SERVICE_LABEL, ...RECONCILE_LABEL },
    },
  };
}

function upstreamService(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: UPSTREAM_SERVICE_NAME,
      namespace: NAMESPACE,
      // The kubernetes provider's await for a Service with a selector holds `pulumi up` for 10 s
      // after each change of its endpoints, and until no selected pod is unready: a CoreDNS
      // replica stuck NotReady would stop the rollout for 10 minutes, then fail it, while the
      // others serve. The DaemonSet needs only the Service to exist (node-cache reads its env
      // var); each switch checks that the cache answers through it before touching kubelet.
      annotations: { [SKIP_AWAIT_ANNOTATION]: "true" },
      labels: {
        "k8s-app": "kube-dns",
        ...CLUSTER_SERVICE_LABEL,
        ...RECONCILE_LABEL,
        "kubernetes.io/name": "KubeDNSUpstream",
      },
    },
    spec: {
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
      ],
      selector: { "k8s-app": "kube-dns" },
    },
  };
}

function configMap(s: ResolvedSettings): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: APP_NAME, namespace: NAMESPACE, labels: { ...RECONCILE_LABEL } },
    data: { Corefile: renderCorefile(s) },
  };
}

function nodeProgramConfigMap(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: NODE_PROGRAM_DELIVERY.configMap,
      namespace: NAMESPACE,
      labels: { ...RECONCILE_LABEL },
    },
    data: { [NODE_PROGRAM_DELIVERY.file]: DELIVERED_NODE_PROGRAM },
  };
}

function managedNodesConfigMap(s: ResolvedSettings): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    // Not the addon manager's Reconcile label: this object is ours alone, not an addon's.
    metadata: {
      name: MANAGED_NODES_RECORD.configMap,
      namespace: NAMESPACE,
      labels: { ...APP_LABELS },
      annotations: { [MANAGED_NODES_RECORD.annotation]: managedNodesRecord(s.nodes) },
    },
  };
}

function daemonSet(s: ResolvedSettings): KubernetesObject {
  const containerResources = resources(s.resources);
  const container = {
    name: CONTAINER_NAME,
    image: s.image,
    ...(containerResources !== undefined ? { resources: containerResources } : {}),
    args: nodeCacheArgs(s),
    securityContext: { capabilities: { add: ["NET_ADMIN"] } },
    // No `ports`: with hostNetwork each would be a host port, and the scheduler places no second
    // pod with the same host port on a node, so the new pod of an upgrade would wait forever
    // beside the old one. Both processes bind the same ports with SO_REUSEPORT (CoreDNS does).
    livenessProbe: {
      httpGet: { host: s.localDnsIp, path: "/health", port: s.healthPort },
      initialDelaySeconds: 60,
      timeoutSeconds: 5,
    },
    // Either process may answer while two run (same address, same port): the probe's first run,
    // after the delay, is what holds the old pod in an upgrade.
    readinessProbe: {
      httpGet: { host: s.localDnsIp, path: "/health", port: s.healthPort },
      initialDelaySeconds: UPGRADE_READY_DELAY_SECONDS,
      timeoutSeconds: 5,
    },
    volumeMounts: [
      { mountPath: "/run/xtables.lock", name: "xtables-lock" },
      { name: "config-volume", mountPath: "/etc/coredns" },
      { name: "kube-dns-config", mountPath: "/etc/kube-dns" },
      // Only so that kubelet writes the volume on the node, where the switch launcher reads it
      // (kubelet sets up no volume that no container mounts).
      { name: NODE_PROGRAM_DELIVERY.volume, mountPath: NODE_PROGRAM_MOUNT_PATH, readOnly: true },
    ],
  };

  const podSpec = {
    priorityClassName: s.priorityClassName,
    serviceAccountName: APP_NAME,
    hostNetwork: true,
    dnsPolicy: "Default", // node-cache must not resolve through itself
    ...(s.tolerations.length > 0 ? { tolerations: s.tolerations.map(toleration) } : {}),
    ...(Object.keys(s.nodeSelector).length > 0 ? { nodeSelector: { ...s.nodeSelector } } : {}),
    containers: [container],
    volumes: [
      { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
      { name: "kube-dns-config", configMap: { name: "kube-dns", optional: true } },
      {
        name: "config-volume",
        configMap: { name: APP_NAME, items: [{ key: "Corefile", path: "Corefile.base" }] },
      },
      {
        name: NODE_PROGRAM_DELIVERY.volume,
        // 0400: kubelet writes the file for root alone.
        configMap: { name: NODE_PROGRAM_DELIVERY.configMap, defaultMode: 0o400 },
      },
    ],
  };

  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: APP_NAME,
      namespace: NAMESPACE,
      labels: { ...APP_LABELS, ...CLUSTER_SERVICE_LABEL, ...RECONCILE_LABEL },
    },
    spec: {
      // An upgrade starts each node's new pod beside its old one, and deletes the old one only
      // once the new one is Ready, at the earliest UPGRADE_READY_DELAY_SECONDS after its start: a
      // switched node is never without an answering cache (README "Cache upgrades"; measured in
      // BENCHMARKS.md, section 8). From a DaemonSet whose pods tear down on exit: the old pod
      // first (daemonSetRollout.ts).
      updateStrategy: updateStrategy(s.oldPodsTearDown ?? false),
      selector: { matchLabels: { ...APP_LABELS } },
      template: {
        metadata: { labels: { ...APP_LABELS }, annotations: prometheusAnnotations(s) },
        spec: podSpec,
      },
    },
  };
}

function metricsService(s: ResolvedSettings): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: APP_NAME,
      namespace: NAMESPACE,
      labels: { ...APP_LABELS },
      annotations: prometheusAnnotations(s),
    },
    spec: {
      clusterIP: "None",
      ports: [{ name: "metrics", port: s.metricsPort, targetPort: s.metricsPort }],
      selector: { ...APP_LABELS },
    },
  };
}

export function nodeLocalDnsObjects(s: ResolvedSettings): KubernetesObjects {
  const objects = {
    serviceAccount: serviceAccount(),
    upstreamService: upstreamService(),
    configMap: configMap(s),
    nodeProgramConfigMap: nodeProgramConfigMap(),
    daemonSet: daemonSet(s),
    metricsService: metricsService(s),
  };
  const record = s.discover === undefined ? undefined : managedNodesConfigMap(s);
  return {
    ...objects,
    ...(record === undefined ? {} : { managedNodesConfigMap: record }),
    all: [
      objects.serviceAccount,
      objects.upstreamService,
      objects.configMap,
      objects.nodeProgramConfigMap,
      ...(record === undefined ? [] : [record]),
      objects.daemonSet,
      objects.metricsService,
    ],
  };
}
