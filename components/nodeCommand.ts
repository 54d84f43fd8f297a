// How the component runs a node program: the command text and the SSH connection of one node.
// The program itself travels on stdin, so the command text stays short and holds no secret.
import type { NodeAction, NodeScriptParams } from "./nodeScript";
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

/** `bash -s <action>`, through `sudo -n` when the SSH user is not root and sudo is on. */
export function nodeCommandText(node: NodeSettings, action: NodeAction): string {
  const run = `bash -s ${action}`;
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
