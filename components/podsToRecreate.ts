// The pods to recreate after a switch, pure. kubelet writes a pod's /etc/resolv.conf when it sets
// the pod up, so a pod that a node's kubelet set up before the switch keeps asking kube-dns until
// it is recreated. This finds them (pods created before their node's switch) and says how to
// restart their workloads. The same holds the other way round: a pod set up while its node was
// switched keeps asking the cache's address after an uninstall, where nothing answers any more;
// those are reported too, for the uninstall. Reporting only: nothing is restarted.

/** What the report needs of a pod (from a PodList, as the API or client-node gives it). */
export interface PodSummary {
  namespace: string;
  name: string;
  nodeName: string;
  /** ISO 8601, UTC. */
  createdAt: string;
  /** The pod asks the cluster DNS (kubelet's clusterDNS) for names. */
  usesClusterDns: boolean;
  /** Done or being deleted: nothing to recreate. */
  finished: boolean;
  /** The workload that recreates it, if any: `deployment/x`, `statefulset/x`, `daemonset/x`. */
  workload?: string;
}

/** The last switch time a node program's output states: `switched: ... at <ISO time>`. */
export function switchedAtFromOutput(stdout: string): string | undefined {
  const times = [...stdout.matchAll(/\]: switched: .* at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/gm)];
  return times.at(-1)?.[1];
}

/**
 * Whether a node's switch Command switched its kubelet in this update: its output states a switch
 * time, and not the one the last update recorded. A Command the engine did not run keeps its old
 * output (a node left out by `pulumi up --target`, every Command under
 * `pulumi destroy --run-program`), which states the recorded time or none; a switch that found the
 * node already switched states none either (the node program checked the running kubelet itself).
 */
export function switchedInThisUpdate(
  stdout: string | undefined,
  recordedSwitchedAt: string | undefined,
): boolean {
  const switchedAt = switchedAtFromOutput(stdout ?? "");
  return switchedAt !== undefined && switchedAt !== recordedSwitchedAt;
}

/**
 * Per node of the fleet that this update switched (switchedInThisUpdate), the time of that switch.
 * The nodes it did not switch are left out.
 */
export function switchesOfThisUpdate(
  nodes: string[],
  stdouts: (string | undefined)[],
  before: { name: string; switchedAt?: string }[],
): Record<string, string> {
  const recorded = new Map(before.map((node) => [node.name, node.switchedAt]));
  const switched: Record<string, string> = {};
  nodes.forEach((name, i) => {
    if (switchedInThisUpdate(stdouts[i], recorded.get(name))) {
      switched[name] = switchedAtFromOutput(stdouts[i]!)!;
    }
  });
  return switched;
}

/**
 * Per node of the fleet, when its kubelet switched to the cache: what this update's switch said,
 * else what the last update recorded (a switch that found the node already switched says nothing).
 */
export function switchTimes(
  nodes: string[],
  stdouts: (string | undefined)[],
  before: { name: string; switchedAt?: string }[],
): Record<string, string | undefined> {
  const recorded = new Map(before.map((node) => [node.name, node.switchedAt]));
  return Object.fromEntries(
    nodes.map((name, i) => [name, switchedAtFromOutput(stdouts[i] ?? "") ?? recorded.get(name)]),
  );
}

/** The pods of a PodList (items as JSON or as client-node objects); malformed items are left out. */
export function podSummaries(items: unknown[]): PodSummary[] {
  const pods: PodSummary[] = [];
  for (const item of items) {
    const pod = (item ?? {}) as {
      metadata?: {
        namespace?: string;
        name?: string;
        creationTimestamp?: string | Date;
        deletionTimestamp?: string | Date;
        labels?: Record<string, string>;
        ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
      };
      spec?: { nodeName?: string; hostNetwork?: boolean; dnsPolicy?: string };
      status?: { phase?: string };
    };
    const { metadata, spec } = pod;
    const created = metadata?.creationTimestamp;
    if (!metadata?.namespace || !metadata.name || !spec?.nodeName || created === undefined)
      continue;
    const createdAt = new Date(created);
    if (Number.isNaN(createdAt.getTime())) continue;
    const phase = pod.status?.phase;
    const summary: PodSummary = {
      namespace: metadata.namespace,
      name: metadata.name,
      nodeName: spec.nodeName,
      createdAt: createdAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
      usesClusterDns: usesClusterDns(spec.dnsPolicy, spec.hostNetwork === true),
      finished:
        phase === "Succeeded" || phase === "Failed" || metadata.deletionTimestamp !== undefined,
    };
    const workload = workloadOf(metadata.ownerReferences ?? [], metadata.labels ?? {});
    if (workload !== undefined) summary.workload = workload;
    pods.push(summary);
  }
  return pods;
}

