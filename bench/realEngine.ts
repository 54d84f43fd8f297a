// Section 6: a real `pulumi up` and `pulumi destroy`, through the engine, the providers and the
// test cluster of the end-to-end suite (test/e2e/pulumi/cluster.ts: a local control plane, kwok
// Nodes, systemd test nodes over SSH on loopback, the pod runner playing kubelet for the
// DaemonSet). In the same run, alternating, on the same nodes:
// - ours: this project's index.ts;
// - the floor: bench/realEngineFloor.ts, the same resource graph whose Commands run `true`;
// and, on one node, the kubelet restart itself (systemctl restart until /healthz answers ok),
// which the goal adds once per round to the floor.
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { planRollout } from "../components/rollout";
import { parseSettings, rawConfigFromFiles } from "../components";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "../test/e2e/pulumi/cluster";
import { CLUSTER_TOOLS, clusterTestOptions } from "../test/e2e/pulumi/tools";
import { PulumiWorkspace } from "../test/e2e/pulumi/workspace";
import { requireTools } from "../test/e2e/support/toolchain";
import { timeKubeletRestart } from "./kubeletStart";
import { ms, ratio, seconds, spread, summarize, table, verdict } from "./stats";

export const REAL_ENGINE_GOAL = 1.2;
export const CHECKPOINT_GOAL = 2.2;
const FLOOR_PROGRAM = path.join(__dirname, "realEngineFloor.ts");
const LOCAL_DNS_IP = "169.254.20.10";

export interface RealEngineResult {
  nodes: number;
  rounds: number;
  /** Wall time of each operation, ms, in run order. */
  ours: { up: number[]; destroy: number[] };
  floor: { up: number[]; destroy: number[] };
  /** systemctl restart until /healthz answers, ms. */
  restart: number[];
  /** Per node: JSON bytes of its three Commands in the checkpoint, and of their inputs there. */
  checkpointBytes: number[];
  inputBytes: number[];
  startMs: number;
}

export type RealEngineOutcome = RealEngineResult | { skipped: string };

export async function measureRealEngine(
  nodes: number,
  runs: number,
  log: (msg: string) => void,
): Promise<RealEngineOutcome> {
  const skip = clusterTestOptions().skip;
  if (skip !== undefined) return { skipped: skip };
  const started = performance.now();
  const cluster = await E2eCluster.start(nodes);
  let ws: PulumiWorkspace | undefined;
  try {
    ws = await PulumiWorkspace.create(
      requireTools(CLUSTER_TOOLS),
      cluster.controlPlane.kubeconfigPath,
    );
    for (const stack of ["ours", "floor"]) await configureStack(ws, stack, cluster.nodes);
    const startMs = performance.now() - started;
    log(`  ${nodes} nodes and the control plane up in ${seconds(startMs)}`);
    const result: RealEngineResult = {
      nodes,
      rounds: roundsOf(ws),
      ours: { up: [], destroy: [] },
      floor: { up: [], destroy: [] },
      restart: [],
      checkpointBytes: [],
      inputBytes: [],
      startMs,
    };
    for (let r = 0; r < runs; r++) {
      // Alternate which goes first, so neither always runs on a machine the other just warmed.
      const order = r % 2 === 0 ? (["ours", "floor"] as const) : (["floor", "ours"] as const);
      for (const which of order) {
        const program = which === "floor" ? FLOOR_PROGRAM : undefined;
        const up = await timed(() => ws!.operation("up", which, {}, program));
        if (which === "ours") {
          await expectDns(cluster.nodes, LOCAL_DNS_IP);
          if (r === 0) perNodeCheckpoint(ws.checkpoint("ours"), result);
        }
        const down = await timed(() => ws!.operation("destroy", which, {}, program));
        await expectDns(cluster.nodes, KUBE_DNS_IP);
        result[which].up.push(up);
        result[which].destroy.push(down);
        log(`  run ${r + 1}/${runs} ${which}: up ${seconds(up)}, destroy ${seconds(down)}`);
      }
      for (let i = 0; i < 3; i++) result.restart.push(await kubeletRestartMs(cluster.nodes[0]!));
    }
    return result;
  } finally {
    ws?.remove();
    await cluster.stop();
  }
}

/** The stack: every node listed with its address, port, host key and own key (a secret). */
async function configureStack(ws: PulumiWorkspace, stack: string, nodes: ClusterNode[]) {
  ok(await ws.cli(["stack", "init", stack]));
  const pairs = [
    `clusterDnsIp=${KUBE_DNS_IP}`,
    "ssh.user=root",
    "rollout.readyTimeoutSeconds=60",
    "rollout.kubeletTimeoutSeconds=30",
  ];
  const secrets: string[] = [];
  for (const [i, n] of nodes.entries()) {
    pairs.push(`nodes[${i}].name=${n.name}`, `nodes[${i}].host=${n.host}`);
    pairs.push(`nodes[${i}].port=${n.port}`, `nodes[${i}].hostKey=${n.program.node.hostKey}`);
    const key = fs.readFileSync(n.program.node.privateKeyPath, "utf8");
    secrets.push(`nodes[${i}].privateKey=${key}`);
  }
  const args = ["config", "set-all", "--path", "--stack", stack];
  for (const p of pairs) args.push("--plaintext", p);
  for (const s of secrets) args.push("--secret", s);
  ok(await ws.cli(args));
}

