// Discovery through the real engine and a real API server: the fleet is the cluster's Nodes
// (their InternalIP is each test node's loopback address, where its sshd is forwarded), selected
// by a label, host keys pinned from ssh.knownHosts. The scenarios run in order on one stack, as a
// fleet's days would: nodes join, one is relabelled out, one machine goes away for good and comes
// back reimaged under the same name.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "./pulumi/cluster";
import { PulumiWorkspace } from "./pulumi/workspace";
import { CLUSTER_TOOLS, clusterTestOptions } from "./pulumi/tools";
import { requireTools } from "./support/toolchain";

const TOOLS = CLUSTER_TOOLS;
const options = clusterTestOptions();

const STACK = "fleet";
const LOCAL_DNS_IP = "169.254.20.10";
const LABEL = "nodelocaldns";
const STEP = { timeout: 10 * 60_000 };
const DAEMON_SET = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
/** A well-formed ed25519 key that no test node has. */
const WRONG_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V";

let cluster: E2eCluster;
let ws: PulumiWorkspace;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;

describe("discovery, for real: nodes from the API server", { ...options, concurrency: 1 }, () => {
  before(
    async () => {
      cluster = await E2eCluster.start(3);
      [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
      ws = await PulumiWorkspace.create(requireTools(TOOLS), cluster.controlPlane.kubeconfigPath);
      ok(await ws.cli(["stack", "init", STACK]));
      ok(await ws.cli(["config", "set", "--path", "discover.selector", `${LABEL}=on`]));
      ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "3"]));
      ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "60"]));
      ok(await ws.cli(["config", "set", "--path", "rollout.kubeletTimeoutSeconds", "30"]));
      // Per node: only what discovery cannot know here (the forwarded port, its own key).
      for (const [i, n] of cluster.nodes.entries()) {
        ok(await ws.cli(["config", "set", "--path", `nodes[${i}].name`, n.name]));
        ok(await ws.cli(["config", "set", "--path", `nodes[${i}].port`, String(n.port)]));
        const key = fs.readFileSync(n.program.node.privateKeyPath, "utf8");
        ok(await ws.cli(["config", "set", "--secret", "--path", `nodes[${i}].privateKey`], key));
      }
      await setKnownHosts({ [n3.name]: WRONG_KEY });
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    ws?.remove();
    await cluster?.stop();
  });

  it("preview lists the labelled Nodes as creates; nothing else", STEP, async () => {
    await label(n1, "on");
    await label(n2, "on");
    const preview = await ws.operation("preview", STACK);
    assert.ok(preview.ok, preview.error ?? preview.log);
    for (const n of [n1, n2]) assert.match(preview.log, new RegExp(`kubelet-${n.name}\\b`));
    assert.doesNotMatch(preview.log, new RegExp(`kubelet-${n3.name}\\b`));
  });

  it("up switches the labelled Nodes, their host keys pinned from known_hosts", STEP, async () => {
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    assert.doesNotMatch(up.log, /hostKey: not pinned/);
    for (const n of [n1, n2]) assert.deepEqual(await dnsOf(n), [LOCAL_DNS_IP], n.name);
    assert.deepEqual(await dnsOf(n3), [KUBE_DNS_IP]);
    const managed = (up.outputs?.managedNodes as { name: string }[]).map((m) => m.name);
    assert.deepEqual(managed, [n1.name, n2.name]);
  });

  it(
    "npm run check lists the same Nodes from the cluster and finds them switched",
    STEP,
    async () => {
      const r = await ws.check(STACK, ["--cluster-dns-ip", KUBE_DNS_IP]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const lines = r.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 3, r.stdout);
      for (const [i, n] of [n1, n2].entries()) {
        assert.match(lines[i]!, new RegExp(`^${n.name}: already switched`));
      }
      assert.equal(lines[2], "checked 2 nodes: 2 already switched");
    },
  );

  it("a Node labelled later: a wrong known_hosts key fails it untouched", STEP, async () => {
    await label(n3, "on");
    const before = n3.program.text("/var/lib/kubelet/config.yaml");
    const up = await ws.operation("up", STACK);
    assert.equal(up.ok, false, "a host key mismatch fails the node");
    assert.equal(n3.program.text("/var/lib/kubelet/config.yaml"), before);
    assert.deepEqual(await dnsOf(n3), [KUBE_DNS_IP]);
  });

  it("the next up, with its right key, switches that Node alone", STEP, async () => {
    await setKnownHosts({});
    const starts = await Promise.all([n1, n2].map(async (n) => (await n.program.kubelet()).starts));
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    // The failed up recorded n3's guard and cleanup (neither connects on up); the key fix
    // updates their connection, without connecting either, and creates the switch.
    const changes = up.summary?.resourceChanges;
    assert.equal(changes?.create, 1, JSON.stringify(changes));
    assert.equal(changes?.update, 2, JSON.stringify(changes));
    assert.deepEqual(await dnsOf(n3), [LOCAL_DNS_IP]);
    const after = await Promise.all([n1, n2].map(async (n) => (await n.program.kubelet()).starts));
    assert.deepEqual(after, starts, "the other nodes' kubelets were not restarted");
  });

  it("a Node relabelled out of the selector is reverted", STEP, async () => {
    await label(n1, "off");
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    // Its switch, guard and cleanup (which finds the cache still running there: nothing removed).
    assert.equal(
      up.summary?.resourceChanges?.delete,
      3,
      JSON.stringify(up.summary?.resourceChanges),
    );
    assert.deepEqual(await dnsOf(n1), [KUBE_DNS_IP]);
  });

  it("a machine gone for good: up retires its Commands without dialling it", STEP, async () => {
    await cluster.removeNode(n2.name);
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error ?? up.log);
    assert.match(up.log, new RegExp(`left the cluster, retired without a revert: ${n2.name}`));
    // Its switch, guard and cleanup, and the managed-nodes record (which no longer lists it).
    assert.equal(
      up.summary?.resourceChanges?.update,
      4,
      JSON.stringify(up.summary?.resourceChanges),
    );
    // The command provider logs each of its (up to 10) dials of a dead host: none was attempted.
    assert.doesNotMatch(up.log, /Dial \d+\/\d+ failed/);
    const managed = (up.outputs?.managedNodes as { name: string }[]).map((m) => m.name);
    assert.deepEqual(managed, [n3.name]);
  });

  it(
    "the machine rejoins under its name and address, reimaged, before the retired Commands go: up switches it",
    STEP,
    async () => {
      // A fresh OS on the old address: kubelet on kube-dns, no state, a new host key.
      const rejoined = await cluster.addNode(n2.name, 2, n2.port);
      await label(rejoined, "on");
      await setKnownHosts({});
      // Each test machine has an SSH key of its own: the new one goes where the old one was
      // (nodes[1], this name's entry since `before`).
      const key = fs.readFileSync(rejoined.program.node.privateKeyPath, "utf8");
      ok(await ws.cli(["config", "set", "--secret", "--path", "nodes[1].privateKey"], key));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      // The retired switch and guard are declared again with the same triggers: an update, which
      // runs `update` on the node; the launcher switches a node that uses kube-dns. The retired
      // cleanup too (no update text: nothing runs). The fourth update is the managed-nodes record,
      // which lists it again.
      assert.equal(
        up.summary?.resourceChanges?.update,
        4,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.deepEqual(await dnsOf(rejoined), [LOCAL_DNS_IP]);
      const managed = (up.outputs?.managedNodes as { name: string }[]).map((m) => m.name).sort();
      assert.deepEqual(managed, [n2.name, n3.name]);
      n2 = rejoined;
    },
  );

  it(
    "another machine gone: retired, and the next up drops its Commands from state",
    STEP,
    async () => {
      await cluster.removeNode(n3.name);
      const retire = await ws.operation("up", STACK);
      assert.ok(retire.ok, retire.error ?? retire.log);
      assert.equal(
        retire.summary?.resourceChanges?.update,
        4,
        JSON.stringify(retire.summary?.resourceChanges),
      );
      assert.doesNotMatch(retire.log, /Dial \d+\/\d+ failed/);
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      assert.equal(
        up.summary?.resourceChanges?.delete,
        3,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.ok(!JSON.stringify(ws.checkpoint(STACK)).includes(`kubelet-${n3.name}`));
      assert.ok(!JSON.stringify(ws.checkpoint(STACK)).includes(`cleanup-${n3.name}`));
    },
  );

  it(
    "a failed up switched a machine that then goes before the next up: that up retires it undialled",
    STEP,
    async () => {
      // A new machine, first in the rollout order. n1, back in the selection and next in that
      // order, fails its switch at once: its state directory may be written by others, which
      // the node program refuses before changing anything.
      const n0 = await cluster.addNode("e2e-node-0", 5);
      await label(n0, "on");
      ok(await ws.cli(["config", "set", "--path", "nodes[3].name", n0.name]));
      ok(await ws.cli(["config", "set", "--path", "nodes[3].port", String(n0.port)]));
      const key = fs.readFileSync(n0.program.node.privateKeyPath, "utf8");
      ok(await ws.cli(["config", "set", "--secret", "--path", "nodes[3].privateKey"], key));
      ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "1"]));
      await setKnownHosts({});
      ok(await n1.program.node.run("install -d -m 0777 /var/lib/nodelocaldns"));
      await label(n1, "on");
      const failed = await ws.operation("up", STACK);
      assert.equal(failed.ok, false, "n1's switch refuses");
      assert.deepEqual(await dnsOf(n0), [LOCAL_DNS_IP], "switched before the failure");
      assert.deepEqual(await dnsOf(n1), [KUBE_DNS_IP]);

      // The machine goes; n1 is fixed. The failed update recorded no outputs, so only the
      // managed-nodes record knows of n0.
      await cluster.removeNode(n0.name);
      ok(await n1.program.node.run("rm -rf /var/lib/nodelocaldns"));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      assert.match(up.log, new RegExp(`left the cluster, retired without a revert: ${n0.name}`));
      assert.doesNotMatch(up.log, /Dial \d+\/\d+ failed/);
      assert.deepEqual(await dnsOf(n1), [LOCAL_DNS_IP]);
    },
  );

  it(
    "a machine gone with no up since: plain destroy dials it, fails, and keeps the cache",
    STEP,
    async () => {
      await label(n1, "on");
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      assert.deepEqual(await dnsOf(n1), [LOCAL_DNS_IP]);
      await cluster.removeNode(n2.name);
      const down = await ws.operation("destroy", STACK);
      assert.equal(down.ok, false, "the gone node's revert cannot connect");
      assert.match(down.log, /Dial \d+\/\d+ failed/);
      assert.equal((await cluster.controlPlane.api.get(DAEMON_SET)).status, 200, "cache kept");
    },
  );

  it(
    "destroy --run-program drops the gone machine's Commands undialled and reverts the rest",
    STEP,
    async () => {
      const down = await ws.operation("destroy", STACK, { runProgram: true });
      assert.ok(down.ok, down.error ?? down.log);
      assert.match(down.log, new RegExp(`left the cluster, retired without a revert: ${n2.name}`));
      assert.doesNotMatch(down.log, /Dial \d+\/\d+ failed/);
      assert.deepEqual(await dnsOf(n1), [KUBE_DNS_IP]);
      assert.equal((await cluster.controlPlane.api.get(DAEMON_SET)).status, 404, "cache gone");
      const { checkpoint } = ws.checkpoint(STACK) as {
        checkpoint: { latest?: { resources?: unknown[] } };
      };
      assert.deepEqual(checkpoint.latest?.resources ?? [], [], "nothing left in state");
    },
  );
});

function ok(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

async function label(n: ClusterNode, value: string): Promise<void> {
  const r = await cluster.controlPlane.api.patch(`/api/v1/nodes/${n.name}`, {
    metadata: { labels: { [LABEL]: value } },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

/** ssh.knownHosts as ssh-keyscan prints it for the fleet; `wrong` swaps a node's key. */
async function setKnownHosts(wrong: Record<string, string>): Promise<void> {
  const text = cluster.nodes
    .map((n) => `[${n.host}]:${n.port} ${wrong[n.name] ?? n.program.node.hostKey}`)
    .join("\n");
  ok(await ws.cli(["config", "set", "--path", "ssh.knownHosts", "--", text]));
}

async function dnsOf(n: ClusterNode): Promise<string[] | undefined> {
  return (await n.program.kubelet()).effective?.clusterDNS;
}
