// kube-proxy's mode as the cluster states it, pure: from the data of the kube-system/kube-proxy
// ConfigMap (kubeadm's, and most installers': key `config.conf`, a KubeProxyConfiguration), and
// the warning when `kubeProxyMode` says another. The design is the same in every mode (README
// "kube-proxy modes"), so a mismatch is worth a warning, never a failure.
import { parse } from "yaml";
import type { KubeProxyMode } from "./settings";

export const KUBE_PROXY_CONFIG_MAP = { namespace: "kube-system", name: "kube-proxy" } as const;

/** What the ConfigMap says: the mode, and the text of its `mode` field as written. */
export interface StatedKubeProxyMode {
  mode: KubeProxyMode | "other";
  written: string;
  key: string;
}

/**
 * The mode that the ConfigMap's KubeProxyConfiguration states, or undefined when no key holds
 * one (another installer's layout, or a document this cannot read). An empty or missing `mode`
 * is kube-proxy's default on Linux, iptables.
 */
export function statedKubeProxyMode(
  data: Record<string, string> | undefined,
): StatedKubeProxyMode | undefined {
  for (const [key, text] of Object.entries(data ?? {})) {
    let doc: unknown;
    try {
      doc = parse(text);
    } catch {
      continue;
    }
    if (!isKubeProxyConfiguration(doc)) continue;
    const written = typeof doc.mode === "string" ? doc.mode : "";
    const mode = written === "" ? "iptables" : written;
    const known = mode === "ipvs" || mode === "iptables" || mode === "nftables";
    return { mode: known ? mode : "other", written, key };
  }
  return undefined;
}

function isKubeProxyConfiguration(doc: unknown): doc is { mode?: unknown } {
  return (
    typeof doc === "object" &&
    doc !== null &&
    (doc as { kind?: unknown }).kind === "KubeProxyConfiguration"
  );
}

/** The warning when the cluster states another mode than `kubeProxyMode`; undefined otherwise. */
export function kubeProxyModeWarning(
  configured: KubeProxyMode,
  stated: StatedKubeProxyMode | undefined,
): string | undefined {
  if (stated === undefined || stated.mode === configured) return undefined;
  const where = `${KUBE_PROXY_CONFIG_MAP.namespace}/${KUBE_PROXY_CONFIG_MAP.name}`;
  const field =
    stated.written === ""
      ? 'mode: "" (kube-proxy\'s default, iptables)'
      : `mode: ${stated.written.slice(0, 40)}`;
  const advice =
    stated.mode === "other"
      ? "a mode this program does not know: check that the node-local DNS design fits it"
      : `set kubeProxyMode: ${stated.mode} (the objects and kubelet's switch are the same; ` +
        "the README's notes for that mode are the ones that apply)";
  return `nodelocaldns:kubeProxyMode: ${configured}, but ${where} (${stated.key}) says ${field}; ${advice}`;
}
