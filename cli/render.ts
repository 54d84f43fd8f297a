// npm run render -- --stack <name> --out <dir> [--cluster-dns-ip <ip>] [--nodes-from <file>]
//   [--kubelet-config-from <file>] [--project-dir <dir>]
//
// Offline: reads Pulumi.yaml and Pulumi.<stack>.yaml itself (no Pulumi CLI, no cluster, no secret
// decryption) and writes what `pulumi up` would apply and run: <out>/manifests.yaml, the node
// program its ConfigMap delivers (<out>/node-program.bash) and, per node,
// <out>/nodes/<node>/{switch.bash,guard.bash,commands.txt}; with monitoring, the Prometheus
// Operator objects (<out>/monitoring.yaml); with kubeadmKubeletConfig, kubeadm's kubelet-config
// document as `up` would write it (<out>/kubelet-config.yaml). Node directories an earlier render
// left for nodes no longer in the stack are removed (a loop over out/nodes/* must not find them).
// Bad config writes nothing.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, parseSettings } from "../components/config";
import { tearsDownOnExit } from "../components/daemonSetRollout";
import { KUBELET_CONFIG_MAP, ORIGINAL_ANNOTATION } from "../components/kubeletConfigMap";
import {
  EARLIER_NODE_FILES,
  KUBELET_CONFIG_FILE,
  MONITORING_FILE,
  NODE_FILES,
  renderStack,
  type SavedKubeletConfig,
} from "../components/render";
import type { Settings } from "../components/settings";
import { describePlan, planRollout } from "../components/rollout";
import { rawConfigFromFiles } from "../components/stackConfig";
import { discoveredFleet, listedFleet } from "./fleet";

const USAGE = `usage: npm run render -- --stack <name> --out <dir> [--cluster-dns-ip <ip>] [--nodes-from <file>] [--kubelet-config-from <file>] [--daemonset-from <file>] [--project-dir <dir>]

Writes, offline, what \`pulumi up --stack <name>\` would apply and run:
  <dir>/manifests.yaml                 the Kubernetes objects, in apply order
  <dir>/rollout.txt                    the rollout plan: which nodes in which round
  <dir>/node-program.bash              the node program, as its ConfigMap delivers it to the nodes
  <dir>/nodes/<node>/switch.bash       the launcher its switch Command sends on stdin, which runs
                                       the delivered node program
  <dir>/nodes/<node>/guard.bash        the revert guard its guard Command sends on stdin
  <dir>/nodes/<node>/cleanup.bash      what its cleanup Command sends on stdin (destroy only)
  <dir>/nodes/<node>/commands.txt      the command lines the three Commands run
  <dir>/monitoring.yaml                with monitoring asked for: the ServiceMonitor and the
                                       PrometheusRule (up creates each only if its CRD exists)
  <dir>/kubelet-config.yaml            with kubeadmKubeletConfig: the \`kubelet\` document of
                                       kube-system/kubelet-config as up writes it
  --cluster-dns-ip <ip>   the kube-dns ClusterIP, when nodelocaldns:clusterDnsIp is not set
  --nodes-from <file>     with nodelocaldns:discover, the cluster's Nodes: the output of
                          \`kubectl get nodes -o json\` (render has no state: nodes that left the
                          cluster since the last \`up\` are not shown)
  --kubelet-config-from <file>
                          with nodelocaldns:kubeadmKubeletConfig, the cluster's ConfigMap: the
                          output of \`kubectl -n kube-system get configmap kubelet-config -o json\`
  --daemonset-from <file> the cluster's DaemonSet, when there is one: the output of
                          \`kubectl -n kube-system get daemonset node-local-dns -o json\`. One of
                          an earlier version (node-cache without -skipteardown) is updated the old
                          way, each old pod first (README "Cache upgrades"); without this file,
                          render shows the update of a DaemonSet of this version
  --project-dir <dir>     where Pulumi.yaml is (default: .)
  --help                  this text`;

