// The live view through the real engine (README "Live view"): `pulumi up` and `preview` of this
// project read each node's running kubelet clusterDNS through a real kube-apiserver's node proxy
// (`GET /api/v1/nodes/<node>/proxy/configz`), which dials each systemd test node's kubelet
// endpoint over verified HTTPS to its stand-in kubelet. kube-apiserver refuses to proxy to
// loopback, so this suite runs in a network namespace of its own (run by ../liveViewEngine.test.ts
// through test/e2e/support/netns.ts) and the cluster's nodes live on that namespace's lo
// (E2eCluster's "netns" node network). The first up finds both nodes on kube-dns, to switch; once
// they are switched, preview and the next up find both on the cache, as the last update left them.
// Then drift repair and the check after the switch (README "Drift repair", "Verification after
// the switch"): a simulated `kubeadm upgrade` on one node is seen, previewed as an update of that
// node's switch alone, repaired and confirmed by the next up, and the up after that changes
// nothing; a kubelet whose configz still says kube-dns after its switch fails the update, named;
// destroy reverts both nodes to the files kubeadm wrote.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "../pulumi/cluster";
import { CLUSTER_TOOLS, clusterTestOptions } from "../pulumi/tools";
import { PulumiWorkspace } from "../pulumi/workspace";
import { requireTools } from "../support/toolchain";
import { sleep } from "../support/wait";
import { KUBELET_LAYOUTS } from "../../support/systemdNode";

const options = clusterTestOptions();

const STACK = "live";
const LOCAL_DNS_IP = "169.254.20.10";
const SUMMARY = "kubelet live view (configz, before this update):";
const STEP = { timeout: 10 * 60_000 };
/** The stand-in kubelet's failure knobs (test/support/systemdNode/kubelet-standin.py). */
const KNOBS = "/etc/kubelet-standin";
const KUBEADM_CONFIG = "/var/lib/kubelet/config.yaml";
/** What `kubeadm upgrade node` writes: kube-dns again, and a field the new version adds. */
const UPGRADED = `${KUBELET_LAYOUTS.kubeadm.files[KUBEADM_CONFIG]}maxPods: 120\n`;
/** What the operations of this suite run: ended in after() should one outlive its step. */
const RUNNER = path.join(__dirname, "..", "pulumi", "runner.ts");

let cluster: E2eCluster;
let ws: PulumiWorkspace;
let nodes: ClusterNode[];

