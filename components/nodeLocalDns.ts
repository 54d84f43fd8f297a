// The component: wires the pure renderers (Kubernetes objects, node programs, rollout plan) to
// resources. It decides nothing about content; `render` calls the same renderers, so what render
// prints is what `pulumi up` applies.
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ManagedNode } from "./discovery";
import type { KubeSettings } from "./kubeClient";
import { KubeletConfigClusterDns } from "./kubeletConfigMapResource";
import {
  MONITORING_API_VERSION,
  MONITORING_KINDS,
  MonitoringKind,
  monitoringObjects,
} from "./monitoring";
import { KubernetesObjects, nodeLocalDnsObjects } from "./kubernetesObjects";
import { nodeCommandText, nodeConnection, nodeScriptParams } from "./nodeCommand";
import { renderCleanupProgram, renderGuardProgram, renderSwitchLauncher } from "./nodeScript";
import { planRollout } from "./rollout";
import { NAMESPACE, NodeSettings, ResolvedSettings, Settings } from "./settings";

type RenderedObject = Exclude<keyof KubernetesObjects, "all" | "managedNodesConfigMap">;

export interface NodeLocalDnsArgs {
  /** Validated settings (see parseSettings); with discovery, `nodes` is the planned fleet. */
  settings: Settings;
  /** Nodes that left the cluster: their Commands are retired without dialling them. */
  retired?: ManagedNode[];
  /**
   * Per node, its drift repair number (kubeletRepair.ts repairNumbers): the switch's update runs as
   * `update repair-<n>`. A node not listed has had no repair.
   */
  repairs?: pulumi.Input<Record<string, number>>;
  /** The kubernetes provider's kubeconfig and context, for the kubeadmKubeletConfig edit. */
  kube?: KubeSettings;
  /** The monitoring objects to create: asked for, and their CRDs installed (monitoringPlan). */
  monitoring?: MonitoringKind[];
  /**
   * The cluster's DaemonSet is of an earlier version, whose pods tear down on exit: this update
   * replaces each old pod first (daemonSetRollout.ts). Default: false.
   */
  oldPodsTearDown?: pulumi.Input<boolean>;
}

export class NodeLocalDns extends pulumi.ComponentResource {
  readonly clusterDnsIp: pulumi.Output<string>;
  readonly localDnsIp: string;
  readonly namespace: string;
  readonly daemonSet: k8s.apps.v1.DaemonSet;
  /** One kubelet switch per node, in config order. */
  readonly kubeletSwitches: command.remote.Command[];
  /** One revert guard per node, in config order (see switchKubelets). */
  readonly revertGuards: command.remote.Command[];
  /** One cleanup per node, in config order (see cleanUpAfterDaemonSet). */
  readonly cleanups: command.remote.Command[];
  /** With kubeadmKubeletConfig: the clusterDNS edit of kube-system/kubelet-config. */
  readonly kubeadmKubeletConfig?: KubeletConfigClusterDns;
  private readonly commandProvider: command.Provider;

