// The rollout plan through the real engine: four nodes in two rounds of two (batchSize 2), so the
// first round is passed to the second through its gate (a pulumi.Stash). A node of the first
// round that fails stops the rollout before the second round starts; once it is fixed, the next
// `up` switches the rest, the second round only after the first; the state holds one gate
// dependency per switch of the second round; destroy reverts the second round before the first.
// The order is read from each node's kubelet start log (the stand-in kubelet records every start
// with its cluster DNS). Then one round of four (batchSize 4), held on the nodes by a cache that
// refuses connections: how many switches run at once under the CLI's --parallel.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { KUBELET_STARTS_LOG } from "../support/systemdNode/constants";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "./pulumi/cluster";
import { PulumiWorkspace } from "./pulumi/workspace";
import { CLUSTER_TOOLS, clusterTestOptions } from "./pulumi/tools";
import { requireTools } from "./support/toolchain";

const STACK = "rounds";
const LOCAL_DNS_IP = "169.254.20.10";
const STEP = { timeout: 10 * 60_000 };
/** A well-formed ed25519 key that no test node has. */
const WRONG_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V";
const GATE_TYPE = "pulumi:index:Stash";

let cluster: E2eCluster;
let ws: PulumiWorkspace;

describe(
  "rollout rounds through the real engine",
  { ...clusterTestOptions(), concurrency: 1 },
  () => {
    before(
      async () => {
        cluster = await E2eCluster.start(4);
        ws = await PulumiWorkspace.create(
          requireTools(CLUSTER_TOOLS),
          cluster.controlPlane.kubeconfigPath,
        );
        ok(await ws.cli(["stack", "init", STACK]));
        ok(await ws.cli(["config", "set", "--path", "ssh.user", "root"]));
        ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "2"]));
        ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "60"]));
        ok(await ws.cli(["config", "set", "--path", "rollout.kubeletTimeoutSeconds", "30"]));
        for (const [i, n] of cluster.nodes.entries()) {
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].name`, n.name]));
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].host`, n.host]));
          ok(await ws.cli(["config", "set", "--path", `nodes[${i}].port`, String(n.port)]));
          const key = fs.readFileSync(n.program.node.privateKeyPath, "utf8");
          ok(await ws.cli(["config", "set", "--secret", "--path", `nodes[${i}].privateKey`], key));
        }
      },
      { timeout: 20 * 60_000 },
    );
    after(async () => {
      ws?.remove();
      await cluster?.stop();
    });

    it("a failing node of the first round stops the rollout before the second", STEP, async () => {
      const [n1, n2, n3, n4] = fourNodes();
      await pinHostKeys({ [n2.name]: WRONG_KEY });
      const up = await ws.operation("up", STACK);
      assert.equal(up.ok, false, "up fails at n2's host key");
      // n1, in the same round, may or may not have been switched: its steps run beside n2's, and
      // the engine starts no new step once one failed.
      assert.ok([LOCAL_DNS_IP, KUBE_DNS_IP].includes((await dnsOf(n1))?.[0] ?? ""), n1.name);
      for (const n of [n2, n3, n4]) assert.deepEqual(await dnsOf(n), [KUBE_DNS_IP], n.name);
      for (const n of [n3, n4]) assert.equal(kubeletStarts(n).length, 1, `${n.name}: not touched`);
      const state = resources();
      assert.equal(state.filter((r) => r.type === GATE_TYPE).length, 0, "no gate recorded");
      for (const n of [n3, n4]) {
        assert.equal(switchOf(state, n), undefined, `${n.name}: its switch never ran`);
      }
    });

    it("the next up switches the second round only after the first", STEP, async () => {
      const nodes = cluster.nodes;
      await pinHostKeys({});
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      for (const n of nodes) assert.deepEqual(await dnsOf(n), [LOCAL_DNS_IP], n.name);
      const switchedAt = nodes.map((n) => lastStart(n, LOCAL_DNS_IP));
      const firstRoundDone = Math.max(switchedAt[0]!, switchedAt[1]!);
      for (const i of [2, 3]) {
        assert.ok(switchedAt[i]! > firstRoundDone, `${nodes[i]!.name} switched after round 1`);
      }
    });

    it(
      "the state: each switch of the second round names the gate, not every switch before",
      STEP,
      () => {
        const state = resources();
        const gates = state.filter((r) => r.type === GATE_TYPE);
        assert.equal(gates.length, 1, "one gate: round 1 (the last round needs none)");
        const gate = gates[0]!;
        const [n1, n2, n3, n4] = fourNodes();
        assert.deepEqual(
          [...(gate.dependencies ?? [])].sort(),
          [switchOf(state, n1)!.urn, switchOf(state, n2)!.urn].sort(),
        );
        for (const n of [n3, n4]) {
          const deps = switchOf(state, n)!.dependencies ?? [];
          assert.ok(deps.includes(gate.urn), `${n.name} depends on the gate`);
          const onSwitches = deps.filter((urn) => /::nodelocaldns-kubelet-e2e-node-\d+$/.test(urn));
          assert.deepEqual(onSwitches, [], `${n.name} names no switch of round 1`);
        }
      },
    );

    it("destroy reverts the second round before the first", STEP, async () => {
      const nodes = cluster.nodes;
      const down = await ws.operation("destroy", STACK);
      assert.ok(down.ok, down.error ?? down.log);
      for (const n of nodes) assert.deepEqual(await dnsOf(n), [KUBE_DNS_IP], n.name);
      const revertedAt = nodes.map((n) => lastStart(n, KUBE_DNS_IP));
      const secondRoundDone = Math.max(revertedAt[2]!, revertedAt[3]!);
      for (const i of [0, 1]) {
        assert.ok(revertedAt[i]! > secondRoundDone, `${nodes[i]!.name} reverted after round 2`);
      }
    });

    // The engine's --parallel, seen on the nodes: one round of four whose switches all wait for
    // the cache (refused on every node), so that each stays running on its node until the test
    // lets the cache answer.
    it(
      "a round of four switches four at once under the CLI's default --parallel",
      STEP,
      async () => {
        ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "4"]));
        const most = await upWithCacheRefused({}, 4, 0);
        assert.equal(most, 4, "the four switches of the round ran at once");
      },
    );

    it("--parallel 2 runs two switches of that round at a time", STEP, async () => {
      const down = await ws.operation("destroy", STACK);
      assert.ok(down.ok, down.error ?? down.log);
      // Two waiting, then long enough for a third to have started had the engine allowed it.
      const most = await upWithCacheRefused({ parallel: 2 }, 2, 4_000);
      assert.equal(most, 2, "never more than two switches at once");
      const again = await ws.operation("destroy", STACK);
      assert.ok(again.ok, again.error ?? again.log);
      for (const n of cluster.nodes) assert.deepEqual(await dnsOf(n), [KUBE_DNS_IP], n.name);
    });
  },
);

