// The program: stack config -> NodeLocalDns component -> stack outputs. Bad config stops here,
// with every bad key named, before any resource is registered.
import * as pulumi from "@pulumi/pulumi";
import {
  APP_NAME,
  ConfigError,
  NodeLocalDns,
  parseSettings,
  rawConfigFromEngine,
} from "./components";

// isConfigSecret is exported by the SDK's runtime but missing from its type declarations.
const runtime = pulumi.runtime as unknown as { isConfigSecret(key: string): boolean };

function loadSettings() {
  try {
    return parseSettings(rawConfigFromEngine(pulumi.runtime.allConfig(), runtime.isConfigSecret));
  } catch (err) {
    // RunError prints the message alone: the list of problems, not a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const { settings, warnings } = loadSettings();
warnings.forEach((w) => void pulumi.log.warn(w));

const dns = new NodeLocalDns("nodelocaldns", { settings });

export const clusterDnsIp = dns.clusterDnsIp;
export const localDnsIp = dns.localDnsIp;
export const namespace = dns.namespace;
export const daemonSetName = dns.daemonSet.metadata.name;
/** What each node's kubelet switch reported (old value, new value, restarted or not). */
export const kubeletSwitches = Object.fromEntries(
  settings.nodes.map((node, i) => [node.name, dns.kubeletSwitches[i].stdout]),
);
/** What an operator checks after `pulumi up`. */
export const checks = [
  `kubectl -n ${dns.namespace} rollout status daemonset/${APP_NAME}`,
  `kubectl -n ${dns.namespace} get pods -l k8s-app=${APP_NAME} -o wide`,
  `on a node: ip -o addr show | grep ${dns.localDnsIp}   (the cache's address is bound)`,
  `in a new pod: cat /etc/resolv.conf   (nameserver ${dns.localDnsIp})`,
];