  constructor(name: string, args: NodeLocalDnsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodelocaldns:index:NodeLocalDns", name, {}, opts);
    const settings = args.settings;
    const child = { parent: this };
    // Every object has a fixed name (upstream's, which node-cache and users rely on). A replacement
    // must delete the old object first: create-before-delete would create the "new" one by
    // patching the same object, then delete it (found by the end-to-end test with --replace).
    const fixedName = { parent: this, deleteBeforeReplace: true };
    // The kubelet Commands' provider, registered before anything else. With the default provider,
    // which the engine loads only when the first Command registers, a DaemonSet replacement that
    // deletes the Commands first (replaceWith, delete-before-replace) failed: "unknown provider"
    // (found by the end-to-end test).
    this.commandProvider = new command.Provider(`${name}-command`, {}, child);

    // The kube-dns ClusterIP: from config, else read from the cluster (a read, never managed).
    this.clusterDnsIp =
      settings.clusterDnsIp !== undefined
        ? pulumi.output(settings.clusterDnsIp)
        : k8s.core.v1.Service.get(
            `${name}-kube-dns`,
            `${NAMESPACE}/${settings.dnsServiceName}`,
            child,
          ).spec.clusterIP;
    const resolved = pulumi
      .all([this.clusterDnsIp, args.oldPodsTearDown ?? false])
      .apply(([ip, oldPodsTearDown]) => ({ ...settings, clusterDnsIp: ip, oldPodsTearDown }));
    const objects = resolved.apply(nodeLocalDnsObjects);
    // Each resource takes its fields from the rendered object of the same name, so the component
    // registers exactly what render writes (the typed classes add apiVersion and kind).
    const fields = <K extends string>(which: RenderedObject, ...keys: K[]) =>
      Object.fromEntries(keys.map((key) => [key, objects.apply((o) => o[which][key])])) as Record<
        K,
        pulumi.Output<never>
      >;

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      fields("serviceAccount", "metadata"),
      fixedName,
    );
    const upstreamService = new k8s.core.v1.Service(
      `${name}-kube-dns-upstream`,
      fields("upstreamService", "metadata", "spec"),
      fixedName,
    );
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-corefile`,
      fields("configMap", "metadata", "data"),
      fixedName,
    );
    const nodeProgram = new k8s.core.v1.ConfigMap(
      `${name}-node-program`,
      fields("nodeProgramConfigMap", "metadata", "data"),
      fixedName,
    );
    // With discovery, the record of the nodes this update declares Commands for, written before
    // any switch runs (the DaemonSet waits for it, the Commands for the DaemonSet): a failed
    // update's switches are in it, though not in its stack outputs (discovery.ts).
    const managedNodes =
      settings.discover === undefined
        ? []
        : [
            new k8s.core.v1.ConfigMap(
              `${name}-managed-nodes`,
              { metadata: objects.apply((o) => o.managedNodesConfigMap!.metadata) },
              fixedName,
            ),
          ];
    this.cleanups = this.cleanUpAfterDaemonSet(name, settings, resolved);
    // node-cache reads kube-dns-upstream's env var at pod start, so the Service comes first;
    // `pulumi up` then waits until every pod is available: Ready, after its readiness probe's
    // initial delay (the provider's default await, kstatus).
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-daemonset`,
      fields("daemonSet", "metadata", "spec"),
      {
        ...fixedName,
        dependsOn: [
          serviceAccount,
          upstreamService,
          configMap,
          nodeProgram,
          ...managedNodes,
          ...this.cleanups,
        ],
      },
    );
    const metricsService = new k8s.core.v1.Service(
      `${name}-metrics`,
      fields("metricsService", "metadata", "spec"),
      fixedName,
    );
    // Prometheus Operator objects, as rendered (monitoring.ts).
    const monitoring = resolved.apply(monitoringObjects);
    for (const kind of args.monitoring ?? []) {
      const object = monitoring.apply((o) => o[kind]!);
      new k8s.apiextensions.CustomResource(
        `${name}-${MONITORING_KINDS[kind].resourceSuffix}`,
        {
          apiVersion: MONITORING_API_VERSION,
          kind: MONITORING_KINDS[kind].kind,
          metadata: object.apply((o) => o.metadata),
          spec: object.apply((o) => o.spec),
        },
        { ...fixedName, dependsOn: [metricsService] },
      );
    }

    // kubeadm's copy of kubelet's config, for nodes that join or upgrade: set once the cache runs
    // everywhere; on destroy, put back before the DaemonSet goes (it depends on the DaemonSet).
    if (settings.kubeadmKubeletConfig) {
      this.kubeadmKubeletConfig = new KubeletConfigClusterDns(
        `${name}-kubeadm-kubelet-config`,
        {
          addresses: resolved.apply(({ localDnsIp, clusterDnsIp, fallbackToKubeDns }) => ({
            localDnsIp,
            clusterDnsIp,
            fallbackToKubeDns,
          })),
          kubeconfig: args.kube?.kubeconfig,
          context: args.kube?.context,
        },
        { parent: this, dependsOn: [this.daemonSet] },
      );
    }

    [this.kubeletSwitches, this.revertGuards] = this.switchKubelets(
      name,
      settings,
      resolved,
      pulumi.output(args.repairs ?? {}),
    );
    for (const node of args.retired ?? []) this.retire(name, node);
    this.localDnsIp = settings.localDnsIp;
    this.namespace = NAMESPACE;
    this.registerOutputs({
      clusterDnsIp: this.clusterDnsIp,
      localDnsIp: this.localDnsIp,
      daemonSet: this.daemonSet.metadata.name,
    });
  }

  /**
   * Two remote.Commands per node: the switch, and before it a revert guard. Lifecycle choices, each
   * against a provider trap:
   * - dependsOn DaemonSet: create waits for a ready cache and the delivered node program;
   *   destroy reverts kubelet before the DaemonSet goes (and keeps the DaemonSet if a revert
   *   fails). The DaemonSet depends on both ConfigMaps, so the Commands come after them and go
   *   before them without naming them: two URNs fewer in each Command's state.
   * - the guard: Pulumi records a create only when it completes, so a switch cut short (an
   *   interrupted `pulumi up`) would have no delete. The guard is recorded first; its delete runs
   *   on destroy after the switch's, before the DaemonSet goes, and reverts whatever the node's
   *   own record says (nothing, normally). It has a delete only: the command provider records it
   *   without connecting, so `up` opens one SSH session per node, the switch's. It has no
   *   replaceWith: it must never be deleted while its node stays switched.
   * - deleteBeforeReplace: the old revert runs before the new switch, never after it.
   * - replaceWith DaemonSet (the switch only): a replaced DaemonSet (pods gone) reverts and
   *   re-switches kubelet.
   * - triggers host/port/stateDir: a node moved to another address or state directory reverts
   *   the old one (delete runs with the stored connection and program) instead of silently
   *   switching only the new one.
   * - batches (see rollout.ts): each batch depends on the one before, so a failure stops the
   *   rollout. A round of several nodes is passed through a gate (roundGate), so that each switch
   *   of the next round names one resource instead of every switch of this one.
   * - drift repair: a new repair number changes only the switch's `update` text, so the engine
   *   updates that switch in place (its update runs, nothing is replaced or reverted).
   */
  private switchKubelets(
    name: string,
    settings: Settings,
    resolved: pulumi.Output<ResolvedSettings>,
    repairs: pulumi.Output<Record<string, number>>,
  ): [command.remote.Command[], command.remote.Command[]] {
    const switches: command.remote.Command[] = [];
    const guards: command.remote.Command[] = [];
    const plan = planRollout(settings.nodes, settings.rollout);
    let previousRound: pulumi.Resource | undefined;
    for (const [index, batch] of plan.entries()) {
      const current: command.remote.Command[] = [];
      // A loop, not a map callback: each frame of this call stack is stored in every Command's
      // state (the SDK's stackTrace), per node.
      for (const node of batch) {
        const guard = new command.remote.Command(
          `${name}-kubelet-guard-${node.name}`,
          nodeDeleteArgs(node, settings, resolved, renderGuardProgram),
          {
            parent: this,
            provider: this.commandProvider,
            dependsOn: [this.daemonSet],
            deleteBeforeReplace: true,
          },
        );
        guards.push(guard);
        const kubeletSwitch = new command.remote.Command(
          `${name}-kubelet-${node.name}`,
          {
            ...nodeDeleteArgs(node, settings, resolved, renderSwitchLauncher),
            create: nodeCommandText(node, "create"),
            // The repair numbers come with the live view, which registrations do not wait for.
            update: repairs.apply((numbers) => nodeCommandText(node, "update", numbers[node.name])),
          },
          {
            parent: this,
            provider: this.commandProvider,
            dependsOn: [this.daemonSet, guard, ...(previousRound ? [previousRound] : [])],
            deleteBeforeReplace: true,
            replaceWith: [this.daemonSet],
          },
        );
        current.push(kubeletSwitch);
      }
      switches.push(...current);
      if (index + 1 < plan.length) previousRound = this.roundGate(name, index + 1, current);
    }
    return [switches, guards];
  }

  /**
   * What the next round depends on: a round of one node is its switch; a larger round is a
   * pulumi.Stash (the engine's own resource: no provider, nothing on the node) that depends on
   * every switch of the round. Each dependency is a URN in the dependent's state, so without the
   * gate a 1,000-node rollout at 100 nodes a round would store 100 URNs (about 13 KB) with every
   * switch; with it, one. A Stash costs about 1 KB of state, more than one URN: hence none for a
   * round of one. Its value is the round's node count, shown by `pulumi stack export`.
   */
  private roundGate(
    name: string,
    round: number,
    switches: command.remote.Command[],
  ): pulumi.Resource {
    if (switches.length === 1) return switches[0]!;
    return new pulumi.Stash(
      `${name}-round-${round}`,
      { input: switches.length },
      { parent: this, dependsOn: switches },
    );
  }

  /**
   * One cleanup Command per node, which the DaemonSet depends on: on destroy the engine deletes it
   * only after the DaemonSet is gone (and the provider's delete waits until its pods are gone),
   * and its delete removes what node-cache, which runs with -skipteardown, left on the node: its
   * interface and iptables rules (cleanup.bash). It has no create or update: `up` never connects
   * for it. A node that leaves the fleet while the DaemonSet stays finds node-cache still running
   * there, and its cleanup leaves everything as it is.
   */
  private cleanUpAfterDaemonSet(
    name: string,
    settings: Settings,
    resolved: pulumi.Output<ResolvedSettings>,
  ): command.remote.Command[] {
    const cleanups: command.remote.Command[] = [];
    // A loop, not a map callback (see switchKubelets).
    for (const node of settings.nodes) {
      const cleanup = new command.remote.Command(
        `${name}-cleanup-${node.name}`,
        {
          connection: pulumi.secret(nodeConnection(node)),
          stdin: resolved.apply((s) => renderCleanupProgram(nodeScriptParams(s, node))),
          // No triggers: a node moved to another address keeps its cleanup, which then runs there
          // (a replacement would run it at the old address, while node-cache still runs).
          delete: nodeCommandText(node, "delete"),
        },
        { parent: this, provider: this.commandProvider, deleteBeforeReplace: true },
      );
      cleanups.push(cleanup);
    }
    return cleanups;
  }

  /**
   * A node that left the cluster (its machine gone): its switch and guard are updated to Commands
   * with no create, update or delete, which the command provider applies without connecting
   * (it runs nothing when neither `update` nor `create` is set). They leave the state at the next
   * `up`, again without connecting, as they then have no delete. `triggers` keep their stored
   * value: a changed trigger would replace the Command, and a replacement runs the old delete,
   * dialling the dead host.
   *
   * `retainOnDelete` is for `pulumi destroy --run-program` after a scale-in with no `up` since:
   * destroy deletes each Command with the inputs it has in state (the gone node's revert), but
   * with the resource options this program registers now, and retainOnDelete drops a Command from
   * state without calling the provider (Pulumi's step generator in destroy mode, and DeleteStep).
   * Only the gone nodes' Commands carry it: every node still there is reverted as always.
   */
  private retire(name: string, node: ManagedNode): void {
    const opts = {
      parent: this,
      provider: this.commandProvider,
      ignoreChanges: ["triggers"],
      retainOnDelete: true,
    };
    const args = { connection: pulumi.secret({ host: node.host, port: node.port }) };
    new command.remote.Command(`${name}-kubelet-guard-${node.name}`, args, opts);
    new command.remote.Command(`${name}-kubelet-${node.name}`, args, opts);
    new command.remote.Command(`${name}-cleanup-${node.name}`, args, opts);
  }
}

/** What the switch and the guard share: the node's connection, program, delete and triggers. */
function nodeDeleteArgs(
  node: NodeSettings,
  settings: Settings,
  resolved: pulumi.Output<ResolvedSettings>,
  render: (p: ReturnType<typeof nodeScriptParams>) => string,
): command.remote.CommandArgs {
  return {
    connection: pulumi.secret(nodeConnection(node)),
    stdin: resolved.apply((s) => render(nodeScriptParams(s, node))),
    delete: nodeCommandText(node, "delete"),
    triggers: [node.host, node.port, settings.stateDir],
  };
}