/**
 * kubelet gives a pod its cluster DNS for dnsPolicy ClusterFirst (the default), except with the
 * host's network, where ClusterFirst means the node's own resolv.conf; ClusterFirstWithHostNet
 * gives it in both. Default and None never do.
 */
function usesClusterDns(dnsPolicy: string | undefined, hostNetwork: boolean): boolean {
  const policy = dnsPolicy ?? "ClusterFirst";
  return policy === "ClusterFirstWithHostNet" || (policy === "ClusterFirst" && !hostNetwork);
}

/** The controller that recreates a pod and can be restarted with `kubectl rollout restart`. */
function workloadOf(
  owners: { kind?: string; name?: string; controller?: boolean }[],
  labels: Record<string, string>,
): string | undefined {
  const owner = owners.find((o) => o.controller === true);
  if (owner?.name === undefined) return undefined;
  if (owner.kind === "StatefulSet" || owner.kind === "DaemonSet") {
    return `${owner.kind.toLowerCase()}/${owner.name}`;
  }
  // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>.
  const hash = labels["pod-template-hash"];
  if (owner.kind === "ReplicaSet" && hash !== undefined && owner.name.endsWith(`-${hash}`)) {
    return `deployment/${owner.name.slice(0, -hash.length - 1)}`;
  }
  return undefined;
}

/** A workload whose pods ask the old resolver, and the switch time its restart is stamped with. */
export interface WorkloadRestart {
  namespace: string;
  /** `deployment/x`, `statefulset/x` or `daemonset/x`, as `kubectl rollout restart` takes it. */
  workload: string;
  /** The latest switch among the nodes of its pods that are to recreate. */
  switchedAt: string;
}

/** Pods to recreate, and how. */
export interface PodsToRestart {
  /** How many pods. */
  count: number;
  /** How many workloads own them (`commands` lists at most 50). */
  workloads: number;
  /** `kubectl -n <namespace> rollout restart <workload>`, one per workload, sorted. */
  commands: string[];
  /** How many of them no restartable workload owns (`others` lists at most 50). */
  byHand: number;
  /** `<namespace>/<pod>` of those no restartable workload owns (bare pods, Jobs): recreate by hand. */
  others: string[];
}

export interface PodsReport extends PodsToRestart {
  /** Switched nodes whose switch time is not known (switched by hand and adopted). */
  unknownSwitchTime: string[];
  /**
   * The pods set up while their node was switched (created in or after its switch's second): after
   * an uninstall they keep asking the cache's address until recreated.
   */
  afterUninstall: PodsToRestart;
}

/** At most this many commands and pods in the report; the count says how many in all. */
const LISTED_MAX = 50;

/**
 * The still running pods that ask the cluster DNS on a node with a known switch time, set up
 * before that switch (`before`) or while switched (`after`). Both times are to the second: a pod
 * of the switch's own second is in both (never left out).
 */
function podsBySwitch(
  pods: PodSummary[],
  switchedAt: Record<string, string | undefined>,
  side: "before" | "after",
): PodSummary[] {
  return pods.filter((pod) => {
    const since = switchedAt[pod.nodeName];
    if (since === undefined || !pod.usesClusterDns || pod.finished) return false;
    return side === "before" ? pod.createdAt <= since : pod.createdAt >= since;
  });
}

