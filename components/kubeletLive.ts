// Kubelet's live cluster DNS, as the running kubelet reports it, pure: what the API server's
// configz proxy (`/api/v1/nodes/<node>/proxy/configz`) answers is parsed here, and each selected
// node's live value is compared with this stack's record of it (the last update's managedNodes)
// into a state per node and one summary line. The reads themselves are in fleetSources.ts.

/** What one node's read gave: kubelet's clusterDNS, or why it is not known. */
export type LiveRead = { clusterDns: string[] } | { unknown: string };

/**
 * - switched: on the cache, as our record says;
 * - drifted: our record says switched, but kubelet runs with another value (a `kubeadm upgrade`,
 *   a reimage, a config-management run put the old file back);
 * - to switch: not switched yet (a node this update switches first);
 * - on the cache already: on the cache, though this stack never switched it;
 * - unknown: configz could not be read (the reason says why).
 */
export type LiveState =
  "switched" | "drifted" | "to switch" | "on the cache already" | "unknown" | UnselectedState;

/**
 * Nodes of the cluster outside the selection (with discovery), reported only when on the cache:
 * - to revert: the last update switched it, and this update reverts it (it left the selection);
 * - on the cache, not selected: this stack never switched it, yet it runs on the cache (switched
 *   by hand, or by another stack): it should be on kube-dns.
 */
export type UnselectedState = "to revert" | "on the cache, not selected";

export type LiveNodeView =
  | { state: Exclude<LiveState, "unknown">; clusterDNS: string[] }
  | { state: "unknown"; reason: string };

export interface LiveView {
  nodes: Record<string, LiveNodeView>;
  /** One line for the update's log. */
  summary: string;
}

/** At most this many node names in a list of the summary line. */
const NAMES_SHOWN = 10;

/**
 * kubelet's clusterDNS from a configz answer: `{"kubeletconfig": {..., "clusterDNS": [...]}}`,
 * as text or already parsed. Throws with a short reason when the answer is not that.
 */
export function parseConfigz(answer: unknown): string[] {
  let doc = answer;
  if (typeof answer === "string") {
    try {
      doc = JSON.parse(answer);
    } catch {
      throw new Error("configz answered something that is not JSON");
    }
  }
  const config = (doc as { kubeletconfig?: unknown } | null)?.kubeletconfig;
  if (typeof config !== "object" || config === null) {
    throw new Error("configz answered without a kubeletconfig object");
  }
  const clusterDns = (config as { clusterDNS?: unknown }).clusterDNS;
  // kubelet omits the field when the list is empty.
  if (clusterDns === undefined) return [];
  if (!Array.isArray(clusterDns) || !clusterDns.every((ip) => typeof ip === "string")) {
    throw new Error("configz: kubeletconfig.clusterDNS is not a list of addresses");
  }
  return clusterDns.map((ip) => ip.slice(0, 45));
}

/**
 * Each selected node's state: its live value against our record (`switchedBefore`: the node was
 * in the last update's managedNodes, so its switch ran). A node is on the cache when its
 * clusterDNS lists the cache's address (first, or after another entry the switch kept).
 */
export function liveView(
  localDnsIp: string,
  nodes: { name: string; switchedBefore: boolean; selected?: boolean }[],
  reads: Record<string, LiveRead>,
): LiveView {
  const view: Record<string, LiveNodeView> = {};
  for (const { name, switchedBefore, selected = true } of nodes) {
    const read = reads[name] ?? { unknown: "not read" };
    if (!selected) {
      // Reported only when on the cache: off it (or not known) is what an unselected node is.
      if ("unknown" in read || !read.clusterDns.includes(localDnsIp)) continue;
      const state = switchedBefore ? "to revert" : "on the cache, not selected";
      view[name] = { state, clusterDNS: read.clusterDns };
      continue;
    }
    if ("unknown" in read) {
      view[name] = { state: "unknown", reason: read.unknown };
      continue;
    }
    const onCache = read.clusterDns.includes(localDnsIp);
    const state: LiveState = switchedBefore
      ? onCache
        ? "switched"
        : "drifted"
      : onCache
        ? "on the cache already"
        : "to switch";
    view[name] = { state, clusterDNS: read.clusterDns };
  }
  return { nodes: view, summary: summaryLine(view) };
}

/**
 * `kubelet live view (configz, before this update): on the cache 48/50; drifted: node-7,
 * node-12; to switch: node-51; unknown: node-3 (reason)`. Unknown nodes are grouped by reason.
 */
function summaryLine(view: Record<string, LiveNodeView>): string {
  const all = Object.entries(view);
  const named = (state: LiveState) => all.filter(([, v]) => v.state === state).map(([n]) => n);
  const unselected = new Set<LiveState>(["to revert", "on the cache, not selected"]);
  const entries = all.filter(([, v]) => !unselected.has(v.state));
  const onCache = named("switched").length + named("on the cache already").length;
  const parts = [`on the cache ${onCache}/${entries.length}`];
  for (const state of [
    "drifted",
    "to switch",
    "on the cache already",
    "to revert",
    "on the cache, not selected",
  ] as const) {
    const names = named(state);
    if (names.length > 0) parts.push(`${state}: ${nameList(names)}`);
  }
  const byReason = new Map<string, string[]>();
  for (const [name, v] of entries) {
    if (v.state !== "unknown") continue;
    byReason.set(v.reason, [...(byReason.get(v.reason) ?? []), name]);
  }
  for (const [reason, names] of byReason) parts.push(`unknown: ${nameList(names)} (${reason})`);
  return `kubelet live view (configz, before this update): ${parts.join("; ")}`;
}

/** At most 10 names, then how many more. */
export function nameList(names: string[]): string {
  const shown = names.slice(0, NAMES_SHOWN).join(", ");
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown;
}
