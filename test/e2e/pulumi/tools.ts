// What the suites that run the Pulumi engine against a cluster (pulumi.test.ts, discovery.test.ts)
// need: every toolchain artifact, and root with systemd test nodes. Skipped outside CI when one
// is missing, failed under CI=true (toolchain.ts, systemdNode.ts).
import { systemdNodeTestOptions } from "../../support/systemdNode";
import { toolchainTestOptions } from "../support/toolchain";

export const CLUSTER_TOOLS = [
  "pulumi",
  "pulumi-resource-pulumi-nodejs",
  "pulumi-resource-kubernetes",
  "pulumi-resource-command",
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
  "kwok-stages",
  "node-cache",
  "servicemonitors-crd",
  "prometheusrules-crd",
] as const;

/** The test options of such a suite: the first missing capability, if any, skips it. */
export function clusterTestOptions(): { skip?: string } {
  const toolOptions = toolchainTestOptions(CLUSTER_TOOLS);
  return toolOptions.skip !== undefined ? toolOptions : systemdNodeTestOptions();
}