/** How long a round may take to show its switches waiting, and an `up` to end after. */
const WATCH_MS = 60_000;
const POLL_MS = 200;

/**
 * Runs `up` (with `args`) while every node refuses connections to the cache, so that each switch
 * waits on its node; watches how many nodes run a switch at once until `enough` do, then
 * `thenMs` more; lets the cache answer, and waits for `up` to succeed with every node switched.
 * Returns the most switches seen running at once.
 */
async function upWithCacheRefused(
  args: Record<string, unknown>,
  enough: number,
  thenMs: number,
): Promise<number> {
  const nodes = cluster.nodes;
  let most = 0;
  let up: ReturnType<typeof ws.operation> | undefined;
  let failure: unknown;
  try {
    for (const n of nodes) await refuseCache(n, true);
    up = ws.operation("up", STACK, args, undefined, 5 * 60_000);
    const deadline = Date.now() + WATCH_MS;
    let enoughSince: number | undefined;
    while (Date.now() < deadline) {
      const running = (await Promise.all(nodes.map(switchRunning))).filter(Boolean).length;
      most = Math.max(most, running);
      if (most >= enough) enoughSince ??= Date.now();
      if (enoughSince !== undefined && Date.now() - enoughSince >= thenMs) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    failure = error;
  } finally {
    for (const n of nodes) await refuseCache(n, false);
  }
  // The cache answers again, so `up` ends either way: waited for before any failure is reported,
  // so that no operation outlives the test.
  const result = await up;
  if (failure !== undefined) throw failure;
  assert.ok(result?.ok, result?.error ?? result?.log);
  for (const n of nodes) assert.deepEqual(await dnsOf(n), [LOCAL_DNS_IP], n.name);
  return most;
}

/** Makes the node refuse (or accept again) TCP connections to the cache's DNS port. */
async function refuseCache(n: ClusterNode, refuse: boolean): Promise<void> {
  const rule = `INPUT -p tcp -d ${LOCAL_DNS_IP} --dport 53 -j REJECT --reject-with tcp-reset`;
  const command = refuse
    ? `iptables -w -I ${rule}`
    : `if iptables -w -C ${rule} 2>/dev/null; then iptables -w -D ${rule}; fi`;
  const r = await n.program.node.run(command);
  assert.equal(r.code, 0, `${n.name}: ${r.stderr}`);
}

/** Whether the node runs a switch now: the program's bash, `bash -s create`. */
async function switchRunning(n: ClusterNode): Promise<boolean> {
  return (await n.program.node.run("pgrep -x -f 'bash -s create' >/dev/null")).code === 0;
}

interface StateResource {
  urn: string;
  type: string;
  dependencies?: string[];
}

function ok(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

/** The cluster's four nodes: round 1 is the first two, round 2 the other two. */
function fourNodes(): [ClusterNode, ClusterNode, ClusterNode, ClusterNode] {
  assert.equal(cluster.nodes.length, 4);
  return cluster.nodes as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
}

/** nodes[i].hostKey of every node: its own, or the one given here. */
async function pinHostKeys(overrides: Record<string, string>): Promise<void> {
  for (const [i, n] of cluster.nodes.entries()) {
    const key = overrides[n.name] ?? n.program.node.hostKey;
    ok(await ws.cli(["config", "set", "--path", `nodes[${i}].hostKey`, key]));
  }
}

async function dnsOf(n: ClusterNode): Promise<string[] | undefined> {
  return (await n.program.kubelet()).effective?.clusterDNS;
}

/** Every kubelet start the stand-in recorded: when (ms), and with which cluster DNS. */
function kubeletStarts(n: ClusterNode): { at: number; dns: string }[] {
  return n.program
    .text(KUBELET_STARTS_LOG)
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => ({
      at: Date.parse(line.split(" ")[0]!),
      dns: /clusterDNS=(\S+)/.exec(line)?.[1] ?? "",
    }));
}

/** When kubelet last started with this cluster DNS. */
function lastStart(n: ClusterNode, dns: string): number {
  const start = kubeletStarts(n)
    .filter((s) => s.dns === dns)
    .at(-1);
  assert.ok(start, `${n.name}: a kubelet start with ${dns}`);
  return start.at;
}

function resources(): StateResource[] {
  const exported = ws.checkpoint(STACK) as {
    checkpoint: { latest: { resources?: StateResource[] } };
  };
  return exported.checkpoint.latest.resources ?? [];
}

function switchOf(state: StateResource[], n: ClusterNode): StateResource | undefined {
  return state.find((r) => r.urn.endsWith(`::nodelocaldns-kubelet-${n.name}`));
}
