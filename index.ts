// The program: stack config -> (with discovery: the cluster's Nodes) -> NodeLocalDns component ->
// stack outputs. Bad config stops here, with every bad key named, before any resource is
// registered.
import * as pulumi from "@pulumi/pulumi";
import {
  APP_NAME,
  clusterNodesFromList,
  ConfigError,
  fleetPlan,
  FleetPlan,
  hasKubeconfig,
  installedCrds,
  KUBE_PROXY_CONFIG_MAP,
  kubeProxyModeWarning,
  listClusterNodes,
  LiveNodeView,
  liveView,
  ManagedNode,
  MANAGED_NODES_RECORD,
  managedNodesFromRecord,
  MONITORING_CRDS,
  MonitoringKind,
  monitoringPlan,
  NAMESPACE,
  NodeLocalDns,
  parseSettings,
  previouslyManagedNodes,
  providerKubeSettings,
  rawConfigFromEngine,
  readConfigMapAnnotations,
  readConfigMapData,
  readDaemonSet,
  OLD_PODS_TEAR_DOWN_WARNING,
  tearsDownOnExit,
  KubeSettings,
  readKubeletClusterDns,
  reportPods,
  verifySwitches,
  switchesOfThisUpdate,
  switchOutcome,
  switchTimes,
  repairLine,
  repairNumbers,
  shortReason,
  Settings,
  statedKubeProxyMode,
} from "./components";

// isConfigSecret is exported by the SDK's runtime but missing from its type declarations.
const runtime = pulumi.runtime as unknown as { isConfigSecret(key: string): boolean };

