// What the program reads at program time. From the cluster (through @kubernetes/client-node, with
// the kubernetes provider's kubeconfig and context): the Nodes for discovery, a ConfigMap's data
// (kube-proxy's mode), which CRDs are installed (monitoring), each node's running kubelet
// configuration (configz, through the API server's node proxy). From this stack's last update: the
// nodes it managed (its own `managedNodes` output, read back through the engine).
// Everything they return goes to pure functions (discovery.ts, kubeProxyMode.ts, monitoring.ts,
// kubeletLive.ts).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { managedNodesFromOutput, type ManagedNode } from "./discovery";
import {
  abortableRequest,
  apiError,
  apiextensionsV1Api,
  apiStatus,
  appsV1Api,
  coreV1Api,
  shortReason,
  type KubeSettings,
} from "./kubeClient";
import { parseConfigz, type LiveRead } from "./kubeletLive";

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
  return (await readConfigMap(kube, namespace, name))?.data;
}

/** The annotations of ConfigMap namespace/name; undefined when there is no such ConfigMap. */
export async function readConfigMapAnnotations(
  kube: KubeSettings,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  return (await readConfigMap(kube, namespace, name))?.annotations;
}

async function readConfigMap(kube: KubeSettings, namespace: string, name: string) {
  const api = await coreV1Api(kube);
  try {
    const configMap = await api.readNamespacedConfigMap({ namespace, name });
    return { data: configMap.data ?? {}, annotations: configMap.metadata?.annotations ?? {} };
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}

/** DaemonSet namespace/name as the API server holds it; undefined when there is none. */
export async function readDaemonSet(
  kube: KubeSettings,
  namespace: string,
  name: string,
): Promise<unknown> {
  const api = await appsV1Api(kube);
  try {
    return await api.readNamespacedDaemonSet({ namespace, name });
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
export async function listClusterNodes(
  kube: KubeSettings,
  totalMs = LIST_MS,
): Promise<{ items: unknown[] }> {
  const api = await coreV1Api(kube);
  const items = await allPages("Node list", totalMs, (token, options) =>
    api.listNode({ limit: PAGE_SIZE, _continue: token }, options),
  );
  return { items };
}

/**
 * The longest a cluster-wide list may take, all pages together: client-node has no timeout of its
 * own, and an API server that stops answering must not hold the update.
 */
export const LIST_MS = 60_000;

/** Every Pod of the cluster (all namespaces), as PodList items, a page at a time. */
export async function listClusterPods(kube: KubeSettings, totalMs = LIST_MS): Promise<unknown[]> {
  const api = await coreV1Api(kube);
  return allPages("pod list", totalMs, (token, options) =>
    api.listPodForAllNamespaces({ limit: PAGE_SIZE, _continue: token }, options),
  );
}

type RequestOptions = Awaited<ReturnType<typeof abortableRequest>>;

/**
 * Every item of a list the API server answers a page at a time (`limit` and `continue`), within
 * `totalMs`; `what` names the list in the error when it takes longer.
 */
async function allPages(
  what: string,
  totalMs: number,
  page: (
    continueToken: string | undefined,
    options: RequestOptions,
  ) => Promise<{ items: unknown[]; metadata?: { _continue?: string } }>,
): Promise<unknown[]> {
  const signal = AbortSignal.timeout(totalMs);
  const options = await abortableRequest(signal);
  const items: unknown[] = [];
  let continueToken: string | undefined;
  try {
    do {
      const answer = await page(continueToken, options);
      items.push(...answer.items);
      continueToken = answer.metadata?._continue || undefined;
    } while (continueToken !== undefined);
  } catch (err) {
    if (signal.aborted) throw new Error(`the ${what} took longer than ${totalMs / 1000}s`);
    throw err;
  }
  return items;
}

/** Bounds of the configz reads: a fleet of unreachable kubelets costs at most `totalMs`. */
export interface ConfigzReadLimits {
  /** Reads in flight at once. */
  concurrency: number;
  /** One read's bound. */
  requestMs: number;
  /** The whole read's bound: nodes not read by then are unknown. */
  totalMs: number;
}

export const CONFIGZ_READ_LIMITS: ConfigzReadLimits = {
  concurrency: 32,
  requestMs: 5_000,
  totalMs: 30_000,
};

/**
 * Each node's running kubelet clusterDNS, read through the API server's node proxy
 * (`GET /api/v1/nodes/<name>/proxy/configz`, RBAC `nodes/proxy`). A read that fails is that
 * node's `unknown` with a short reason; this never throws for one node.
 */
export async function readKubeletClusterDns(
  kube: KubeSettings,
  names: string[],
  limits: ConfigzReadLimits = CONFIGZ_READ_LIMITS,
): Promise<Record<string, LiveRead>> {
  const api = await coreV1Api(kube);
  const reads: Record<string, LiveRead> = {};
  const deadline = Date.now() + limits.totalMs;
  const readOne = async (name: string): Promise<LiveRead> => {
    const left = deadline - Date.now();
    if (left <= 0) return { unknown: `not read within the live view's ${limits.totalMs / 1000}s` };
    const signal = AbortSignal.timeout(Math.min(limits.requestMs, left));
    try {
      const answer: unknown = await api.connectGetNodeProxyWithPath(
        { name, path: "configz" },
        await abortableRequest(signal),
      );
      return { clusterDns: parseConfigz(answer) };
    } catch (err) {
      if (signal.aborted) return { unknown: `configz: no answer within ${limits.requestMs}ms` };
      return { unknown: `configz: ${apiError(err) ?? shortReason(err)}` };
    }
  };
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      reads[name] = await readOne(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.concurrency, names.length) }, worker));
  return reads;
}

/** Attempts at reading this stack's last outputs, and the pause before the next, times the try. */
const STACK_OUTPUTS_ATTEMPTS = 5;
const STACK_OUTPUTS_RETRY_MS = 200;

/**
 * What the last update of this stack managed (empty before its first update). Read with the
 * engine's builtin invoke `pulumi:pulumi:readStackOutputs`, not a StackReference resource: with a
 * local (`file://`) backend the read can meet the running update's own checkpoint write half done
 * (the blob library rewrites a metadata file in place: "failed to load checkpoint: EOF"), and a
 * failed resource read fails the whole update, while a failed invoke can be tried again.
 */
export async function previouslyManagedNodes(): Promise<ManagedNode[]> {
  const name = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
  let reason = "";
  for (let attempt = 1; attempt <= STACK_OUTPUTS_ATTEMPTS; attempt++) {
    try {
      const result = (await pulumi.runtime.invoke(READ_STACK_OUTPUTS, { name })) as {
        outputs?: Record<string, unknown>;
      };
      return managedNodesFromOutput(result.outputs?.[MANAGED_NODES_OUTPUT]);
    } catch (err) {
      reason = shortReason(err);
      await new Promise((resolve) => setTimeout(resolve, STACK_OUTPUTS_RETRY_MS * attempt));
    }
  }
  throw new Error(`cannot read this stack's last outputs: ${reason}`);
}

/** The engine's builtin invoke that answers a stack's outputs (what StackReference reads). */
export const READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs";

/** The stack output that lists the managed nodes (index.ts exports it). */
export const MANAGED_NODES_OUTPUT = "managedNodes";
