// A cluster where one kube-dns pod is not Ready (a CoreDNS replica stuck on a bad node, or in the
// middle of a rollout) while DNS is served: `pulumi up` must not wait on that pod. The
// kube-dns-upstream Service selects the kube-dns pods; the kubernetes provider's default await
// for a Service with a selector holds it until no selected pod is unready (10 minutes, then
// fails), and the DaemonSet and every switch wait behind that Service. What proves the cache's
// path to kube-dns is the switch's own check that the cache answers on the node.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { expectOk } from "./support/controlPlane";
import { waitFor } from "./support/wait";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "./pulumi/cluster";
import { PulumiWorkspace } from "./pulumi/workspace";
import { CLUSTER_TOOLS, clusterTestOptions } from "./pulumi/tools";
import { requireTools } from "./support/toolchain";

const STACK = "notready";
const LOCAL_DNS_IP = "169.254.20.10";
const NS = "/api/v1/namespaces/kube-system";
const POD = "coredns-not-ready";
/**
 * Longer than an up of one node takes here (well under a minute), far shorter than the
 * provider's 10-minute Service await: an up that waits on the unready pod is stopped and fails.
 */
const UP_LIMIT_MS = 4 * 60_000;
const STEP = { timeout: 6 * 60_000 };

let cluster: E2eCluster;
let ws: PulumiWorkspace;

interface PodStatus {
  status?: { phase?: string; podIP?: string };
}

interface Endpoints {
  subsets?: { addresses?: { ip: string }[]; notReadyAddresses?: { ip: string }[] }[];
}

describe(
  "an unready kube-dns pod does not hold up the rollout",
  { ...clusterTestOptions(), concurrency: 1 },
  () => {
    before(
      async () => {
        cluster = await E2eCluster.start(1);
        ws = await PulumiWorkspace.create(
          requireTools(CLUSTER_TOOLS),
          cluster.controlPlane.kubeconfigPath,
        );
        const node = cluster.nodes[0]!;
        ok(await ws.cli(["stack", "init", STACK]));
        for (const [key, value] of [
          ["ssh.user", "root"],
          ["rollout.readyTimeoutSeconds", "60"],
          ["rollout.kubeletTimeoutSeconds", "30"],
          ["nodes[0].name", node.name],
          ["nodes[0].host", node.host],
          ["nodes[0].port", String(node.port)],
        ]) {
          ok(await ws.cli(["config", "set", "--path", key!, value!]));
        }
        const key = fs.readFileSync(node.program.node.privateKeyPath, "utf8");
        ok(await ws.cli(["config", "set", "--secret", "--path", "nodes[0].privateKey"], key));
        await unreadyKubeDnsPod(node);
      },
      { timeout: 10 * 60_000 },
    );
    after(async () => {
      ws?.remove();
      await cluster?.stop();
    });

    it("up switches the node while the kube-dns pod stays unready", STEP, async () => {
      const up = await ws.operation("up", STACK, {}, undefined, UP_LIMIT_MS);
      assert.ok(up.ok, up.error ?? up.log);
      const node = cluster.nodes[0]!;
      assert.deepEqual((await node.program.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      const outcome = (up.outputs?.kubeletSwitches as Record<string, string>)[node.name] ?? "";
      assert.match(outcome, /: switched: cluster DNS 10\.96\.0\.10 -> 169\.254\.20\.10 in /);
      const switched = String(ws.outputsOf(STACK, `nodelocaldns-kubelet-${node.name}`).stdout);
      assert.match(switched, /the cache answers on 169\.254\.20\.10:53/);
      // Not a pod that turned Ready meanwhile: kube-dns-upstream still lists it as not ready.
      const upstream = await cluster.controlPlane.api.get<Endpoints>(
        `${NS}/endpoints/kube-dns-upstream`,
      );
      const unready = expectOk(upstream, "get kube-dns-upstream endpoints").subsets?.flatMap(
        (s) => s.notReadyAddresses ?? [],
      );
      assert.equal(unready?.length, 1, JSON.stringify(upstream.body));
    });

    it("destroy reverts the node", STEP, async () => {
      const down = await ws.operation("destroy", STACK, {}, undefined, UP_LIMIT_MS);
      assert.ok(down.ok, down.error ?? down.log);
      const node = cluster.nodes[0]!;
      assert.deepEqual((await node.program.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
    });
  },
);

/**
 * A kube-dns pod on the node that kwok starts (Running, with a pod IP), then reports not Ready,
 * as a kubelet does when a readiness probe fails; returns once kube-system/kube-dns lists it
 * among its not-ready addresses. kwok changes only Pending pods, so the status stays.
 */
async function unreadyKubeDnsPod(node: ClusterNode): Promise<void> {
  const api = cluster.controlPlane.api;
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: POD, namespace: "kube-system", labels: { "k8s-app": "kube-dns" } },
    spec: {
      nodeName: node.name,
      containers: [{ name: "coredns", image: "registry.k8s.io/coredns/coredns:v1.12.0" }],
    },
  };
  expectOk(await api.create(`${NS}/pods`, pod), "create the kube-dns pod");
  const ip = await waitFor(
    "kwok to start the kube-dns pod",
    async () => {
      const got = expectOk(await api.get<PodStatus>(`${NS}/pods/${POD}`), "get the kube-dns pod");
      return got.status?.phase === "Running" ? got.status.podIP : undefined;
    },
    60_000,
  );
  const notReady = [
    { type: "Ready", status: "False", reason: "ReadinessProbeFailed" },
    { type: "ContainersReady", status: "False", reason: "ReadinessProbeFailed" },
  ];
  expectOk(
    await api.patch(`${NS}/pods/${POD}/status`, { status: { conditions: notReady } }, "strategic"),
    "report the kube-dns pod not Ready",
  );
  await waitFor(
    "kube-system/kube-dns to list the pod as not ready",
    async () => {
      const eps = expectOk(
        await api.get<Endpoints>(`${NS}/endpoints/kube-dns`),
        "get kube-dns endpoints",
      );
      const unready = eps.subsets?.flatMap((s) => s.notReadyAddresses ?? []) ?? [];
      return unready.some((a) => a.ip === ip) ? true : undefined;
    },
    60_000,
  );
}

function ok(r: { code: number; stderr: string }): void {
  assert.equal(r.code, 0, r.stderr);
}
