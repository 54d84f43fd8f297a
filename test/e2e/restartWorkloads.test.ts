// restartWorkloads through the real engine and a real control plane (API server, controller
// manager, scheduler, kwok): a Deployment whose pod a node's kubelet set up before the switch is
// listed by `up`, left alone by `destroy --run-program` (which switches nothing: a restart there
// would hand the new pod the cache that is about to go), and restarted by the `up` that switches
// the node again, as `kubectl rollout restart` does; its controller replaces the pod, and the next
// `up` finds nothing to recreate and starts no second rollout. The new pod, set up on the cache,
// is what an uninstall leaves to recreate: `destroy --run-program` names its workload.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "./pulumi/cluster";
import { PulumiWorkspace } from "./pulumi/workspace";
import { CLUSTER_TOOLS, clusterTestOptions } from "./pulumi/tools";
import { requireTools } from "./support/toolchain";
import { waitFor } from "./support/wait";

const options = clusterTestOptions();
const STACK = "restarts";
const STEP = { timeout: 10 * 60_000 };
const DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web";
const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";
/** podsToRecreate.afterUninstall with no pod in it. */
const NONE = { count: 0, workloads: 0, commands: [], byHand: 0, others: [] };

interface Deployment {
  metadata: { generation: number };
  spec: { template: { metadata?: { annotations?: Record<string, string> } } };
}
interface PodList {
  items: { metadata: { name: string; deletionTimestamp?: string } }[];
}

let cluster: E2eCluster;
let ws: PulumiWorkspace;
let node: ClusterNode;

describe("restartWorkloads, for real", { ...options, concurrency: 1 }, () => {
  before(
    async () => {
      cluster = await E2eCluster.start(1);
      node = cluster.nodes[0]!;
      ws = await PulumiWorkspace.create(
        requireTools(CLUSTER_TOOLS),
        cluster.controlPlane.kubeconfigPath,
      );
      // A Deployment whose one pod runs on the node before its switch.
      const created = await cluster.controlPlane.api.create(
        "/apis/apps/v1/namespaces/default/deployments",
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "web" },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: "web" } },
            template: {
              metadata: { labels: { app: "web" } },
              spec: {
                nodeName: node.name,
                tolerations: [{ operator: "Exists" }],
                containers: [{ name: "app", image: "app:1" }],
              },
            },
          },
        },
      );
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await waitFor(
        "the web pod",
        async () => ((await webPods()).length === 1 ? true : undefined),
        60_000,
      );
      ok(await ws.cli(["stack", "init", STACK]));
      ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "60"]));
      ok(await ws.cli(["config", "set", "--path", "rollout.kubeletTimeoutSeconds", "30"]));
      ok(await ws.cli(["config", "set", "--path", "nodes[0].name", node.name]));
      ok(await ws.cli(["config", "set", "--path", "nodes[0].host", node.host]));
      ok(await ws.cli(["config", "set", "--path", "nodes[0].port", String(node.port)]));
      ok(await ws.cli(["config", "set", "--path", "nodes[0].hostKey", node.program.node.hostKey]));
      const key = fs.readFileSync(node.program.node.privateKeyPath, "utf8");
      ok(await ws.cli(["config", "set", "--secret", "--path", "nodes[0].privateKey"], key));
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    ws?.remove();
    await cluster?.stop();
  });

  it("up without restartWorkloads lists the Deployment and restarts nothing", STEP, async () => {
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    assert.deepEqual(up.outputs?.podsToRecreate, {
      count: 1,
      workloads: 1,
      commands: ["kubectl -n default rollout restart deployment/web"],
      byHand: 0,
      others: [],
      unknownSwitchTime: [],
      afterUninstall: NONE,
    });
    assert.equal((await deployment()).metadata.generation, 1);
  });

  it(
    "destroy --run-program with restartWorkloads restarts nothing: it switches no node",
    STEP,
    async () => {
      ok(await ws.cli(["config", "set", "restartWorkloads", "true"]));
      const down = await ws.operation("destroy", STACK, { runProgram: true });
      assert.ok(down.ok, down.error ?? down.log);
      assert.match(down.log, /restartWorkloads: restarted 0 workload\(s\)\n/);
      const web = await deployment();
      assert.equal(web.metadata.generation, 1);
      assert.equal(web.spec.template.metadata?.annotations?.[RESTARTED_AT], undefined);
    },
  );

  it(
    "up switches the node again and restarts the Deployment, stamped with the switch time",
    STEP,
    async () => {
      const [before] = await webPods();
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      const switchedAt = (up.outputs?.managedNodes as { switchedAt?: string }[])[0]?.switchedAt;
      assert.match(switchedAt ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // The report is made before the restart: the pod is still the one set up before the switch.
      assert.deepEqual(up.outputs?.podsToRecreate, {
        count: 1,
        workloads: 1,
        commands: ["kubectl -n default rollout restart deployment/web"],
        byHand: 0,
        others: [],
        unknownSwitchTime: [],
        afterUninstall: NONE,
        restarted: ["default/deployment/web"],
        failed: [],
      });
      assert.match(up.log, /restartWorkloads: restarted 1 workload\(s\)\n/);
      const web = await deployment();
      assert.equal(web.spec.template.metadata?.annotations?.[RESTARTED_AT], switchedAt);
      // The controller replaces the pod set up before the switch.
      await waitFor(
        "the web pod replaced",
        async () => {
          const pods = await webPods();
          return pods.length === 1 && pods[0]!.metadata.name !== before!.metadata.name
            ? true
            : undefined;
        },
        120_000,
        500,
      );
    },
  );

  it("the next up finds nothing to recreate and starts no second rollout", STEP, async () => {
    const generation = (await deployment()).metadata.generation;
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    const restart = "kubectl -n default rollout restart deployment/web";
    assert.deepEqual(up.outputs?.podsToRecreate, {
      count: 0,
      workloads: 0,
      commands: [],
      byHand: 0,
      others: [],
      unknownSwitchTime: [],
      // The replacement pod was set up on the cache: an uninstall would leave it asking for it.
      afterUninstall: { count: 1, workloads: 1, commands: [restart], byHand: 0, others: [] },
      restarted: [],
      failed: [],
    });
    assert.equal((await deployment()).metadata.generation, generation);
  });

  it(
    "destroy --run-program names, before it reverts, the workloads to restart after it",
    STEP,
    async () => {
      const down = await ws.operation("destroy", STACK, { runProgram: true });
      assert.ok(down.ok, down.error ?? down.log);
      assert.match(
        down.log,
        /pods to recreate after an uninstall: 1, created while their node was switched .*; 1 workload\(s\) to restart, e\.g\. kubectl -n default rollout restart deployment\/web;/,
      );
      assert.deepEqual((await node.program.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      const ds = await cluster.controlPlane.api.get(
        "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns",
      );
      assert.equal(ds.status, 404);
    },
  );
});

function ok(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

async function deployment(): Promise<Deployment> {
  const r = await cluster.controlPlane.api.get<Deployment>(DEPLOYMENT);
  assert.equal(r.status, 200);
  return r.body;
}

/** The web pods not being deleted. */
async function webPods(): Promise<PodList["items"]> {
  const r = await cluster.controlPlane.api.get<PodList>(
    "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
  );
  assert.equal(r.status, 200);
  return r.body.items.filter((p) => p.metadata.deletionTimestamp === undefined);
}
