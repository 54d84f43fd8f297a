// Drift repair and the check after a switch, pure: what the live view (kubeletLive.ts) means for
// this update. A node that the last update switched but whose kubelet runs another cluster DNS
// (a `kubeadm upgrade`, a reimage, a config-management run put the old file back) gets its switch
// run again, and only such nodes; every node that this update may change is read once more from
// the control plane after its switch.
import { MAX_REPAIRS, type ManagedNode } from "./discovery";
import { nameList, type LiveNodeView, type LiveRead } from "./kubeletLive";

/**
 * This update's repair number per node: the last update's (its managedNodes output), plus one for
 * a node seen drifted now. A node's switch runs `update repair-<n>` once n > 0, so a new number is
 * an in-place update of that node's switch alone (Pulumi runs a Command's `update` when its text
 * changes), and an unchanged number is no change at all. Nodes not drifted keep their number.
 */
export function repairNumbers(
  nodes: string[],
  managed: ManagedNode[],
  view: Record<string, LiveNodeView> | string,
): Record<string, number> {
  const before = new Map(managed.map((node) => [node.name, node.repairs ?? 0]));
  const numbers: Record<string, number> = {};
  for (const name of nodes) {
    const last = before.get(name) ?? 0;
    const drifted = typeof view !== "string" && view[name]?.state === "drifted";
    const number = drifted ? Math.min(last + 1, MAX_REPAIRS) : last;
    if (number > 0) numbers[name] = number;
  }
  return numbers;
}

/**
 * The info line that says which switches run again and why, or undefined when none does. Lists
 * stop at 10 names (the live view's summary line names the drifted nodes too).
 */
export function repairLine(view: Record<string, LiveNodeView> | string): string | undefined {
  if (typeof view === "string") return undefined;
  const drifted = Object.entries(view).filter(([, node]) => node.state === "drifted");
  if (drifted.length === 0) return undefined;
  const shown = nameList(drifted.map(([name, node]) => `${name} (kubelet runs ${dnsOf(node)})`));
  return (
    `kubelet drift repair: the last update switched ${shown}; ` +
    "their switch runs again in this update"
  );
}

/**
 * The nodes to read again after their switch: every node whose kubelet this update may change or
 * whose state is not known. A node seen `switched` before the update keeps its kubelet (its switch
 * finds it switched and restarts nothing), so it is not read twice.
 */
export function nodesToVerify(
  nodes: string[],
  view: Record<string, LiveNodeView> | string,
): string[] {
  if (typeof view === "string") return [];
  return nodes.filter((name) => view[name]?.state !== "switched");
}

/** What the control plane said of a node after its switch. */
export type Verification =
  | { state: "confirmed"; clusterDNS: string[] }
  | { state: "unconfirmed"; reason: string }
  | { state: "failed"; clusterDNS: string[] };

/** The verdict on one read after a switch: on the cache, not readable, or not on the cache. */
export function verification(localDnsIp: string, read: LiveRead): Verification {
  if ("unknown" in read) return { state: "unconfirmed", reason: read.unknown };
  return read.clusterDns.includes(localDnsIp)
    ? { state: "confirmed", clusterDNS: read.clusterDns }
    : { state: "failed", clusterDNS: read.clusterDns };
}

/**
 * `kubelet after the switch (configz): confirmed 3/4; failed: node-2 (10.96.0.10); unconfirmed:
 * node-9 (reason)`. Unconfirmed nodes are grouped by reason; lists stop at 10 names.
 */
export function verificationLine(results: Record<string, Verification>): string {
  const entries = Object.entries(results);
  const confirmed = entries.filter(([, v]) => v.state === "confirmed").length;
  const parts = [`confirmed ${confirmed}/${entries.length}`];
  const failed = entries.filter(([, v]) => v.state === "failed");
  if (failed.length > 0) {
    parts.push(`failed: ${nameList(failed.map(([name, v]) => `${name} (${dnsOf(v)})`))}`);
  }
  const byReason = new Map<string, string[]>();
  for (const [name, v] of entries) {
    if (v.state === "unconfirmed")
      byReason.set(v.reason, [...(byReason.get(v.reason) ?? []), name]);
  }
  for (const [reason, names] of byReason) parts.push(`unconfirmed: ${nameList(names)} (${reason})`);
  return `kubelet after the switch (configz): ${parts.join("; ")}`;
}

/** The error of an update in which nodes report another cluster DNS after their switch. */
export function verificationFailure(
  localDnsIp: string,
  results: Record<string, Verification>,
): string | undefined {
  const failed = Object.entries(results).filter(([, v]) => v.state === "failed");
  if (failed.length === 0) return undefined;
  return (
    `kubelet verification failed: after their switch, kubelet reports a cluster DNS without ` +
    `${localDnsIp} (configz) on ${nameList(failed.map(([name, v]) => `${name} (${dnsOf(v)})`))}; ` +
    "the node program saw the switch done; look at what that kubelet runs (README: Verification " +
    "after the switch)"
  );
}

function dnsOf(v: { clusterDNS: string[] } | object): string {
  return "clusterDNS" in v ? (v.clusterDNS as string[]).join(",") || "none" : "?";
}