/** The restart commands of the pods' workloads, and the pods no workload owns. */
function toRestart(pods: PodSummary[]): PodsToRestart {
  const workloads = [
    ...new Set(
      pods.flatMap((pod) =>
        pod.workload === undefined ? [] : [`${pod.namespace} ${pod.workload}`],
      ),
    ),
  ].sort();
  const others = pods
    .filter((pod) => pod.workload === undefined)
    .map((pod) => `${pod.namespace}/${pod.name}`)
    .sort();
  return {
    count: pods.length,
    workloads: workloads.length,
    commands: workloads.slice(0, LISTED_MAX).map((key) => {
      const [namespace, workload] = key.split(" ");
      return `kubectl -n ${namespace} rollout restart ${workload}`;
    }),
    byHand: others.length,
    others: others.slice(0, LISTED_MAX),
  };
}

/**
 * The pods created before their node's switch that ask the cluster DNS, and those created while
 * switched (for an uninstall). switchedAt: per switched node, when its kubelet ran with the cache
 * (undefined: not known).
 */
export function podsToRecreate(
  pods: PodSummary[],
  switchedAt: Record<string, string | undefined>,
): PodsReport {
  return {
    ...toRestart(podsBySwitch(pods, switchedAt, "before")),
    unknownSwitchTime: Object.entries(switchedAt)
      .filter(([, at]) => at === undefined)
      .map(([node]) => node)
      .sort(),
    afterUninstall: toRestart(podsBySwitch(pods, switchedAt, "after")),
  };
}

/**
 * Every workload that owns a pod set up before its node's switch in `switchedAt` (restartWorkloads
 * passes the switches of this update), sorted by namespace and name, with the latest switch time
 * among those pods' nodes: what the restart is stamped with.
 */
export function workloadsToRestart(
  pods: PodSummary[],
  switchedAt: Record<string, string | undefined>,
): WorkloadRestart[] {
  const latest = new Map<string, WorkloadRestart>();
  for (const pod of podsBySwitch(pods, switchedAt, "before")) {
    if (pod.workload === undefined) continue;
    const at = switchedAt[pod.nodeName]!;
    const key = `${pod.namespace} ${pod.workload}`;
    const known = latest.get(key);
    if (known === undefined || known.switchedAt < at) {
      latest.set(key, { namespace: pod.namespace, workload: pod.workload, switchedAt: at });
    }
  }
  return [...latest.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, restart]) => restart);
}

/** The annotation `kubectl rollout restart` sets on a workload's pod template. */
export const RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt";

/** The merge patch that restarts a workload as `kubectl rollout restart` does, stamped `at`. */
export function restartPatch(at: string): object {
  return { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: at } } } } };
}

/** One line for the update's log. */
export function podsLine(report: PodsReport): string {
  const unknown =
    report.unknownSwitchTime.length > 0
      ? `; switch time not known on ${report.unknownSwitchTime.length} node(s)`
      : "";
  if (report.count === 0) {
    return `pods to recreate: none (every pod on a switched node was created after its switch${unknown})`;
  }
  return (
    `pods to recreate: ${report.count}, created before their node's switch and still asking ` +
    `kube-dns; ${how(report)}; stack output podsToRecreate${unknown}`
  );
}

/** One line for the update's log: what an uninstall would leave to recreate. */
export function uninstallLine(report: PodsReport): string {
  const after = report.afterUninstall;
  if (after.count === 0) {
    return "pods to recreate after an uninstall: none (no pod on a switched node was created while switched)";
  }
  return (
    `pods to recreate after an uninstall: ${after.count}, created while their node was switched ` +
    `(they keep asking the cache's address); ${how(after)}; ` +
    "stack output podsToRecreate.afterUninstall"
  );
}

function how(pods: PodsToRestart): string {
  const restart =
    pods.workloads > 0
      ? `${pods.workloads} workload(s) to restart, e.g. ${pods.commands[0]}`
      : "no workload owns them";
  return `${restart}; ${pods.byHand} pod(s) to recreate by hand`;
}