describe(
  "the live view through the real engine and the API server's configz proxy",
  { ...options, concurrency: 1 },
  () => {
    before(
      async () => {
        cluster = await E2eCluster.start(2, { nodeNetwork: "netns" });
        nodes = cluster.nodes;
        ws = await PulumiWorkspace.create(
          requireTools(CLUSTER_TOOLS),
          cluster.controlPlane.kubeconfigPath,
        );
        // A pod that node 1's kubelet sets up before the switch: it keeps kube-dns until recreated.
        await createPod(nodes[0]!, "before-switch");
        ok(await ws.cli(["stack", "init", STACK]));
        ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "2"]));
        ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "60"]));
        ok(await ws.cli(["config", "set", "--path", "rollout.kubeletTimeoutSeconds", "30"]));
        // Listed by hand under their Node names (the live view asks the API server by name).
        for (const [i, n] of nodes.entries()) {
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].name`, n.name]));
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].host`, n.host]));
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].port`, String(n.port)]));
          const hostKey = n.program.node.hostKey;
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].hostKey`, hostKey]));
          const key = fs.readFileSync(n.program.node.privateKeyPath, "utf8");
          ok(await ws.cli(["config", "set", "--secret", "--path", `nodes[${i}].privateKey`], key));
        }
      },
      { timeout: 20 * 60_000 },
    );
    after(async () => {
      stopLeftoverOperations();
      ws?.remove();
      await cluster?.stop();
    });

    it(
      "up reads both nodes on kube-dns through the proxy, to switch, and switches them",
      STEP,
      async () => {
        for (const n of nodes)
          assert.match(n.host, /^10\.254\.0\.\d+$/, "an address the proxy dials");
        const up = await ws.operation("up", STACK);
        assert.ok(up.ok, up.error ?? up.log);
        for (const n of nodes) assert.deepEqual(await dnsOf(n), [LOCAL_DNS_IP], n.name);
        assert.deepEqual(
          up.outputs?.kubeletLive,
          eachNode({ state: "to switch", clusterDNS: [KUBE_DNS_IP] }),
          up.log,
        );
        const names = nodes.map((n) => n.name).join(", ");
        assert.ok(up.log.includes(`${SUMMARY} on the cache 0/2; to switch: ${names}\n`), up.log);
        assert.deepEqual(up.outputs?.podsToRecreate, podsReport(["default/before-switch"]));
        // Switch times are to the second, and a pod of the switch's own second counts as set up
        // before it (never left out): the second pod is made once that second has passed.
        const switchedAt = (up.outputs?.managedNodes as { switchedAt?: string }[]).map((m) =>
          Date.parse(m.switchedAt ?? ""),
        );
        assert.ok(
          switchedAt.every((t) => !Number.isNaN(t)),
          JSON.stringify(switchedAt),
        );
        await sleep(Math.max(0, Math.max(...switchedAt) + 1000 - Date.now()));
        await createPod(nodes[0]!, "after-switch");
      },
    );

    it(
      "preview finds both switched, as the last update left them; nothing to change",
      STEP,
      async () => {
        const preview = await ws.operation("preview", STACK);
        assert.ok(preview.ok, preview.error ?? preview.log);
        assert.ok(preview.log.includes(`${SUMMARY} on the cache 2/2\n`), preview.log);
        assertNoChanges(preview.changeSummary, preview.log);
      },
    );

    it(
      "the next up reports kubeletLive switched on every node and changes nothing",
      STEP,
      async () => {
        // preview's result carries no stack outputs (runner.ts): an up with nothing to do does.
        const up = await ws.operation("up", STACK);
        assert.ok(up.ok, up.error ?? up.log);
        assert.deepEqual(
          up.outputs?.kubeletLive,
          eachNode({ state: "switched", clusterDNS: [LOCAL_DNS_IP] }),
          up.log,
        );
        assert.ok(up.log.includes(`${SUMMARY} on the cache 2/2\n`), up.log);
        assertNoChanges(up.summary?.resourceChanges, up.log);
        for (const n of nodes) assert.deepEqual(await dnsOf(n), [LOCAL_DNS_IP], n.name);
        // The pod created after the switch asks the cache: only the one from before is listed,
        // and the other is what an uninstall would leave to recreate.
        assert.deepEqual(
          up.outputs?.podsToRecreate,
          podsReport(["default/before-switch"], ["default/after-switch"]),
        );
      },
    );

    it(
      "a kubeadm upgrade puts one node's file back: preview updates that switch alone, saying why",
      STEP,
      async () => {
        const [n1] = nodes as [ClusterNode];
        await kubeadmUpgrade(n1);
        assert.deepEqual(await dnsOf(n1), [KUBE_DNS_IP]);
        const preview = await ws.operation("preview", STACK);
        assert.ok(preview.ok, preview.error ?? preview.log);
        assert.ok(preview.log.includes(`${SUMMARY} on the cache 1/2; drifted: ${n1.name}\n`));
        assert.ok(preview.log.includes(repairLine(n1)), preview.log);
        assertChanges(preview.changeSummary, { update: 1 }, preview.log);
        // Only the switch's `update` text differs: an in-place update, nothing replaced.
        assert.match(
          preview.log,
          new RegExp(
            `~ +command:remote:Command nodelocaldns-kubelet-${n1.name} .*\\[diff: ~update\\]`,
          ),
        );
      },
    );

    it(
      "up switches it again, confirmed through the API server, and records repair 1",
      STEP,
      async () => {
        const [n1, n2] = nodes as [ClusterNode, ClusterNode];
        const up = await ws.operation("up", STACK);
        assert.ok(up.ok, up.error ?? up.log);
        assert.deepEqual(await dnsOf(n1), [LOCAL_DNS_IP]);
        assertChanges(up.summary?.resourceChanges, { update: 1 }, up.log);
        const outcome = (up.outputs?.kubeletSwitches as Record<string, string>)[n1.name]!;
        assert.match(outcome, /: switched: cluster DNS 10\.96\.0\.10 -> 169\.254\.20\.10 in /);
        const switched = String(ws.outputsOf(STACK, `nodelocaldns-kubelet-${n1.name}`).stdout);
        assert.match(switched, /update \(repair-1: the control plane saw kubelet off the cache\)/);
        assert.match(switched, /was put back to 10\.96\.0\.10 since the switch/);
        assert.deepEqual(up.outputs?.kubeletVerified, {
          [n1.name]: { state: "confirmed", clusterDNS: [LOCAL_DNS_IP] },
        });
        assert.ok(up.log.includes("kubelet after the switch (configz): confirmed 1/1\n"), up.log);
        // Set up before the repair, both pods now count (the second may have kube-dns: drift).
        assert.deepEqual(
          up.outputs?.podsToRecreate,
          podsReport(["default/after-switch", "default/before-switch"]),
        );
        assert.deepEqual(
          (up.outputs?.managedNodes as { name: string; repairs?: number }[]).map((m) => [
            m.name,
            m.repairs,
          ]),
          [
            [n1.name, 1],
            [n2.name, undefined],
          ],
        );
      },
    );

    it("the next up finds both switched and changes nothing", STEP, async () => {
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      assert.ok(up.log.includes(`${SUMMARY} on the cache 2/2\n`), up.log);
      assertNoChanges(up.summary?.resourceChanges, up.log);
      assert.equal(up.outputs?.kubeletVerified, "nothing to verify: all on the cache before");
    });

    it(
      "a kubelet that reports another value after its switch fails the update, named",
      STEP,
      async () => {
        const [, n2] = nodes as [ClusterNode, ClusterNode];
        // Its configz says kube-dns whatever it runs with: drifted before, and after the switch.
        n2.program.node.writeFile(`${KNOBS}/configz-cluster-dns`, `${KUBE_DNS_IP}\n`);
        await kubeadmUpgrade(n2);
        const up = await ws.operation("up", STACK);
        assert.equal(up.ok, false, up.log);
        assert.match(
          `${up.error}\n${up.log}`,
          new RegExp(
            "kubelet verification failed: after their switch, kubelet reports a cluster DNS " +
              `without 169\\.254\\.20\\.10 \\(configz\\) on ${n2.name} \\(10\\.96\\.0\\.10\\)`,
          ),
        );
        // The node program's own checks passed: the node is switched by its files and process.
        assert.deepEqual(await dnsOf(n2), [LOCAL_DNS_IP]);
        // The failed update recorded no outputs: the last good update's record stands (no repair
        // number for this node), as README "Verification after the switch" says.
        const managed = JSON.parse(
          ok(await ws.cli(["stack", "output", "managedNodes", "--json", "--stack", STACK])),
        ) as { name: string; repairs?: number }[];
        assert.equal(managed.find((m) => m.name === n2.name)?.repairs, undefined);
      },
    );

    it("destroy reverts both nodes to the files kubeadm wrote", STEP, async () => {
      for (const n of nodes) await n.program.node.run(`rm -f ${KNOBS}/configz-cluster-dns`);
      const destroy = await ws.operation("destroy", STACK);
      assert.ok(destroy.ok, destroy.error ?? destroy.log);
      for (const n of nodes) {
        assert.deepEqual(await dnsOf(n), [KUBE_DNS_IP], n.name);
        assert.equal(n.program.text(KUBEADM_CONFIG), UPGRADED, n.name);
      }
    });
  },
);

