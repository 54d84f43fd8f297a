// kubelet's side of the node program's delivery, on a systemd test node: the ConfigMap volume of
// the node-local-dns pod, laid out the way kubelet's atomic writer does it under
// <root dir>/pods/<pod uid>/volumes/kubernetes.io~configmap/<volume>/:
//   ..<timestamp>/<key>      the files, mode 0400 (defaultMode in the DaemonSet)
//   ..data -> ..<timestamp>  swapped with a rename when the ConfigMap changes
//   <key> -> ..data/<key>
// The e2e pod runner calls it where kubelet would (pod start, ConfigMap change); the node program
// tests call it to put a delivered program, or another one, in front of the switch launcher.

import { DELIVERED_NODE_PROGRAM, NODE_PROGRAM_DELIVERY } from "../../components/nodeScript";
import type { SystemdNode } from "./systemdNode";

export const DEFAULT_KUBELET_ROOT_DIR = "/var/lib/kubelet";

export interface VolumeOptions {
  podUid: string;
  /** The program text; default the one this checkout delivers. */
  program?: string;
  rootDir?: string;
}

/** The volume's directory on the node. */
export function nodeProgramVolumeDir(podUid: string, rootDir = DEFAULT_KUBELET_ROOT_DIR): string {
  return `${rootDir}/pods/${podUid}/volumes/kubernetes.io~configmap/${NODE_PROGRAM_DELIVERY.volume}`;
}

/** Writes (or updates, as kubelet does: new timestamped directory, then the ..data swap). */
export async function writeNodeProgramVolume(
  node: SystemdNode,
  options: VolumeOptions,
): Promise<void> {
  const dir = nodeProgramVolumeDir(options.podUid, options.rootDir);
  const file = NODE_PROGRAM_DELIVERY.file;
  const script = [
    "set -euo pipefail",
    `dir='${dir}'`,
    `mkdir -p -m 0750 "$dir"`,
    `stamp="..$(date +%Y_%m_%d_%H_%M_%S.%N)"`,
    `mkdir -m 0755 "$dir/$stamp"`,
    `cat >"$dir/$stamp/${file}"`,
    `chmod 0400 "$dir/$stamp/${file}"`,
    `old=$(readlink "$dir/..data" || true)`,
    `ln -s "$stamp" "$dir/..data_tmp"`,
    `mv -T "$dir/..data_tmp" "$dir/..data"`,
    `[ -L "$dir/${file}" ] || ln -s "..data/${file}" "$dir/${file}"`,
    `if [ -n "$old" ]; then rm -rf -- "$dir/$old"; fi`,
  ].join("\n");
  const r = await node.run(script, options.program ?? DELIVERED_NODE_PROGRAM);
  if (r.code !== 0) throw new Error(`writeNodeProgramVolume: ${r.stderr.trim()}`);
}

/** Removes the pod's directory, as kubelet does once the pod is gone. */
export async function removePodDir(
  node: SystemdNode,
  podUid: string,
  rootDir = DEFAULT_KUBELET_ROOT_DIR,
): Promise<void> {
  const r = await node.run(`rm -rf -- '${rootDir}/pods/${podUid}'`);
  if (r.code !== 0) throw new Error(`removePodDir: ${r.stderr.trim()}`);
}
