// The `kubeadmKubeletConfig` option as a resource: a Pulumi dynamic resource whose create sets
// clusterDNS in kube-system/kubelet-config and whose delete puts the exact original text back
// (kubeletConfigMap.ts does the text). A server-side-apply patch cannot do this: on delete it
// leaves the value or drops the field, and kubeadm owns that field.
//
// - Every write is an update with the read's resourceVersion: a concurrent change (kubeadm, an
//   operator) makes it fail with 409, and the read-edit-write is done again (at most 5 times).
// - The original text is kept on the ConfigMap itself (an annotation written in the same update)
//   and in this resource's state. A create that runs again after a lost state record takes the
//   original from the annotation, never our own value; the revert removes the annotation.
// - Drift (the live field no longer lists our value) makes diff report a change, and the update
//   sets it again: `kubeadm upgrade apply` or a hand edit is repaired by the next `up`.
// - The revert restores only a field that still lists our value. A value someone else set since
//   stays (a dynamic provider cannot print a warning; the README says so).
// - The code runs in the engine's dynamic-provider process, serialized by the SDK with what it
//   uses from kubeClient.ts and the pure text module (both import nothing else of ours).
import * as pulumi from "@pulumi/pulumi";
import { apiStatus, coreV1Api, shortReason } from "./kubeClient";
import {
  CacheAddresses,
  findClusterDns,
  keptAnnotation,
  keptOriginal,
  KUBELET_CONFIG_MAP,
  ORIGINAL_ANNOTATION,
  planKubeletConfigEdit,
  restoreClusterDns,
} from "./kubeletConfigMap";

export interface KubeletConfigClusterDnsArgs {
  /** The addresses the node program switches kubelet between (intendedClusterDns). */
  addresses: pulumi.Input<CacheAddresses>;
  /** The kubernetes provider's kubeconfig (a path or the text) and context; unset: its defaults. */
  kubeconfig?: pulumi.Input<string>;
  context?: pulumi.Input<string>;
}

interface Inputs {
  addresses: CacheAddresses;
  kubeconfig?: string;
  context?: string;
}

interface Outputs extends Inputs {
  /** What we set: the list nodes that join or upgrade get. */
  clusterDns: string[];
  /** The field's exact text before our first change ("" when there was none). */
  original: string;
  /** What it listed then. */
  originalClusterDns: string[];
}

const ATTEMPTS = 5;
const WHERE = `${KUBELET_CONFIG_MAP.namespace}/${KUBELET_CONFIG_MAP.name}`;

interface ConfigMap {
  metadata?: { annotations?: Record<string, string>; resourceVersion?: string };
  data?: Record<string, string>;
}

interface ConfigMapApi {
  readNamespacedConfigMap(p: { name: string; namespace: string }): Promise<ConfigMap>;
  replaceNamespacedConfigMap(p: {
    name: string;
    namespace: string;
    body: ConfigMap;
  }): Promise<unknown>;
}

/**
 * Read the ConfigMap, let `edit` return its new form (or undefined: nothing to write), write it
 * with the read's resourceVersion, and again from the read on a conflict. `edit` gets undefined
 * when the ConfigMap does not exist.
 */
async function readEditWrite(
  inputs: Inputs,
  edit: (configMap: ConfigMap | undefined) => ConfigMap | undefined,
): Promise<void> {
  const api = (await coreV1Api(inputs)) as unknown as ConfigMapApi;
  const { namespace, name } = KUBELET_CONFIG_MAP;
  for (let attempt = 1; ; attempt++) {
    let current: ConfigMap | undefined;
    try {
      current = await api.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      if (apiStatus(err) !== 404) throw new Error(`cannot read ${WHERE}: ${shortReason(err)}`);
    }
    const body = edit(current);
    if (body === undefined) return;
    try {
      await api.replaceNamespacedConfigMap({ namespace, name, body });
      return;
    } catch (err) {
      if (apiStatus(err) !== 409 || attempt === ATTEMPTS) {
        throw new Error(`cannot update ${WHERE}: ${shortReason(err)}`);
      }
    }
  }
}

/** The `kubelet` document, or the reason this ConfigMap cannot be edited. */
function kubeletText(configMap: ConfigMap | undefined): string {
  if (configMap === undefined) {
    throw new Error(`${WHERE} not found: kubeadmKubeletConfig is for clusters made by kubeadm`);
  }
  const text = configMap.data?.[KUBELET_CONFIG_MAP.key];
  if (text === undefined) throw new Error(`${WHERE} has no \`${KUBELET_CONFIG_MAP.key}\` key`);
  return text;
}