/** A bare pod on the node (kwok runs it), created now: the API server stamps its creation. */
async function createPod(n: ClusterNode, name: string): Promise<void> {
  const r = await cluster.controlPlane.api.request("POST", "/api/v1/namespaces/default/pods", {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: { nodeName: n.name, containers: [{ name: "app", image: "app:1" }] },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

/**
 * podsToRecreate with only bare pods (no workload to restart), on nodes with known switch times:
 * those set up before their node's switch, and those set up since (for an uninstall).
 */
function podsReport(before: string[], since: string[] = []) {
  const bare = (others: string[]) => ({
    count: others.length,
    workloads: 0,
    commands: [],
    byHand: others.length,
    others,
  });
  return { ...bare(before), unknownSwitchTime: [], afterUninstall: bare(since) };
}

/** What `kubeadm upgrade node` does to kubelet: its file rewritten from the ConfigMap, a restart. */
async function kubeadmUpgrade(n: ClusterNode): Promise<void> {
  n.program.node.writeFile(KUBEADM_CONFIG, UPGRADED);
  const restart = await n.program.node.run("systemctl restart kubelet");
  assert.equal(restart.code, 0, restart.stderr);
  await n.program.kubeletRunning();
}

function repairLine(n: ClusterNode): string {
  return (
    `kubelet drift repair: the last update switched ${n.name} (kubelet runs ${KUBE_DNS_IP}); ` +
    "their switch runs again in this update\n"
  );
}

function ok(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

function eachNode<T>(value: T): Record<string, T> {
  return Object.fromEntries(nodes.map((n) => [n.name, value]));
}

/**
 * No create, update, replace or delete: only `same` steps, and `read` (the program reads
 * kube-system/kube-dns with a `get` on every run).
 */
/** Exactly these changes, besides `same` and `read` steps. */
function assertChanges(
  changes: Record<string, number> | undefined,
  expected: Record<string, number>,
  log: string,
): void {
  assert.ok(changes !== undefined, log);
  const unchanged = new Set(["same", "read"]);
  const changed = Object.fromEntries(
    Object.entries(changes).filter(([kind, n]) => !unchanged.has(kind) && n > 0),
  );
  assert.deepEqual(changed, expected, log);
}

function assertNoChanges(changes: Record<string, number> | undefined, log: string): void {
  assert.ok(changes !== undefined, log);
  const unchanged = new Set(["same", "read"]);
  const changed = Object.entries(changes).filter(([kind, n]) => !unchanged.has(kind) && n > 0);
  assert.deepEqual(changed, [], log);
}

async function dnsOf(n: ClusterNode): Promise<string[] | undefined> {
  return (await n.program.kubelet()).effective?.clusterDNS;
}

/**
 * An operation still running after its step timed out (runner.ts and the engine it started): by
 * pid, every process below this one's children that run the runner. The outer run's process
 * group SIGKILL is the last resort; this lets the suite end by itself.
 */
function stopLeftoverOperations(): void {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const runners = (children.get(process.pid) ?? []).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(RUNNER);
    } catch {
      return false;
    }
  });
  const doomed: number[] = [];
  for (let queue = runners; queue.length > 0; queue = queue.flatMap((p) => children.get(p) ?? [])) {
    doomed.push(...queue);
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