export function main(argv: string[]): number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        stack: { type: "string" },
        out: { type: "string" },
        "cluster-dns-ip": { type: "string" },
        "nodes-from": { type: "string" },
        "kubelet-config-from": { type: "string" },
        "daemonset-from": { type: "string" },
        "project-dir": { type: "string", default: "." },
        help: { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`render: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (args.stack === undefined || args.out === undefined) {
    console.error(USAGE);
    return 2;
  }
  try {
    const raw = rawConfigFromFiles(args["project-dir"] ?? ".", args.stack);
    const fromFlag = args["cluster-dns-ip"];
    if (fromFlag !== undefined) {
      if (raw.values.clusterDnsIp !== undefined && raw.values.clusterDnsIp !== fromFlag) {
        throw new Error(
          "--cluster-dns-ip contradicts nodelocaldns:clusterDnsIp in the stack config: set one of them",
        );
      }
      raw.values.clusterDnsIp = fromFlag;
    }
    const { settings, warnings } = parseSettings(raw);
    warnings.forEach((w) => console.error(`warning: ${w}`));
    const clusterDnsIp = settings.clusterDnsIp;
    if (clusterDnsIp === undefined) {
      throw new Error(
        "the kube-dns ClusterIP is unknown offline: set nodelocaldns:clusterDnsIp or pass --cluster-dns-ip <ip> " +
          "(kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')",
      );
    }
    const fleet =
      settings.discover === undefined
        ? listedFleet(settings, args["nodes-from"])
        : discoveredFleet(settings, args["nodes-from"]);
    fleet.warnings.forEach((w) => console.error(`warning: ${w}`));
    const nodes = fleet.nodes;
    const kubeletConfig = savedKubeletConfig(settings, args["kubelet-config-from"]);
    const oldPodsTearDown = savedDaemonSetTearsDown(args["daemonset-from"]);
    const files = renderStack({ ...settings, nodes, clusterDnsIp, oldPodsTearDown }, kubeletConfig);
    const removed = removeStaleNodeDirs(
      args.out,
      nodes.map((n) => n.name),
    );
    const made = new Set<string>();
    for (const file of files) {
      const target = path.join(args.out, file.path);
      const dir = path.dirname(target);
      // Once per directory: a thousand nodes write three files each.
      if (!made.has(dir)) fs.mkdirSync(dir, { recursive: true });
      made.add(dir);
      fs.writeFileSync(target, file.content, { mode: file.mode });
      fs.chmodSync(target, file.mode);
    }
    const extra = [MONITORING_FILE, KUBELET_CONFIG_FILE].filter((f) =>
      files.some((file) => file.path === f),
    );
    const written = ["manifests.yaml", "rollout.txt", "node-program.bash", ...extra];
    console.log(
      `wrote ${files.length} files to ${args.out} (${written.join(", ")}, ${nodes.length} node directories)`,
    );
    console.log(`rollout: ${describePlan(planRollout(nodes, settings.rollout))}`);
    for (const dir of removed) console.log(`removed ${dir}: its node is no longer in the stack`);
    return 0;
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : `render: ${(err as Error).message}`);
    return 1;
  }
}

/** Whether the DaemonSet saved in `file` runs node-cache that tears down on exit (no file: no). */
function savedDaemonSetTearsDown(file: string | undefined): boolean {
  if (file === undefined) return false;
  let daemonSet: unknown;
  try {
    daemonSet = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(
      `--daemonset-from ${file}: not a DaemonSet as JSON (${(err as Error).message})`,
    );
  }
  if ((daemonSet as { kind?: unknown } | null)?.kind !== "DaemonSet") {
    throw new Error(
      `--daemonset-from ${file}: not a DaemonSet (kubectl ... get daemonset ... -o json)`,
    );
  }
  return tearsDownOnExit(daemonSet);
}

/** With kubeadmKubeletConfig, the ConfigMap saved in `file`; without it, a file is a mistake. */
function savedKubeletConfig(
  settings: Settings,
  file: string | undefined,
): SavedKubeletConfig | undefined {
  if (!settings.kubeadmKubeletConfig) {
    if (file !== undefined)
      throw new Error("--kubelet-config-from needs nodelocaldns:kubeadmKubeletConfig");
    return undefined;
  }
  if (file === undefined) {
    throw new Error(
      "nodelocaldns:kubeadmKubeletConfig edits the cluster's kube-system/kubelet-config: pass " +
        "--kubelet-config-from <file> (kubectl -n kube-system get configmap kubelet-config -o json > kubelet-config.json)",
    );
  }
  let configMap: {
    metadata?: { annotations?: Record<string, string> };
    data?: Record<string, string>;
  };
  try {
    configMap = JSON.parse(fs.readFileSync(file, "utf8")) as typeof configMap;
  } catch (err) {
    throw new Error(`--kubelet-config-from ${file}: ${(err as Error).message}`);
  }
  const text = configMap.data?.[KUBELET_CONFIG_MAP.key];
  if (typeof text !== "string") {
    throw new Error(
      `--kubelet-config-from ${file}: no \`${KUBELET_CONFIG_MAP.key}\` key in its data`,
    );
  }
  return { text, annotation: configMap.metadata?.annotations?.[ORIGINAL_ANNOTATION] };
}

/**
 * Removes <out>/nodes/<name> directories of nodes not in the stack. Only directories that hold
 * nothing but files a render writes (current or earlier layouts) are removed; anything else stays.
 */
function removeStaleNodeDirs(out: string, keep: string[]): string[] {
  const nodesDir = path.join(out, "nodes");
  const ours = new Set<string>([...NODE_FILES, ...EARLIER_NODE_FILES]);
  const removed: string[] = [];
  if (!fs.existsSync(nodesDir)) return removed;
  for (const entry of fs.readdirSync(nodesDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || keep.includes(entry.name)) continue;
    const dir = path.join(nodesDir, entry.name);
    const names = fs.readdirSync(dir);
    if (names.length > 0 && names.every((name) => ours.has(name))) {
      fs.rmSync(dir, { recursive: true });
      removed.push(dir);
    }
  }
  return removed;
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
