// What the program reads at program time. From the cluster (through @kubernetes/client-node, with
// the kubernetes provider's kubeconfig and context): the Nodes for discovery, a ConfigMap's data
// (kube-proxy's mode), which CRDs are installed (monitoring). From this stack's last update: the
// nodes it managed (its own `managedNodes` output, read through a StackReference to itself).
// Everything they return goes to pure functions (discovery.ts, kubeProxyMode.ts, monitoring.ts).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ManagedNode } from "./discovery";
import { apiextensionsV1Api, apiStatus, coreV1Api, type KubeSettings } from "./kubeClient";

export type { KubeSettings };

/** Page size of the Node list: bounded memory on large clusters. */
const PAGE_SIZE = 500;

/** The kubernetes provider's settings from the stack config (the program's view of them). */
export function providerKubeSettings(): KubeSettings {
  const providerConfig = new pulumi.Config("kubernetes");
  return { kubeconfig: providerConfig.get("kubeconfig"), context: providerConfig.get("context") };
}

/**
 * Whether the program can know a cluster to ask: the provider's kubeconfig, KUBECONFIG,
 * ~/.kube/config, or a pod's service account. Without one, client-node would fall back to
 * localhost:8080, which is no cluster of this stack.
 */
export function hasKubeconfig(kube: KubeSettings): boolean {
  return (
    kube.kubeconfig !== undefined ||
    (process.env.KUBECONFIG ?? "") !== "" ||
    fs.existsSync(path.join(os.homedir(), ".kube", "config")) ||
    process.env.KUBERNETES_SERVICE_HOST !== undefined
  );
}

/** The data of ConfigMap namespace/name; undefined when there is no such ConfigMap. */
export async function readConfigMapData(
  kube: KubeSettings,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  const api = await coreV1Api(kube);
  try {
    const configMap = await api.readNamespacedConfigMap({ namespace, name });
    return configMap.data ?? {};
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}

/** Which of these CustomResourceDefinitions the cluster has. */
export async function installedCrds(kube: KubeSettings, names: string[]): Promise<Set<string>> {
  const api = await apiextensionsV1Api(kube);
  const found = await Promise.all(
    names.map((name) =>
      api.readCustomResourceDefinition({ name }).then(
        () => true,
        (err: unknown) => {
          if (apiStatus(err) === 404) return false;
          throw err;
        },
      ),
    ),
  );
  return new Set(names.filter((_, i) => found[i]));
}

/** Every Node of the cluster, as a NodeList, reached the way the kubernetes provider is. */
export async function listClusterNodes(kube: KubeSettings): Promise<{ items: unknown[] }> {
  const api = await coreV1Api(kube);
  const items: unknown[] = [];
  let continueToken: string | undefined;
  do {
    const page = await api.listNode({ limit: PAGE_SIZE, _continue: continueToken });
    items.push(...page.items);
    continueToken = page.metadata?._continue || undefined;
  } while (continueToken !== undefined);
  return { items };
}

/** What the last update of this stack managed (empty before its first discovery update). */
export async function previouslyManagedNodes(): Promise<ManagedNode[]> {
  const self = new pulumi.StackReference(
    `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  );
  const details = await self.getOutputDetails(MANAGED_NODES_OUTPUT);
  const value = details.value ?? details.secretValue;
  return Array.isArray(value) ? (value as ManagedNode[]) : [];
}

/** The stack output that lists the managed nodes (index.ts exports it). */
export const MANAGED_NODES_OUTPUT = "managedNodes";