function roundsOf(ws: PulumiWorkspace): number {
  const settings = parseSettings(rawConfigFromFiles(ws.projectDir, "ours")).settings;
  return planRollout(settings.nodes, settings.rollout).length;
}

async function timed(op: () => Promise<{ ok: boolean; error?: string }>): Promise<number> {
  const t = performance.now();
  const r = await op();
  if (!r.ok) throw new Error(`real-engine bench: ${r.error ?? "operation failed"}`);
  return performance.now() - t;
}

async function expectDns(nodes: ClusterNode[], ip: string): Promise<void> {
  for (const n of nodes) {
    const dns = (await n.program.kubelet()).effective?.clusterDNS;
    if (dns?.[0] !== ip) throw new Error(`${n.name}: kubelet uses ${String(dns)}, expected ${ip}`);
  }
}

/**
 * Per node, the JSON bytes of its Commands (switch, guard, cleanup) in the checkpoint, whole and
 * inputs only.
 */
function perNodeCheckpoint(checkpoint: unknown, result: RealEngineResult): void {
  type Entry = { urn: string; type: string; inputs?: unknown };
  const resources = (checkpoint as { checkpoint: { latest: { resources: Entry[] } } }).checkpoint
    .latest.resources;
  const byNode = new Map<string, { all: number; inputs: number }>();
  for (const r of resources.filter((x) => x.type === "command:remote:Command")) {
    const node = r.urn.replace(/^.*::nodelocaldns-(kubelet-(guard-)?|cleanup-)/, "");
    const sizes = byNode.get(node) ?? { all: 0, inputs: 0 };
    sizes.all += Buffer.byteLength(JSON.stringify(r));
    sizes.inputs += Buffer.byteLength(JSON.stringify(r.inputs ?? {}));
    byNode.set(node, sizes);
  }
  for (const { all, inputs } of byNode.values()) {
    result.checkpointBytes.push(all);
    result.inputBytes.push(inputs);
  }
}

/** One kubelet restart on a node, timed inside it: systemctl restart until /healthz says ok. */
async function kubeletRestartMs(node: ClusterNode): Promise<number> {
  const restart = await timeKubeletRestart((script) => node.program.node.run(script), node.name);
  return restart.totalMs;
}

/** Throws with the CLI's stderr unless it exited 0. */
export function ok(r: { code: number; stdout: string; stderr: string }): void {
  if (r.code !== 0) throw new Error(`pulumi: ${r.stderr.trim()}`);
}

export function realEngineTables(r: RealEngineResult): {
  markdown: string;
  summary: string;
  met: boolean;
  checkpointSummary: string;
  checkpointMet: boolean;
} {
  const oursUp = summarize(r.ours.up);
  const floorUp = summarize(r.floor.up);
  const restart = summarize(r.restart);
  const floorWithRestarts = floorUp.median + r.rounds * restart.median;
  const upRatio = oursUp.median / floorWithRestarts;
  const oursDown = summarize(r.ours.destroy);
  const floorDown = summarize(r.floor.destroy);
  const downWithRestarts = floorDown.median + r.rounds * restart.median;
  const cp = summarize(r.checkpointBytes);
  const inputs = summarize(r.inputBytes);
  // The worst node: each node's checkpoint bytes over its own inputs.
  const cpRatio = Math.max(...r.checkpointBytes.map((bytes, i) => bytes / r.inputBytes[i]!));
  const rows = [
    ["up", spread(oursUp, seconds), spread(floorUp, seconds), seconds(floorWithRestarts)],
    ["destroy", spread(oursDown, seconds), spread(floorDown, seconds), seconds(downWithRestarts)],
  ];
  const markdown = [
    `${r.nodes} nodes (${r.rounds} rounds under the default rollout plan); the cluster and nodes ` +
      `took ${seconds(r.startMs)} to start, not counted. kubelet restart on a test node ` +
      `(systemctl restart until /healthz answers ok): ${spread(restart, ms)}.`,
    "",
    table(
      [
        "operation",
        "ours: median (min–max)",
        "floor: median (min–max)",
        "floor + rounds × restart",
      ],
      rows,
    ),
    "",
    `Ours / (floor + rounds × restart), up: ${ratio(upRatio)} (goal ≤ ${REAL_ENGINE_GOAL}x, ` +
      `${verdict(upRatio <= REAL_ENGINE_GOAL)}); destroy: ${ratio(oursDown.median / downWithRestarts)}.`,
    "",
    `Checkpoint per node (its switch, guard and cleanup as the local backend stores them, inputs and ` +
      `outputs, the connection encrypted): ${spread(cp, (v) => `${v.toFixed(0)} B`)}; their inputs ` +
      `alone: ${spread(inputs, (v) => `${v.toFixed(0)} B`)}; ratio ${ratio(cpRatio)} on the worst node (goal ≤ ` +
      `${CHECKPOINT_GOAL}x, ${verdict(cpRatio <= CHECKPOINT_GOAL)}).`,
  ].join("\n");
  return {
    markdown,
    summary: `${r.nodes} nodes: up ${seconds(oursUp.median)} against ${seconds(floorWithRestarts)} (${ratio(upRatio)})`,
    met: upRatio <= REAL_ENGINE_GOAL,
    checkpointSummary: `${ratio(cpRatio)} the inputs (${cp.max} B per node at most)`,
    checkpointMet: cpRatio <= CHECKPOINT_GOAL,
  };
}
