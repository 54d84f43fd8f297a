// The floor of the real-engine section (bench/realEngine.ts): a Pulumi program that registers the
// same resource graph as index.ts for the same stack config (the six objects, the command
// provider, a guard, a switch and a cleanup per node with the same options, the switches in the same
// rounds), whose Commands do nothing on the node: `true`, no stdin. What it costs is the engine,
// the providers, the DaemonSet's readiness wait and one SSH session per Command that runs on up
// (the switch's); what ours costs beyond it is the node program's work and the kubelet restarts.
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { nodeLocalDnsObjects, parseSettings, rawConfigFromEngine } from "../components";
import { nodeConnection } from "../components/nodeCommand";
import { planRollout } from "../components/rollout";

const runtime = pulumi.runtime as unknown as { isConfigSecret(key: string): boolean };
const { settings } = parseSettings(
  rawConfigFromEngine(pulumi.runtime.allConfig(), runtime.isConfigSecret),
);
if (settings.clusterDnsIp === undefined) throw new Error("the floor needs clusterDnsIp in config");
const objects = nodeLocalDnsObjects({ ...settings, clusterDnsIp: settings.clusterDnsIp });
/** An object's fields without apiVersion and kind, as the component registers them. */
const o = Object.fromEntries(
  Object.entries(objects).map(([name, obj]) => [
    name,
    Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "apiVersion" && k !== "kind")),
  ]),
) as Record<Exclude<keyof typeof objects, "all">, never>;

class Floor extends pulumi.ComponentResource {
  constructor(name: string) {
    super("nodelocaldns:index:NodeLocalDns", name, {});
    const fixed = { parent: this, deleteBeforeReplace: true };
    const provider = new command.Provider(`${name}-command`, {}, { parent: this });
    const sa = new k8s.core.v1.ServiceAccount(`${name}-service-account`, o.serviceAccount, fixed);
    const upstream = new k8s.core.v1.Service(`${name}-kube-dns-upstream`, o.upstreamService, fixed);
    const corefile = new k8s.core.v1.ConfigMap(`${name}-corefile`, o.configMap, fixed);
    const program = new k8s.core.v1.ConfigMap(
      `${name}-node-program`,
      o.nodeProgramConfigMap,
      fixed,
    );
    // The cleanups come first, as in the component: the DaemonSet depends on them.
    const cleanups = settings.nodes.map(
      (node) =>
        new command.remote.Command(
          `${name}-cleanup-${node.name}`,
          { connection: pulumi.secret(nodeConnection(node)), delete: "true" },
          { parent: this, provider, deleteBeforeReplace: true },
        ),
    );
    const ds = new k8s.apps.v1.DaemonSet(`${name}-daemonset`, o.daemonSet, {
      ...fixed,
      dependsOn: [sa, upstream, corefile, program, ...cleanups],
    });
    new k8s.core.v1.Service(`${name}-metrics`, o.metricsService, fixed);
    const plan = planRollout(settings.nodes, settings.rollout);
    let previous: pulumi.Resource[] = [];
    for (const [index, batch] of plan.entries()) {
      const round = batch.map((node) => {
        const args = {
          connection: pulumi.secret(nodeConnection(node)),
          create: "true",
          update: "true",
          delete: "true",
          triggers: [node.host, node.port, settings.stateDir],
        };
        const base = { parent: this, provider, deleteBeforeReplace: true };
        // As the component's guard: a delete only, so up records it without connecting.
        const guardArgs = { connection: args.connection, delete: "true", triggers: args.triggers };
        const guard = new command.remote.Command(`${name}-kubelet-guard-${node.name}`, guardArgs, {
          ...base,
          dependsOn: [ds],
        });
        return new command.remote.Command(`${name}-kubelet-${node.name}`, args, {
          ...base,
          dependsOn: [ds, guard, ...previous],
          replaceWith: [ds],
        });
      });
      // The component's round gate: a round of several nodes, but not the last, through a Stash.
      const gated = round.length > 1 && index + 1 < plan.length;
      previous = gated
        ? [
            new pulumi.Stash(
              `${name}-round-${index + 1}`,
              { input: round.length },
              { parent: this, dependsOn: round },
            ),
          ]
        : round;
    }
    this.registerOutputs({});
  }
}

new Floor("nodelocaldns");
