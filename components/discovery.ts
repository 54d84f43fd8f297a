// Fleet discovery, pure: from the cluster's Node list (the API's NodeList, or `kubectl get nodes
// -o json` saved for an offline render) and the nodes managed by the last update, decide which
// nodes get a kubelet switch, which are left as they are, and which left the cluster and are
// retired without being dialled. The program lists the Nodes (clusterNodes.ts); render reads a
// file; both then call fleetPlan, so render shows what `up` does.
import { pinnedKey, type KnownHosts } from "./knownHosts";
import type { NodeSettings } from "./settings";

export type AddressType = "InternalIP" | "ExternalIP" | "Hostname";
export const ADDRESS_TYPES: readonly AddressType[] = ["InternalIP", "ExternalIP", "Hostname"];

/** One requirement of a label selector, as Kubernetes defines them. */
export type LabelRequirement =
  { key: string; op: "exists" | "!exists" } | { key: string; op: "in" | "notin"; values: string[] };

/** A Node as discovery needs it. */
export interface ClusterNode {
  name: string;
  labels: Record<string, string>;
  addresses: { type: string; address: string }[];
  ready: boolean;
  /** Why the node must not be switched now: cordoned, deleting, to be removed by the autoscaler. */
  leaving?: string;
}

/** What the last update managed on a node: enough to retire it without its settings. */
export interface ManagedNode {
  name: string;
  host: string;
  port: number;
  /** How many drift repairs the node's switch has run (kubeletRepair.ts); absent: none. */
  repairs?: number;
  /** When its kubelet last switched to the cache, as the node program said (podsToRecreate.ts). */
  switchedAt?: string;
}

/** A time as the node program prints it: UTC, to the second. */
const ISO_UTC_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/** The most drift repairs one node's record may carry (its switch's command line holds it). */
export const MAX_REPAIRS = 999_999;

/**
 * The last update's managedNodes output, as read back from the stack: entries that are not a
 * node's name, host and port are left out, and a repair count that is not a count is dropped.
 */
export function managedNodesFromOutput(value: unknown): ManagedNode[] {
  if (!Array.isArray(value)) return [];
  const nodes: ManagedNode[] = [];
  for (const item of value as unknown[]) {
    const { name, host, port, repairs, switchedAt } = (item ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || typeof host !== "string") continue;
    if (!Number.isSafeInteger(port)) continue;
    const node: ManagedNode = { name, host, port: port as number };
    if (Number.isSafeInteger(repairs) && (repairs as number) > 0) {
      node.repairs = Math.min(repairs as number, MAX_REPAIRS);
    }
    if (typeof switchedAt === "string" && ISO_UTC_SECONDS.test(switchedAt)) {
      node.switchedAt = switchedAt;
    }
    nodes.push(node);
  }
  return nodes;
}

/**
 * The record of the nodes an update declares Commands for (not the retired ones), which the
 * component writes with discovery, before any switch of that update runs: an annotation of a
 * ConfigMap in kube-system (an annotation, not data: the kubernetes provider replaces a ConfigMap
 * whose data changes, and updates one whose annotations change in place). A failed update records
 * no stack outputs, so managedNodes misses a node first switched by it; the next update reads this
 * record as well, and a node listed there that has left the cluster is retired without a dial
 * instead of being reverted on a dead host.
 */
export const MANAGED_NODES_RECORD = {
  configMap: "node-local-dns-managed-nodes",
  annotation: "nodelocaldns.io/managed-nodes",
} as const;

/** The record's text: a JSON list, one node a line (so that a preview's diff names the nodes). */
export function managedNodesRecord(nodes: { name: string; host: string; port: number }[]): string {
  if (nodes.length === 0) return "[]\n";
  const lines = nodes.map(({ name, host, port }) => JSON.stringify({ name, host, port }));
  return `[\n${lines.join(",\n")}\n]\n`;
}

/** The nodes a record lists (none for a missing or malformed one), checked as managedNodes is. */
export function managedNodesFromRecord(text: string | undefined): ManagedNode[] {
  if (text === undefined) return [];
  try {
    return managedNodesFromOutput(JSON.parse(text)).map(({ name, host, port }) => ({
      name,
      host,
      port,
    }));
  } catch {
    return [];
  }
}

/** The last update's managedNodes, then the recorded nodes it does not list. */
export function withRecordedNodes(managed: ManagedNode[], recorded: ManagedNode[]): ManagedNode[] {
  const listed = new Set(managed.map((node) => node.name));
  return [...managed, ...recorded.filter((node) => !listed.has(node.name))];
}

