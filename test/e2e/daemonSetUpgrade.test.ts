// A cache upgrade as the real DaemonSet controller and scheduler run it: the rendered objects on
// three kwok nodes, then the DaemonSet as rendered with another image, applied as `pulumi up`
// would update it. A watch on the node-local-dns pods follows every change, and on each node
// there must be at every moment a Ready pod that is not terminating: a node whose kubelet points
// at the cache must never be left without one (README "Cache upgrades"; the DNS side of it, real
// node-cache processes handing over without a failed query, is `npm run bench:cache-upgrade`).
// Then a rollback during which the controller manager restarts. kwok plays kubelet: each pod turns
// Ready 3 s after it is scheduled.
// Skipped when the toolchain is missing, failed instead under CI=true.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { nodeLocalDnsObjects } from "../../components/kubernetesObjects";
import { resolvedSettings } from "../support/settingsFixture";
import {
  expectOk,
  kubeDnsServiceSpec,
  startControlPlane,
  type ControlPlane,
  type WatchEvent,
} from "./support/controlPlane";
import { CONTROL_PLANE_TOOLS, toolchainTestOptions } from "./support/toolchain";
import { waitFor } from "./support/wait";

const NODES = ["e2e-node-1", "e2e-node-2", "e2e-node-3"];
const KUBE_DNS_IP = "10.96.0.10";
const OLD_IMAGE = "registry.k8s.io/dns/k8s-dns-node-cache:1.26.7";
const NEW_IMAGE = "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8";
const NS = "/api/v1/namespaces/kube-system";
const DS_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
const PODS = `${NS}/pods?labelSelector=${encodeURIComponent("k8s-app=node-local-dns")}`;
const ROLLOUT_TIMEOUT_MS = 3 * 60_000;
const POD_READY_DELAY_MS = 3_000;

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: { conditions?: { type: string; status: string }[] };
}

interface DaemonSetStatus {
  metadata: { generation: number };
  status?: Record<string, number>;
}

/** Ready, and not being deleted (a terminating node-cache stops serving). */
function isServing(pod: Pod): boolean {
  const ready = pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";
  return ready && pod.metadata.deletionTimestamp === undefined;
}

/** The pods by name as a watch has left them, and per node the fewest serving seen at once. */
class PodTimeline {
  private readonly pods = new Map<string, Pod>();
  readonly fewestServing = new Map<string, number>();
  readonly imagesSeen = new Map<string, Set<string>>();

  constructor(initial: Pod[]) {
    for (const pod of initial) this.pods.set(pod.metadata.name, pod);
    this.record();
  }

  apply(event: WatchEvent<Pod>): void {
    if (event.type === "ERROR" || event.type === "BOOKMARK") return;
    if (event.type === "DELETED") this.pods.delete(event.object.metadata.name);
    else this.pods.set(event.object.metadata.name, event.object);
    this.record();
  }

  private record(): void {
    for (const node of NODES) {
      const onNode = [...this.pods.values()].filter((p) => p.spec.nodeName === node);
      const count = onNode.filter(isServing).length;
      this.fewestServing.set(node, Math.min(this.fewestServing.get(node) ?? count, count));
      const images = this.imagesSeen.get(node) ?? new Set<string>();
      for (const pod of onNode.filter(isServing)) images.add(pod.spec.containers[0]!.image);
      this.imagesSeen.set(node, images);
    }
  }
}

