// The node program: the bash that switches one node's kubelet to the cache (create/update) and
// back (delete). It is rendered here from validated settings and sent on stdin to `bash -s
// <action>`, so it must need nothing but its own text and the files it keeps on the node. The
// bash itself lives in fragments under ./nodeScript/, each with the reasons for its choices.
import { shellQuote } from "./shell";
import type { KubeletFile } from "./settings";
import { FILES, REGEXES } from "./nodeScript/files";
import { STEPS } from "./nodeScript/steps";

export interface NodeScriptParams {
  nodeName: string;
  /** The new cluster DNS (IPv4 or IPv6). */
  localDnsIp: string;
  /** The kube-dns ClusterIP: only used to adopt a node that was switched by hand. */
  clusterDnsIp: string;
  kubelet: KubeletFile;
  /** The one directory holding all node-side state. */
  stateDir: string;
  readyTimeoutSeconds: number;
  kubeletTimeoutSeconds: number;
}

export type NodeAction = "create" | "update" | "delete";

/**
 * The node program: bash text that defines everything and ends by dispatching on "$1"
 * (create|update|delete). It is what the Command sends on stdin to `bash -s <action>` (or
 * `sudo -n bash -s <action>`). No secret ever goes in it.
 */
export function renderNodeProgram(p: NodeScriptParams): string {
  checkParams(p);
  const q = shellQuote;
  const params =
    `readonly N=${q(p.nodeName)} L=${q(p.localDnsIp)} C=${q(p.clusterDnsIp)}` +
    ` F=${q(p.kubelet.format)} KP=${q(p.kubelet.path ?? "")} S=${q(p.stateDir)}` +
    ` RT=${q(String(p.readyTimeoutSeconds))} KT=${q(String(p.kubeletTimeoutSeconds))}\n` +
    "readonly" +
    Object.entries(REGEXES)
      .map(([name, re]) => ` ${name}=${q(re)}`)
      .join("") +
    "\n";
  // The whole program is one `{ ... }` group: bash reads a script from a pipe as it goes, so a
  // command that reads stdin could otherwise swallow the rest of the program. bash parses the
  // group to its end before running any of it, and the first thing it runs detaches stdin.
  return `{\nexec </dev/null\n${HEADER}${params}${FILES}${STEPS}}\n`;
}

/**
 * A self-contained script for render: "#!/usr/bin/env bash\n" + "set -- <action>\n" +
 * renderNodeProgram(p). Runs as root with `bash file` or `bash -s` over ssh, no args, no
 * environment.
 */
export function renderNodeScript(p: NodeScriptParams, action: NodeAction): string {
  return `#!/usr/bin/env bash\nset -- ${shellQuote(action)}\n${renderNodeProgram(p)}`;
}

// -E: the ERR trap (below) also fires inside functions. LC_ALL=C: regexes and globs match bytes,
// whatever locale sshd passes on. HUP/PIPE ignored: a dropped SSH connection must not kill the
// program between editing the kubelet file and confirming the restart; output just goes nowhere.
const HEADER = "set -Eeuo pipefail\numask 077\nexport LC_ALL=C\ntrap '' HUP PIPE\n";

// The values are validated upstream; these are the few properties the program's own safety rests
// on (it deletes files under stateDir and does arithmetic with the timeouts).
function checkParams(p: NodeScriptParams): void {
  const absolute = /^\/[^\0]*[^/\0]$/;
  if (!absolute.test(p.stateDir) || p.stateDir.split("/").includes("..")) {
    throw new Error(`stateDir must be an absolute path other than / without "..": ${p.stateDir}`);
  }
  if (p.kubelet.path !== undefined && !absolute.test(p.kubelet.path)) {
    throw new Error(`kubelet.path must be an absolute path: ${p.kubelet.path}`);
  }
  for (const [name, n] of [
    ["readyTimeoutSeconds", p.readyTimeoutSeconds],
    ["kubeletTimeoutSeconds", p.kubeletTimeoutSeconds],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  }
  const ip = /^[0-9A-Fa-f.:]+$/;
  if (!ip.test(p.localDnsIp) || !ip.test(p.clusterDnsIp)) {
    throw new Error("localDnsIp and clusterDnsIp must be IP addresses");
  }
}