export interface FleetPlan {
  /** The nodes whose Commands are declared as usual (switched, or kept as they are). */
  nodes: NodeSettings[];
  /** Nodes of the last update that left the cluster: their Commands are retired, never dialled. */
  retired: ManagedNode[];
  /** The cluster's other Nodes (with discovery): the live view reports those on the cache. */
  unselected: string[];
  warnings: string[];
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/**
 * A label selector in kubectl's syntax (`a=b,c!=d,e,!f,g in (h,i),j notin (k)`); a string
 * describing the problem when it is not one.
 */
export function parseLabelSelector(text: string): LabelRequirement[] | string {
  const requirements: LabelRequirement[] = [];
  for (const part of splitRequirements(text)) {
    const requirement = parseRequirement(part.trim());
    if (typeof requirement === "string") return requirement;
    requirements.push(requirement);
  }
  return requirements;
}

/** Commas separate requirements, except inside the parentheses of `in (...)`. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return text.trim() === "" ? [] : parts;
}

function parseRequirement(part: string): LabelRequirement | string {
  const set = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(part);
  if (set !== null) {
    const values = set[3]!.split(",").map((v) => v.trim());
    const bad = values.find((v) => !LABEL_VALUE.test(v));
    if (!LABEL_KEY.test(set[1]!)) return `"${part}": not a label key`;
    if (bad !== undefined) return `"${part}": not a label value list`;
    return { key: set[1]!, op: set[2] as "in" | "notin", values };
  }
  const equality = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (equality !== null) {
    const [, key, op, value] = equality;
    if (!LABEL_KEY.test(key!)) return `"${part}": not a label key`;
    if (!LABEL_VALUE.test(value!)) return `"${part}": not a label value`;
    return { key: key!, op: op === "!=" ? "notin" : "in", values: [value!] };
  }
  const negated = part.startsWith("!");
  const key = negated ? part.slice(1).trim() : part;
  if (!LABEL_KEY.test(key))
    return `"${part}": not a requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))`;
  return { key, op: negated ? "!exists" : "exists" };
}

export function matchesSelector(labels: Record<string, string>, selector: LabelRequirement[]) {
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case "exists":
        return has;
      case "!exists":
        return !has;
      case "in":
        return has && r.values.includes(labels[r.key]!);
      case "notin":
        // As in Kubernetes: a node without the key matches `key!=value` and `key notin (...)`.
        return !has || !r.values.includes(labels[r.key]!);
    }
  });
}

/** Taints the cluster autoscaler puts on a node it is about to remove. */
const AUTOSCALER_DELETION_TAINTS = [
  "ToBeDeletedByClusterAutoscaler",
  "DeletionCandidateOfClusterAutoscaler",
];

/** The Nodes of a NodeList (API or `kubectl get nodes -o json`); throws on anything else. */
export function clusterNodesFromList(list: unknown): ClusterNode[] {
  const items = (list as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) throw new Error("not a NodeList: no items list");
  return items.map((item, i) => clusterNode(item, i));
}

interface RawNode {
  metadata?: { name?: unknown; labels?: Record<string, string>; deletionTimestamp?: unknown };
  spec?: { unschedulable?: boolean; taints?: { key?: string }[] };
  status?: {
    addresses?: { type: string; address: string }[];
    conditions?: { type?: string; status?: string }[];
  };
}

function clusterNode(item: unknown, index: number): ClusterNode {
  const raw = item as RawNode;
  const name = raw.metadata?.name;
  if (typeof name !== "string") throw new Error(`not a NodeList: items[${index}] has no name`);
  const ready = (raw.status?.conditions ?? []).some(
    (c) => c.type === "Ready" && c.status === "True",
  );
  const taint = (raw.spec?.taints ?? []).find((t) =>
    AUTOSCALER_DELETION_TAINTS.includes(t.key ?? ""),
  );
  let leaving: string | undefined;
  if (raw.metadata?.deletionTimestamp !== undefined) leaving = "being deleted";
  else if (taint !== undefined) leaving = `tainted ${taint.key}`;
  else if (raw.spec?.unschedulable === true) leaving = "cordoned";
  const node: ClusterNode = {
    name,
    labels: raw.metadata?.labels ?? {},
    addresses: raw.status?.addresses ?? [],
    ready,
  };
  if (leaving !== undefined) node.leaving = leaving;
  return node;
}

export interface DiscoverSettings {
  /** The selector as configured, for messages. */
  selectorText: string;
  selector: LabelRequirement[];
  exclude: string[];
  addressType: AddressType;
  /** SSH and kubelet settings of a discovered node without a `nodes` entry. */
  template: Omit<NodeSettings, "name" | "host" | "hostKey">;
  /** ssh.knownHosts, where a discovered node's host key is looked up. */
  knownHosts?: KnownHosts;
  /** ssh.hostKey: the key of a node that neither its entry nor known_hosts pins. */
  defaultHostKey?: string;
}

/**
 * The fleet of this update. explicit: the `nodes` entries (an entry whose name is a discovered
 * node overrides its settings; its host, when empty, comes from the Node). managed: what the last
 * update managed (empty on the first one, and in render, which has no state). recorded: the nodes
 * of MANAGED_NODES_RECORD, which may have Commands in the state although `managed` misses them
 * (a failed update): retired when they left the cluster, otherwise treated as new nodes.
 */
export function fleetPlan(
  discover: DiscoverSettings,
  cluster: ClusterNode[],
  explicit: NodeSettings[],
  managed: ManagedNode[],
  recorded: ManagedNode[] = [],
): FleetPlan {
  const byName = new Map(explicit.map((n) => [n.name, n]));
  const wasManaged = new Set(managed.map((m) => m.name));
  const mayHaveCommands = withRecordedNodes(managed, recorded);
  const inCluster = new Set(cluster.map((n) => n.name));
  const nodes: NodeSettings[] = [];
  const skipped: string[] = [];
  const kept: string[] = [];
  const warnings: string[] = [];
  for (const clusterNode of [...cluster].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!matchesSelector(clusterNode.labels, discover.selector)) continue;
    if (discover.exclude.includes(clusterNode.name)) continue;
    const notNow = !clusterNode.ready ? "NotReady" : clusterNode.leaving;
    if (notNow !== undefined && !wasManaged.has(clusterNode.name)) {
      skipped.push(`${clusterNode.name} (${notNow})`);
      continue;
    }
    if (notNow !== undefined) kept.push(`${clusterNode.name} (${notNow})`);
    const entry = byName.get(clusterNode.name);
    const address = clusterNode.addresses.find((a) => a.type === discover.addressType)?.address;
    const host = entry?.host || address;
    if (host === undefined) {
      skipped.push(`${clusterNode.name} (no ${discover.addressType} address)`);
      continue;
    }
    nodes.push(
      pinned(discover, entry ?? { ...discover.template, name: clusterNode.name, host }, host),
    );
  }
  for (const entry of explicit) {
    if (inCluster.has(entry.name)) continue;
    if (entry.host !== "") {
      nodes.push(entry);
    } else if (!mayHaveCommands.some((m) => m.name === entry.name)) {
      // (A managed one is a node that left the cluster: retired below, with its own warning.)
      warnings.push(
        `nodelocaldns:nodes: ${entry.name} is not a Node of the cluster and has no host: not switched`,
      );
    }
  }
  const declared = new Set(nodes.map((n) => n.name));
  const retired = mayHaveCommands.filter((m) => !declared.has(m.name) && !inCluster.has(m.name));
  const warn = (message: string) => warnings.push(`nodelocaldns:discover: ${message}`);
  if (skipped.length > 0) warn(`not switched now: ${summarize(skipped)}`);
  if (kept.length > 0) warn(`left as they are: ${summarize(kept)}`);
  if (retired.length > 0) {
    warn(`left the cluster, retired without a revert: ${summarize(retired.map((r) => r.name))}`);
  }
  const unpinned = unpinnedWarning(nodes);
  if (unpinned !== undefined) warnings.push(`nodelocaldns:nodes[*].hostKey: ${unpinned}`);
  const unselected = cluster.map((n) => n.name).filter((name) => !declared.has(name));
  return { nodes, retired, unselected: unselected.sort(), warnings };
}

/** The node at host, pinned as parseNodes pins (pinnedKey). */
function pinned(discover: DiscoverSettings, node: NodeSettings, host: string): NodeSettings {
  const { knownHosts, defaultHostKey } = discover;
  const hostKey = pinnedKey(node.hostKey, knownHosts, host, node.port, defaultHostKey);
  return hostKey === undefined ? { ...node, host } : { ...node, host, hostKey };
}

/** Longest list of names a warning spells out. */
const NAMED_MAX = 5;

function summarize(names: string[]): string {
  const more = names.length > NAMED_MAX ? ` and ${names.length - NAMED_MAX} more` : "";
  return `${names.slice(0, NAMED_MAX).join(", ")}${more}`;
}

/** One warning for every node whose host key is not pinned, however many there are. */
export function unpinnedWarning(nodes: NodeSettings[]): string | undefined {
  const unpinned = nodes.filter((n) => n.hostKey === undefined).map((n) => n.name || n.host);
  if (unpinned.length === 0) return undefined;
  return `not pinned for ${unpinned.length} of ${nodes.length} nodes (${summarize(unpinned)}): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)`;
}
