// The Kubernetes API client, reached the way the kubernetes provider reaches the cluster, and how
// its errors are shown (status, one short line). Used at program time (fleetSources.ts, index.ts)
// and inside the kubelet-config dynamic provider, whose code the SDK serializes: keep this module
// free of anything but Node's own modules and the client.
import * as fs from "node:fs";

/** The kubernetes provider's `kubeconfig` (a path or the text itself) and `context`, if set. */
export interface KubeSettings {
  kubeconfig?: string;
  context?: string;
}

/** The client module and the KubeConfig of these settings. */
export async function loadKubeConfig(kube: KubeSettings) {
  // Loaded only when needed: an ES module (require(esm), Node >= 20.19).
  const k8s = await import("@kubernetes/client-node");
  const kubeconfig = new k8s.KubeConfig();
  // Without the provider's own kubeconfig: KUBECONFIG, else ~/.kube/config, as the provider.
  if (kube.kubeconfig === undefined) kubeconfig.loadFromDefault();
  else if (fs.existsSync(kube.kubeconfig)) kubeconfig.loadFromFile(kube.kubeconfig);
  else kubeconfig.loadFromString(kube.kubeconfig);
  if (kube.context !== undefined) kubeconfig.setCurrentContext(kube.context);
  return { k8s, kubeconfig };
}

/** A CoreV1 client for the cluster of these settings. */
export async function coreV1Api(kube: KubeSettings) {
  const { k8s, kubeconfig } = await loadKubeConfig(kube);
  return kubeconfig.makeApiClient(k8s.CoreV1Api);
}

/** Request options that end the request when `signal` aborts (client-node has no timeout). */
export async function abortableRequest(signal: AbortSignal) {
  const k8s = await import("@kubernetes/client-node");
  type Request = InstanceType<typeof k8s.RequestContext>;
  type Response = InstanceType<typeof k8s.ResponseContext>;
  return {
    middleware: [
      {
        pre: (context: Request) => {
          context.setSignal(signal);
          return new k8s.Observable(Promise.resolve(context));
        },
        post: (response: Response) => new k8s.Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append" as const,
  };
}

/** An AppsV1 client (DaemonSets) for the cluster of these settings. */
export async function appsV1Api(kube: KubeSettings) {
  const { k8s, kubeconfig } = await loadKubeConfig(kube);
  return kubeconfig.makeApiClient(k8s.AppsV1Api);
}

/** An ApiextensionsV1 client (CustomResourceDefinitions) for the cluster of these settings. */
export async function apiextensionsV1Api(kube: KubeSettings) {
  const { k8s, kubeconfig } = await loadKubeConfig(kube);
  return kubeconfig.makeApiClient(k8s.ApiextensionsV1Api);
}

/** The HTTP status of a client-node API error (undefined for any other error). */
export function apiStatus(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

/**
 * A client-node API error as `HTTP <status>: <the Status message>` (first line, at most 100
 * characters of it); undefined for any other error.
 */
export function apiError(err: unknown): string | undefined {
  const status = apiStatus(err);
  if (status === undefined) return undefined;
  let message = "";
  try {
    const body = (err as { body?: unknown }).body;
    const parsed: unknown = typeof body === "string" ? JSON.parse(body) : body;
    const text = (parsed as { message?: unknown } | null)?.message;
    if (typeof text === "string") message = text.split("\n")[0]!.slice(0, 100);
  } catch {
    // A body that is not a Status: the status alone.
  }
  return message === "" ? `HTTP ${String(status)}` : `HTTP ${String(status)}: ${message}`;
}

/** An error as the first line of its message, at most 120 characters: no long or secret text. */
export function shortReason(err: unknown): string {
  return String((err as Error).message ?? err)
    .split("\n")[0]!
    .slice(0, 120);
}
