// How an update of the DaemonSet replaces its pods (README "Cache upgrades"), pure. Its pods run
// node-cache with -skipteardown, so a new pod can start beside the old one (maxSurge) and take
// over the interface and rules the old one leaves. A DaemonSet of an earlier version runs
// node-cache without that flag: its pods remove the interface and rules when they exit, under a
// new pod started beside them, which then answers nothing until its next sync (60 s). So while the
// cluster's DaemonSet is one of those, the update replaces each node's old pod first, as before
// (a short gap per node); its new pods leave everything in place, and the next update surges.

/** The node-cache flag that leaves the interface and the iptables rules in place on exit. */
export const SKIP_TEARDOWN = "-skipteardown";

/** How many nodes' pods an update replaces at a time. */
const AT_A_TIME = "10%";

/**
 * Whether a DaemonSet as the API server returns it runs node-cache that removes its interface and
 * rules on exit: its node-cache container lacks -skipteardown. No DaemonSet, or no node-cache
 * container in it: false.
 */
export function tearsDownOnExit(daemonSet: unknown): boolean {
  const spec = (daemonSet ?? {}) as {
    spec?: { template?: { spec?: { containers?: { name?: string; args?: unknown }[] } } };
  };
  const cache = spec.spec?.template?.spec?.containers?.find((c) => c.name === "node-cache");
  if (cache === undefined) return false;
  return !(Array.isArray(cache.args) && cache.args.includes(SKIP_TEARDOWN));
}

/**
 * The DaemonSet's updateStrategy: each node's new pod beside its old one, the old one deleted once
 * the new one is available; or, while the old pods tear down on exit, the old pod first.
 */
export function updateStrategy(oldPodsTearDown: boolean): Record<string, unknown> {
  return oldPodsTearDown
    ? { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: AT_A_TIME } }
    : { type: "RollingUpdate", rollingUpdate: { maxSurge: AT_A_TIME, maxUnavailable: 0 } };
}

/** The warning of an update that replaces the old pods first. */
export const OLD_PODS_TEAR_DOWN_WARNING =
  "node-local-dns: the DaemonSet in the cluster runs node-cache without -skipteardown (an " +
  "earlier version), whose pods remove the cache's interface when they exit: this update " +
  "replaces each node's old pod first, as before (a short gap per node, 10% of the nodes at a " +
  "time); its new pods leave the interface in place, and later updates start each new pod beside " +
  'the old one (README "Cache upgrades")';
