// What the offline render writes, as pure data: relative path -> file content. The CLI
// (cli/render.ts) only writes these files; the component registers the same objects and programs.
import { stringify } from "yaml";
import { keptOriginal, planKubeletConfigEdit } from "./kubeletConfigMap";
import { nodeLocalDnsObjects } from "./kubernetesObjects";
import { monitoringObjects } from "./monitoring";
import { nodeCommandText, nodeScriptParams } from "./nodeCommand";
import {
  DELIVERED_NODE_PROGRAM,
  NODE_PROGRAM_DELIVERY,
  renderCleanupProgram,
  renderGuardProgram,
  renderSwitchLauncher,
} from "./nodeScript";
import { describePlan, planRollout } from "./rollout";
import { NodeSettings, ResolvedSettings } from "./settings";

export interface RenderedFile {
  path: string;
  content: string;
  mode: number;
}

/** Per node: the three programs the node's Commands send on stdin, and the command lines. */
export const NODE_FILES = ["switch.bash", "guard.bash", "cleanup.bash", "commands.txt"] as const;
/** What earlier versions wrote per node (a stale node directory holding them is ours to remove). */
export const EARLIER_NODE_FILES = ["program.bash", "create.sh", "update.sh", "delete.sh"] as const;

/** kube-system/kubelet-config as saved from the cluster: its `kubelet` document, our annotation. */
export interface SavedKubeletConfig {
  text: string;
  annotation?: string;
}

/** With kubeadmKubeletConfig: the `kubelet` document as `up` writes it into kubelet-config. */
export const KUBELET_CONFIG_FILE = "kubelet-config.yaml";

/** With monitoring asked for: the ServiceMonitor and PrometheusRule, applied when their CRDs exist. */
export const MONITORING_FILE = "monitoring.yaml";

export function renderStack(
  settings: ResolvedSettings,
  kubeletConfig?: SavedKubeletConfig,
): RenderedFile[] {
  const yaml = (objects: object[]) =>
    objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
  const manifests = yaml(nodeLocalDnsObjects(settings).all);
  const files: RenderedFile[] = [
    { path: "manifests.yaml", content: manifests, mode: 0o644 },
    { path: "rollout.txt", content: rolloutText(settings), mode: 0o644 },
    // The ConfigMap's program as a file of its own, to read as bash rather than as YAML.
    { path: NODE_PROGRAM_DELIVERY.file, content: DELIVERED_NODE_PROGRAM, mode: 0o644 },
  ];
  const monitoring = Object.values(monitoringObjects(settings));
  if (monitoring.length > 0) {
    files.push({ path: MONITORING_FILE, content: yaml(monitoring), mode: 0o644 });
  }
  if (kubeletConfig !== undefined) {
    const known = keptOriginal(kubeletConfig.annotation);
    const edit = planKubeletConfigEdit(kubeletConfig.text, known, settings);
    files.push({ path: KUBELET_CONFIG_FILE, content: edit.text, mode: 0o644 });
  }
  for (const node of settings.nodes) {
    const params = nodeScriptParams(settings, node);
    const dir = `nodes/${node.name}`;
    files.push(
      { path: `${dir}/switch.bash`, content: renderSwitchLauncher(params), mode: 0o755 },
      { path: `${dir}/guard.bash`, content: renderGuardProgram(params), mode: 0o755 },
      { path: `${dir}/cleanup.bash`, content: renderCleanupProgram(params), mode: 0o755 },
      { path: `${dir}/commands.txt`, content: commandsText(node), mode: 0o644 },
    );
  }
  return files;
}

/** What the node's three Commands run, and how to run the same by hand. */
function commandsText(node: NodeSettings): string {
  const switchLines = (["create", "update", "delete"] as const).map(
    (action) => `switch ${action}: ${nodeCommandText(node, action)} < switch.bash`,
  );
  return (
    [
      `# The commands pulumi runs on node ${node.name} (${node.user}@${node.host}:${node.port}),`,
      "# each with a program file on stdin. switch.bash runs the node program that the ConfigMap",
      `# ${NODE_PROGRAM_DELIVERY.configMap} delivers (../../${NODE_PROGRAM_DELIVERY.file}).`,
      "# By hand, as root on the node once the cache runs there: bash switch.bash check",
      "# A drift repair (README: Drift repair) runs the switch's update with one more word,",
      "# repair-<n>, which the program only logs: `pulumi preview` shows the text it runs.",
      "# The guard runs only on destroy, before the DaemonSet goes; the cleanup after it is gone.",
      ...switchLines,
      `guard  delete: ${nodeCommandText(node, "delete")} < guard.bash`,
      `cleanup delete: ${nodeCommandText(node, "delete")} < cleanup.bash`,
    ].join("\n") + "\n"
  );
}

/** The rollout plan: a line for the whole, then the nodes of each round. */
export function rolloutText(settings: ResolvedSettings): string {
  const plan = planRollout(settings.nodes, settings.rollout);
  const rounds = plan.map((batch, i) => `round ${i + 1}: ${batch.map((n) => n.name).join(" ")}`);
  return [`# ${describePlan(plan)}; each round starts when the one before succeeded`, ...rounds]
    .join("\n")
    .concat("\n");
}