function loadSettings() {
  try {
    return parseSettings(rawConfigFromEngine(pulumi.runtime.allConfig(), runtime.isConfigSecret));
  } catch (err) {
    // RunError prints the message alone: the list of problems, not a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

// What the last update managed (its managedNodes output), read once: discovery and the live view
// both need it.
let managedBefore: Promise<ManagedNode[]> | undefined;
const lastManagedNodes = () => (managedBefore ??= previouslyManagedNodes());

/** The fleet: the `nodes` list as it is, or (discovery) the cluster's Nodes planned against state. */
async function planFleet(settings: Settings): Promise<FleetPlan> {
  if (settings.discover === undefined) {
    return { nodes: settings.nodes, retired: [], unselected: [], warnings: [] };
  }
  const kube = providerKubeSettings();
  const [list, managed, recorded] = await Promise.all([
    listClusterNodes(kube).catch((err: Error) => {
      throw new pulumi.RunError(`nodelocaldns:discover: cannot list the Nodes: ${err.message}`);
    }),
    lastManagedNodes(),
    recordedNodes(kube),
  ]);
  return fleetPlan(
    settings.discover,
    clusterNodesFromList(list),
    settings.nodes,
    managed,
    recorded,
  );
}

/**
 * The nodes the record of the last update that reached its switches lists (MANAGED_NODES_RECORD):
 * with managedNodes, every node that may have Commands in the state. A failed read is one info
 * line; the record then adds nothing.
 */
async function recordedNodes(kube: KubeSettings): Promise<ManagedNode[]> {
  const { configMap, annotation } = MANAGED_NODES_RECORD;
  try {
    const annotations = await readConfigMapAnnotations(kube, NAMESPACE, configMap);
    return managedNodesFromRecord(annotations?.[annotation]);
  } catch (err) {
    await pulumi.log.info(
      `nodelocaldns:discover: ${NAMESPACE}/${configMap} not read: ${shortReason(err)}`,
    );
    return [];
  }
}

/**
 * kube-proxy's mode as kube-system/kube-proxy states it, against kubeProxyMode: a warning when
 * they differ. Returns what the cluster states, for a stack output. It runs beside the
 * registrations (loading the Kubernetes client takes about a second): the stack output makes
 * the engine wait for it.
 */
async function checkKubeProxyMode(settings: Settings): Promise<string> {
  const kube = providerKubeSettings();
  if (!hasKubeconfig(kube)) return "not checked: no kubeconfig";
  const { namespace, name } = KUBE_PROXY_CONFIG_MAP;
  try {
    const stated = statedKubeProxyMode(await readConfigMapData(kube, namespace, name));
    const warning = kubeProxyModeWarning(settings.kubeProxyMode, stated);
    if (warning !== undefined) await pulumi.log.warn(warning);
    return stated === undefined ? `not stated in ${namespace}/${name}` : stated.mode;
  } catch (err) {
    const reason = shortReason(err);
    await pulumi.log.info(`kubeProxyMode not checked: cannot read ${namespace}/${name}: ${reason}`);
    return `not checked: cannot read ${namespace}/${name}`;
  }
}

/**
 * Whether the cluster's DaemonSet is of an earlier version, whose pods remove the cache's interface
 * when they exit: then this update replaces each old pod first (README "Cache upgrades"), with a
 * warning. Without a kubeconfig: false (nothing to read; preview without a cluster). A failed read
 * is taken as true, with a warning: an update the old way costs a short gap per node, a surge
 * beside old pods up to a minute.
 */
async function checkOldPodsTearDown(): Promise<boolean> {
  const kube = providerKubeSettings();
  if (!hasKubeconfig(kube)) return false;
  let oldPodsTearDown: boolean;
  try {
    oldPodsTearDown = tearsDownOnExit(await readDaemonSet(kube, NAMESPACE, APP_NAME));
  } catch (err) {
    await pulumi.log.warn(
      `${NAMESPACE}/${APP_NAME}: the DaemonSet not read (${shortReason(err)}): ` +
        "an update replaces each node's pod the old way, the old pod first",
    );
    return true;
  }
  if (oldPodsTearDown) await pulumi.log.warn(OLD_PODS_TEAR_DOWN_WARNING);
  return oldPodsTearDown;
}

/**
 * liveView: each selected node's running cluster DNS, read through the API server's configz proxy
 * before this update changes anything, against what the last update switched; one summary line.
 * A node that cannot be read is `unknown` with its reason, and nothing here fails the run.
 */
async function readLiveView(
  settings: Settings,
  fleet: FleetPlan,
): Promise<Record<string, LiveNodeView> | string> {
  if (!settings.liveView) return "not read (liveView: false)";
  const kube = providerKubeSettings();
  if (!hasKubeconfig(kube)) return "not read: no kubeconfig";
  try {
    const names = fleet.nodes.map((node) => node.name);
    const unselected = await unselectedNodes(settings, fleet, kube);
    // The selected nodes first: they are read first when the reads' time runs short.
    const [reads, managed] = await Promise.all([
      readKubeletClusterDns(kube, [...names, ...unselected]),
      lastManagedNodes(),
    ]);
    const switched = new Set(managed.map((node) => node.name));
    const nodes = [
      ...names.map((name) => ({ name, switchedBefore: switched.has(name) })),
      ...unselected.map((name) => ({
        name,
        switchedBefore: switched.has(name),
        selected: false,
      })),
    ];
    const view = liveView(settings.localDnsIp, nodes, reads);
    await pulumi.log.info(view.summary);
    return view.nodes;
  } catch (err) {
    const reason = shortReason(err);
    await pulumi.log.info(`kubelet live view not read: ${reason}`);
    return `not read: ${reason}`;
  }
}

/**
 * The cluster's Nodes this update does not switch, for the live view's reverse case (README "Drift
 * repair"): discovery has them at hand; with `nodes` listed by hand they are listed here, by name.
 * A failed list leaves them out (the selected nodes are still read).
 */
async function unselectedNodes(
  settings: Settings,
  fleet: FleetPlan,
  kube: KubeSettings,
): Promise<string[]> {
  if (settings.discover !== undefined) return fleet.unselected;
  const listed = new Set(fleet.nodes.map((node) => node.name));
  const cluster = await listClusterNodes(kube).catch(() => ({ items: [] }));
  return clusterNodesFromList(cluster)
    .map((node) => node.name)
    .filter((name) => !listed.has(name))
    .sort();
}

/**
 * The monitoring objects asked for whose CRDs the cluster has (read only when one is asked for);
 * a warning for each one skipped.
 */
async function planMonitoring(settings: Settings): Promise<MonitoringKind[]> {
  const { serviceMonitor, prometheusRule } = settings.monitoring;
  if (!serviceMonitor && !prometheusRule) return [];
  const kube = providerKubeSettings();
  const installed = hasKubeconfig(kube)
    ? await installedCrds(kube, MONITORING_CRDS).catch((err: unknown) => ({
        unknown: shortReason(err),
      }))
    : { unknown: "no kubeconfig" };
  const plan = monitoringPlan(settings.monitoring, installed);
  plan.warnings.forEach((w) => void pulumi.log.warn(w));
  return plan.create;
}

/**
 * Drift repair: each node's repair number, from the last update's record and the live view (a
 * node seen drifted gets a new one, so its switch runs again). One info line names the nodes.
 */
async function planRepairs(
  fleet: FleetPlan,
  view: Promise<Record<string, LiveNodeView> | string>,
): Promise<Record<string, number>> {
  const [live, managed] = await Promise.all([view, lastManagedNodes().catch(() => [])]);
  const line = repairLine(live);
  if (line !== undefined) await pulumi.log.info(line);
  return repairNumbers(
    fleet.nodes.map((node) => node.name),
    managed,
    live,
  );
}

function deploy(
  settings: Settings,
  fleet: FleetPlan,
  monitoring: MonitoringKind[],
  view: Promise<Record<string, LiveNodeView> | string>,
  oldPodsTearDown: Promise<boolean>,
) {
  fleet.warnings.forEach((w) => void pulumi.log.warn(w));
  const repairs = planRepairs(fleet, view);
  const dns = new NodeLocalDns("nodelocaldns", {
    settings: { ...settings, nodes: fleet.nodes },
    retired: fleet.retired,
    repairs,
    kube: providerKubeSettings(),
    monitoring,
    oldPodsTearDown,
  });
  // Apart from the other outputs: a failed verification fails this one alone (and so the update).
  const verified = verifySwitches(
    settings.localDnsIp,
    fleet,
    view,
    dns.kubeletSwitches,
    lastManagedNodes().catch(() => []),
  );
  // Each node's switch time (its output, else the last update's record), and the switches this
  // update made (restartWorkloads restarts the workloads of the pods set up before those).
  const switches = pulumi
    .all([
      pulumi.all(dns.kubeletSwitches.map((command) => command.stdout)),
      lastManagedNodes().catch(() => []),
    ])
    .apply(([stdouts, before]) => {
      const names = fleet.nodes.map((node) => node.name);
      return {
        times: switchTimes(names, stdouts, before),
        now: switchesOfThisUpdate(names, stdouts, before),
      };
    });
  const switchedAt = switches.apply((s) => s.times);
  return {
    outputs: stackOutputs(dns, fleet, repairs, switchedAt),
    verified,
    pods: reportPods(
      switchedAt,
      settings.restartWorkloads ? switches.apply((s) => s.now) : undefined,
    ),
  };
}

function stackOutputs(
  dns: NodeLocalDns,
  fleet: FleetPlan,
  repairs: Promise<Record<string, number>>,
  switchedAt: pulumi.Output<Record<string, string | undefined>>,
) {
  return {
    clusterDnsIp: dns.clusterDnsIp,
    localDnsIp: dns.localDnsIp,
    namespace: dns.namespace,
    daemonSetName: dns.daemonSet.metadata.name,
    // Per node, the line its switch ended with; the whole output stays in the switch's state.
    kubeletSwitches: Object.fromEntries(
      fleet.nodes.map((node, i) => [node.name, dns.kubeletSwitches[i].stdout.apply(switchOutcome)]),
    ),
    // With kubeadmKubeletConfig: what kube-system/kubelet-config listed before us, and now.
    kubeadmKubeletConfig:
      dns.kubeadmKubeletConfig === undefined
        ? "not managed (kubeadmKubeletConfig: false)"
        : pulumi
            .all([dns.kubeadmKubeletConfig.originalClusterDns, dns.kubeadmKubeletConfig.clusterDns])
            .apply(
              ([before, now]) =>
                `kube-system/kubelet-config clusterDNS: [${before.join(", ")}] -> [${now.join(", ")}]`,
            ),
    // What the next update's discovery and live view compare the cluster with (fleetSources.ts).
    // Each node's repair number (kept unless the next update sees new drift) and the time of its
    // switch (for the pods report), only where there is one.
    managedNodes: pulumi.all([repairs, switchedAt]).apply(([numbers, times]) =>
      fleet.nodes.map(({ name, host, port }) => ({
        name,
        host,
        port,
        ...(numbers[name] === undefined ? {} : { repairs: numbers[name] }),
        ...(times[name] === undefined ? {} : { switchedAt: times[name] }),
      })),
    ),
    checks: [
      `kubectl -n ${dns.namespace} rollout status daemonset/${APP_NAME}`,
      `kubectl -n ${dns.namespace} get pods -l k8s-app=${APP_NAME} -o wide`,
      `on a node: ip -o addr show | grep ${dns.localDnsIp}   (the cache's address is bound)`,
      `in a new pod: cat /etc/resolv.conf   (nameserver ${dns.localDnsIp})`,
    ],
  };
}

const { settings, warnings } = loadSettings();
warnings.forEach((w) => void pulumi.log.warn(w));
const fleet = planFleet(settings);
// Read beside the registrations: only the switches' update texts (drift repair) wait for it.
const live = fleet.then(
  (plan) => readLiveView(settings, plan),
  () => "not read: no fleet",
);
// Read beside the registrations: only the DaemonSet's updateStrategy waits for it.
const oldPodsTearDown = checkOldPodsTearDown();
const deployment = Promise.all([fleet, planMonitoring(settings)]).then(([plan, monitoring]) =>
  deploy(settings, plan, monitoring, live, oldPodsTearDown),
);
const deployed = pulumi.output(deployment.then((d) => d.outputs));
/**
 * Each node's running kubelet cluster DNS before this update, and its state against the last
 * update (switched, drifted, to switch, on the cache already, unknown): README "Live view".
 */
export const kubeletLive = live;
/** kube-proxy's mode as the cluster's kube-system/kube-proxy ConfigMap states it. */
export const kubeProxyModeInCluster = checkKubeProxyMode(settings);

export const clusterDnsIp = deployed.clusterDnsIp;
export const localDnsIp = deployed.localDnsIp;
export const namespace = deployed.namespace;
export const daemonSetName = deployed.daemonSetName;
/** What each node's kubelet switch reported (old value, new value, restarted or not). */
export const kubeletSwitches = deployed.kubeletSwitches;
export const managedNodes = deployed.managedNodes;
/**
 * The pods created before their node's switch that still ask kube-dns, and the commands that
 * restart their workloads (README "Pods to recreate"). Reporting only.
 */
export const podsToRecreate = pulumi.output(deployment.then((d) => d.pods));
/**
 * Each node this update may have changed, read again through configz after its switch: confirmed,
 * unconfirmed (with the reason) or failed (README "Verification after the switch").
 */
export const kubeletVerified = pulumi.output(deployment.then((d) => d.verified));
/** kubeadm's kube-system/kubelet-config: its clusterDNS before and after (kubeadmKubeletConfig). */
export const kubeadmKubeletConfig = deployed.kubeadmKubeletConfig;
/** What an operator checks after `pulumi up`. */
export const checks = deployed.checks;
