// How the component runs a node program: the command text and the SSH connection of one node.
// The program itself travels on stdin, so the command text stays short and holds no secret.
import type { NodeAction, NodeScriptParams } from "./nodeScript";
import { shellQuote } from "./shell";
import type { NodeSettings, ResolvedSettings } from "./settings";

/** What the node program of one node is rendered from. */
export function nodeScriptParams(s: ResolvedSettings, node: NodeSettings): NodeScriptParams {
  return {
    nodeName: node.name,
    localDnsIp: s.localDnsIp,
    clusterDnsIp: s.clusterDnsIp,
    fallbackToKubeDns: s.fallbackToKubeDns,
    clusterDomain: s.clusterDomain,
    kubelet: node.kubelet,
    stateDir: s.stateDir,
    readyTimeoutSeconds: s.rollout.readyTimeoutSeconds,
    kubeletTimeoutSeconds: s.rollout.kubeletTimeoutSeconds,
  };
}

/**
 * `bash -s <action>`, through `sudo -n` when the SSH user is not root and sudo is on. `repair`: the
 * node's drift repair number (kubeletRepair.ts), which an update carries as `repair-<n>`: the node
 * program logs it and switches as any update does; a new number is what makes Pulumi run it.
 */
export function nodeCommandText(node: NodeSettings, action: NodeAction, repair = 0): string {
  if (!Number.isSafeInteger(repair) || repair < 0) throw new Error("repair must be a count");
  const words = ["bash", "-s", action];
  if (action === "update" && repair > 0) words.push(`repair-${repair}`);
  const run = words.map(shellQuote).join(" ");
  return node.user !== "root" && node.sudo ? `sudo -n ${run}` : run;
}

export interface NodeConnection {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  hostKey?: string;
  proxy?: NodeConnection;
}

/** The remote.Command connection of a node (the component marks it secret as a whole). */
export function nodeConnection(node: NodeSettings): NodeConnection {
  const conn: NodeConnection = { host: node.host, port: node.port, user: node.user };
  if (node.privateKey !== undefined) conn.privateKey = node.privateKey;
  if (node.hostKey !== undefined) conn.hostKey = node.hostKey;
  if (node.proxy !== undefined) {
    const { host, port, user, privateKey, hostKey } = node.proxy;
    conn.proxy = { host, port, user };
    if (privateKey !== undefined) conn.proxy.privateKey = privateKey;
    if (hostKey !== undefined) conn.proxy.hostKey = hostKey;
  }
  return conn;
}
