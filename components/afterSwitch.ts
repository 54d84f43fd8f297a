// What a `pulumi up` checks once the switches have run: each node it may have changed, read again
// through the API server's configz proxy (one still off the cache fails the update), and the pods
// set up before their node's switch (reported, and their workloads restarted when the stack asks).
// Stack outputs of the program; neither runs in preview, and only that restart changes anything.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { FleetPlan, ManagedNode } from "./discovery";
import {
  hasKubeconfig,
  listClusterPods,
  providerKubeSettings,
  readKubeletClusterDns,
  type KubeSettings,
} from "./fleetSources";
import { shortReason } from "./kubeClient";
import {
  nodesToVerify,
  verification,
  verificationFailure,
  verificationLine,
  type Verification,
} from "./kubeletRepair";
import type { LiveNodeView, LiveRead } from "./kubeletLive";
import {
  podSummaries,
  podsLine,
  podsToRecreate,
  uninstallLine,
  switchedInThisUpdate,
  workloadsToRestart,
  type PodsReport,
  type PodSummary,
} from "./podsToRecreate";
import { restartLine, restartWorkloads, type RestartResult } from "./workloadRestarts";

/** One read of a node's configz after its switch, tried again while it cannot be read. */
const AFTER_SWITCH_READ = { attempts: 3, pauseMs: 1_000 };
const AFTER_SWITCH_LIMITS = { concurrency: 1, requestMs: 5_000, totalMs: 5_000 };

/**
 * Verification after the switch: every node this update may have changed (nodesToVerify) whose
 * switch did switch it now (switchedInThisUpdate: its output says so) is read again through the
 * configz proxy. A node whose kubelet then reports a cluster DNS without the cache fails the
 * update, named in its error; a node that cannot be read is `unconfirmed`, with the reason, and
 * fails nothing. Not in preview, where nothing runs.
 */
export function verifySwitches(
  localDnsIp: string,
  fleet: FleetPlan,
  view: Promise<Record<string, LiveNodeView> | string>,
  switches: command.remote.Command[],
  managedBefore: Promise<ManagedNode[]>,
): pulumi.Output<Record<string, Verification> | string> {
  if (pulumi.runtime.isDryRun()) return pulumi.output("not in preview");
  const kube = providerKubeSettings();
  type Verified = Record<string, Verification> | string;
  return pulumi.all([view, managedBefore]).apply(([live, managed]): pulumi.Output<Verified> => {
    if (typeof live === "string") return pulumi.output(`not verified: live view ${live}`);
    const fleetNames = fleet.nodes.map((node) => node.name);
    const toVerify = new Set(nodesToVerify(fleetNames, live));
    if (toVerify.size === 0) return pulumi.output("nothing to verify: all on the cache before");
    const recorded = new Map(managed.map((node) => [node.name, node.switchedAt]));
    const names: string[] = [];
    const reads: pulumi.Output<LiveRead | undefined>[] = [];
    fleet.nodes.forEach((node, i) => {
      if (!toVerify.has(node.name)) return;
      names.push(node.name);
      reads.push(
        switches[i]!.stdout.apply(async (stdout) =>
          switchedInThisUpdate(stdout, recorded.get(node.name))
            ? readAfterSwitch(kube, node.name, live[node.name])
            : undefined,
        ),
      );
    });
    return pulumi.all(reads).apply(async (results): Promise<Verified> => {
      const byNode: Record<string, Verification> = {};
      results.forEach((read, i) => {
        if (read !== undefined) byNode[names[i]!] = verification(localDnsIp, read);
      });
      if (Object.keys(byNode).length === 0) return "nothing to verify: no switch ran";
      await pulumi.log.info(verificationLine(byNode));
      const failure = verificationFailure(localDnsIp, byNode);
      if (failure !== undefined) throw new pulumi.RunError(failure);
      return byNode;
    });
  });
}

/**
 * A node's configz once its switch has run. A node that answered before this update is asked
 * again while it does not answer (kubelet has just restarted); one that did not answer before is
 * asked once.
 */
async function readAfterSwitch(
  kube: KubeSettings,
  name: string,
  before: LiveNodeView | undefined,
): Promise<LiveRead> {
  const attempts = before?.state === "unknown" ? 1 : AFTER_SWITCH_READ.attempts;
  let read: LiveRead = { unknown: "not read" };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, AFTER_SWITCH_READ.pauseMs));
    read = (await readKubeletClusterDns(kube, [name], AFTER_SWITCH_LIMITS))[name]!;
    if (!("unknown" in read)) break;
  }
  return read;
}

/**
 * The pods to recreate (README "Pods to recreate"): once every switch has run, the pods created
 * before their node's switch that still ask kube-dns, with the commands to restart their
 * workloads, and those created while switched, which an uninstall would leave asking the cache's
 * address (printed by every `up`, and by `pulumi destroy --run-program` just before it reverts
 * the nodes: a plain destroy runs no program). Reporting only, unless the stack sets restartWorkloads (restartAfter: the switches
 * this update made): then the workloads of the pods set up before those switches are restarted
 * (workloadRestarts.ts), and the report says which were and which were not. An update that
 * switches nothing restarts nothing: `pulumi destroy --run-program` runs this program too, and a
 * restart there would give the new pods the cache that is about to go. Not in preview; a failed
 * pod list is one info line, never a failure.
 */
export function reportPods(
  switchedAt: pulumi.Output<Record<string, string | undefined>>,
  restartAfter?: pulumi.Output<Record<string, string>>,
): pulumi.Output<PodsReport | (PodsReport & RestartResult) | string> {
  if (pulumi.runtime.isDryRun()) return pulumi.output("not in preview");
  const kube = providerKubeSettings();
  if (!hasKubeconfig(kube)) return pulumi.output("not read: no kubeconfig");
  return pulumi.all([switchedAt, restartAfter]).apply(async ([times, switchedNow]) => {
    let pods: PodSummary[];
    try {
      pods = podSummaries(await listClusterPods(kube));
    } catch (err) {
      const reason = shortReason(err);
      await pulumi.log.info(`pods to recreate not read: ${reason}`);
      return `not read: ${reason}`;
    }
    const report = podsToRecreate(pods, times);
    await pulumi.log.info(podsLine(report));
    await pulumi.log.info(uninstallLine(report));
    if (switchedNow === undefined) return report;
    const restarts = await restartWorkloads(kube, workloadsToRestart(pods, switchedNow));
    const line = restartLine(restarts);
    await (restarts.failed.length > 0 ? pulumi.log.warn(line) : pulumi.log.info(line));
    return { ...report, ...restarts };
  });
}