describe(
  "cache upgrade through the DaemonSet controller",
  {
    ...toolchainTestOptions(CONTROL_PLANE_TOOLS),
    timeout: 10 * 60_000,
  },
  () => {
    let cp: ControlPlane | undefined;

    before(async () => {
      // Ready some seconds after it is scheduled, as a kubelet reports the readiness probe's
      // first run after its initial delay.
      cp = await startControlPlane({ podReadyDelayMs: POD_READY_DELAY_MS });
      for (const [i, node] of NODES.entries()) await cp.createNode(node, `10.1.0.${21 + i}`);
      for (const node of NODES) await cp.waitForNodeReady(node, 60_000);
      await cp.createService(kubeDnsServiceSpec(KUBE_DNS_IP));
    });

    after(async () => {
      await cp?.stop();
    });

    /**
     * The serving pods once the DaemonSet says it rolled out `image` to every node and each node
     * has one serving pod with it (a terminating pod kwok has not removed yet is left out); else
     * throws what it saw, which waitFor reports on timeout.
     */
    async function rolledOut(image: string): Promise<Pod[]> {
      const ds = expectOk(await cp!.api.get<DaemonSetStatus>(DS_PATH), "get DaemonSet");
      const s = ds.status ?? {};
      const pods = expectOk(await cp!.api.list<Pod>(PODS), "list pods").items;
      const current = pods.filter((p) => isServing(p) && p.spec.containers[0]!.image === image);
      const done =
        s.observedGeneration === ds.metadata.generation &&
        s.updatedNumberScheduled === NODES.length &&
        s.numberAvailable === NODES.length &&
        current.length === NODES.length &&
        new Set(current.map((p) => p.spec.nodeName)).size === NODES.length;
      if (done) return current;
      const seen = pods.map((p) =>
        [
          p.metadata.name,
          p.spec.nodeName,
          p.spec.containers[0]!.image.split(":").at(-1),
          isServing(p) ? "serving" : "not serving",
          p.metadata.deletionTimestamp === undefined ? "" : "terminating",
        ].join(" "),
      );
      throw new Error(
        `generation ${ds.metadata.generation}, status ${JSON.stringify(s)}; pods: ${seen.join("; ")}`,
      );
    }

    it("installs the rendered objects; a Ready pod on every node", async () => {
      const objects = nodeLocalDnsObjects(
        resolvedSettings({ clusterDnsIp: KUBE_DNS_IP, image: OLD_IMAGE }),
      );
      for (const object of objects.all) await cp!.createObject(object);
      await waitFor(`DaemonSet ready on ${NODES.length} nodes`, () => rolledOut(OLD_IMAGE), 90_000);
    });

    /**
     * Applies the rendered DaemonSet with `image` as the kubernetes provider would, runs `during`
     * while the controller rolls it out, and checks that every node's old and new pods served and
     * that no node was ever left without a serving pod.
     */
    async function upgradeTo(image: string, previous: string, during?: () => Promise<void>) {
      const list = expectOk(await cp!.api.list<Pod>(PODS), "list pods");
      const timeline = new PodTimeline(list.items);
      const resourceVersion = (list.metadata as { resourceVersion: string }).resourceVersion;
      const watch = cp!.api.watch<Pod>(
        `${PODS}&watch=true&resourceVersion=${resourceVersion}&allowWatchBookmarks=false`,
        (event) => timeline.apply(event),
      );
      try {
        const updated = nodeLocalDnsObjects(
          resolvedSettings({ clusterDnsIp: KUBE_DNS_IP, image }),
        ).daemonSet;
        // What the kubernetes provider sends for a changed spec: the whole rendered spec.
        expectOk(await cp!.api.patch(DS_PATH, { spec: updated.spec }, "merge"), "patch DaemonSet");
        await during?.();
        const pods = await waitFor(
          `the DaemonSet rolled out with ${image}`,
          () => rolledOut(image),
          ROLLOUT_TIMEOUT_MS,
        );
        assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), NODES);
      } finally {
        watch.stop();
        await watch.ended;
      }
      for (const node of NODES) {
        assert.deepEqual(
          [...(timeline.imagesSeen.get(node) ?? [])].sort(),
          [previous, image].sort(),
          `${node}: the watch saw its old and its new pod serve`,
        );
        assert.equal(
          timeline.fewestServing.get(node),
          1,
          `${node}: the fewest serving node-local-dns pods at one moment during the update`,
        );
      }
    }

    it("a new image: every node keeps a serving pod while its pod is replaced", async () => {
      await upgradeTo(NEW_IMAGE, OLD_IMAGE);
    });

    // A controller manager that starts over (a failover, a control-plane upgrade) while a node's
    // new pod is starting rebuilds what it knows from the API server, and must still finish.
    // (With minReadySeconds, a restart just after the new pod turned Ready would stop the
    // rollout for good: the new controller sees a pod already Ready, not yet available, and
    // schedules no second look; README "Cache upgrades".)
    it("a rollback with a controller-manager restart while a new pod starts still completes", async () => {
      await upgradeTo(OLD_IMAGE, NEW_IMAGE, async () => {
        await waitFor(
          "a pod of the rollback scheduled and not Ready yet",
          async () => {
            const pods = expectOk(await cp!.api.list<Pod>(PODS), "list pods").items;
            const starting = pods.some(
              (p) =>
                p.spec.containers[0]!.image === OLD_IMAGE &&
                p.spec.nodeName !== undefined &&
                !isServing(p),
            );
            return starting ? true : undefined;
          },
          60_000,
          100,
        );
        await cp!.restartControllerManager();
      });
    });
  },
);