/** Our annotation's original, if the ConfigMap has one (refused when we did not write it). */
function keptOn(configMap: ConfigMap): string | undefined {
  try {
    return keptOriginal(configMap.metadata?.annotations?.[ORIGINAL_ANNOTATION]);
  } catch (err) {
    throw new Error(`${WHERE}: ${(err as Error).message}`);
  }
}

/**
 * What the ConfigMap's clusterDNS lists now; undefined when that cannot be told (no ConfigMap, a
 * failed read, a document the editor refuses): drift is then not claimed, and an update would
 * name the problem.
 */
async function liveClusterDns(inputs: Inputs): Promise<string[] | undefined> {
  try {
    const api = (await coreV1Api(inputs)) as unknown as ConfigMapApi;
    const { namespace, name, key } = KUBELET_CONFIG_MAP;
    const text = (await api.readNamespacedConfigMap({ namespace, name })).data?.[key];
    return text === undefined ? undefined : (findClusterDns(text)?.values ?? []);
  } catch {
    return undefined;
  }
}

/** Set our value; the original comes from the annotation, else from state, else from the text. */
async function setOurs(inputs: Inputs, stateOriginal?: Outputs): Promise<Outputs> {
  let outputs: Outputs | undefined;
  await readEditWrite(inputs, (configMap) => {
    const text = kubeletText(configMap);
    const kept = keptOn(configMap!);
    const edit = planKubeletConfigEdit(text, kept ?? stateOriginal?.original, inputs.addresses);
    const { original, originalClusterDns, clusterDns } = edit;
    outputs = { ...inputs, original, originalClusterDns, clusterDns };
    if (edit.text === text && kept !== undefined) return undefined;
    const annotations = { ...configMap!.metadata?.annotations };
    annotations[ORIGINAL_ANNOTATION] = keptAnnotation(original);
    return {
      ...configMap,
      metadata: { ...configMap!.metadata, annotations },
      data: { ...configMap!.data, [KUBELET_CONFIG_MAP.key]: edit.text },
    };
  });
  return outputs!;
}

/** The dynamic provider (exported for the tests that call it against a real API server). */
export const kubeletConfigProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: Inputs) {
    return { id: WHERE, outs: await setOurs(inputs) };
  },

  // A change of addresses is an update; so is drift: the live field no longer lists what we set
  // (`kubeadm upgrade apply`, a hand edit), which the update sets again, keeping the original.
  async diff(_id: string, olds: Outputs, news: Inputs) {
    if (JSON.stringify(olds.addresses) !== JSON.stringify(news.addresses)) return { changes: true };
    const live = await liveClusterDns(news);
    return { changes: live !== undefined && live.join(",") !== olds.clusterDns.join(",") };
  },

  async update(_id: string, olds: Outputs, news: Inputs) {
    return { outs: await setOurs(news, olds) };
  },

  async delete(_id: string, olds: Outputs) {
    await readEditWrite(olds, (configMap) => {
      if (configMap === undefined) return undefined;
      const kept = keptOn(configMap);
      const original = kept ?? olds.original;
      const annotations = { ...configMap.metadata?.annotations };
      delete annotations[ORIGINAL_ANNOTATION];
      const text = configMap.data?.[KUBELET_CONFIG_MAP.key];
      const restore =
        text === undefined ? undefined : restoreClusterDns(text, olds.clusterDns, original);
      if (!restore?.restored && kept === undefined) return undefined;
      return {
        ...configMap,
        metadata: { ...configMap.metadata, annotations },
        data: restore?.restored
          ? { ...configMap.data, [KUBELET_CONFIG_MAP.key]: restore.text }
          : configMap.data,
      };
    });
  },
};

/**
 * clusterDNS in kubeadm's kube-system/kubelet-config, set while this resource exists and put
 * back, exactly, when it is deleted.
 */
export class KubeletConfigClusterDns extends pulumi.dynamic.Resource {
  /** The list set in the ConfigMap. */
  declare readonly clusterDns: pulumi.Output<string[]>;
  declare readonly original: pulumi.Output<string>;
  declare readonly originalClusterDns: pulumi.Output<string[]>;

  constructor(
    name: string,
    args: KubeletConfigClusterDnsArgs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      kubeletConfigProvider,
      name,
      {
        addresses: args.addresses,
        clusterDns: undefined,
        kubeconfig: args.kubeconfig === undefined ? undefined : pulumi.secret(args.kubeconfig),
        context: args.context,
        original: undefined,
        originalClusterDns: undefined,
      },
      { ...opts, additionalSecretOutputs: ["kubeconfig"] },
    );
  }
}
