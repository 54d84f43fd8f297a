// Section 6: a real `pulumi up` and `pulumi destroy`, through the engine, the providers and the
// test cluster of the end-to-end suite (test/e2e/pulumi/cluster.ts: a local control plane, kwok
// Nodes, systemd test nodes over SSH on loopback, the pod runner playing kubelet for the
// DaemonSet). In the same run, alternating, on the same nodes:
// - ours: this project's index.ts;
// - the floor: bench/realEngineFloor.ts, the same resource graph whose Commands run `true`;
// and, on one node, the kubelet restart itself (systemctl restart until /healthz answers ok),
// which the goal adds once per round to the floor.
import * as fs from "node:fs";
import * as os from "node:os";
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
const CORES = os.availableParallelism();
/** The CLI's own default --parallel here: 4 x the cores (pulumi up --help). */
export const DEFAULT_PARALLEL = 4 * CORES;
/**
 * A pod turns Ready when its readiness probe first runs, the DaemonSet's initialDelaySeconds after
 * it starts (kubernetesObjects.ts); kwok, playing kubelet, waits as long.
 */
const POD_READY_DELAY_MS = 10_000;
/** USER_HZ, the unit of /proc/stat (`getconf CLK_TCK`: 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;
const INOTIFY_INSTANCES = "/proc/sys/fs/inotify/max_user_instances";
const INOTIFY_INSTANCES_PER_NODE = 40;

export interface RealEngineResult {
  nodes: number;
  rounds: number;
  /** Wall time of each operation, ms, in run order; where the CPU time of each up went. */
  ours: Operations;
  floor: Operations;
  /** systemctl restart until /healthz answers, ms. */
  restart: number[];
  /** The engine's --parallel: at least twice the largest round, as the README advises. */
  parallel: number;
  /** Per node: JSON bytes of its three Commands in the checkpoint, and of their inputs there. */
  checkpointBytes: number[];
  inputBytes: number[];
  /** The whole checkpoint after our first `up` (`pulumi stack export`, compact JSON), bytes. */
  stateBytes: number;
  startMs: number;
  /** MemAvailable before the cluster and nodes started, less after: what they hold, bytes. */
  clusterMemoryBytes: number;
}

/** One program's operations, in run order. */
export interface Operations {
  /** Wall time of each `up` and `destroy`, ms. */
  up: number[];
  destroy: number[];
  /**
   * Of each `up`, the part after the DaemonSet was ready (its create completed: the guards, the
   * rounds of switches and the end of the run), ms. The part before it is mostly the same work in
   * ours and the floor (the objects, the cleanups, the pods' readiness) and varies by seconds
   * between runs; this part is where the rollout is.
   */
  afterDaemonSet: number[];
  upCpu: UpCpu[];
}

/** CPU time during one `up`, seconds. */
export interface UpCpu {
  /** The whole machine (/proc/stat). */
  machine: number;
  /** The test nodes: everything in their cgroups (sshd, the node program, kubelet restarts). */
  nodes: number;
  /**
   * The operation's own processes: the runner (the program, in the Automation API's process), the
   * CLI (the engine, which writes the whole state file after each step) and the providers.
   */
  operation: number;
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
  const restoreInotify = raiseInotifyInstances(nodes * INOTIFY_INSTANCES_PER_NODE, log);
  const availableBefore = memAvailableBytes();
  const cluster = await E2eCluster.start(nodes, { podReadyDelayMs: POD_READY_DELAY_MS }).catch(
    (error: unknown) => {
      restoreInotify();
      throw error;
    },
  );
  let ws: PulumiWorkspace | undefined;
  try {
    ws = await PulumiWorkspace.create(
      requireTools(CLUSTER_TOOLS),
      cluster.controlPlane.kubeconfigPath,
    );
    for (const stack of ["ours", "floor"]) await configureStack(ws, stack, cluster.nodes);
    const startMs = performance.now() - started;
    log(`  ${nodes} nodes and the control plane up in ${seconds(startMs)}`);
    const plan = planOf(ws);
    const parallel = Math.max(DEFAULT_PARALLEL, 2 * Math.max(...plan.map((round) => round.length)));
    const result: RealEngineResult = {
      nodes,
      rounds: plan.length,
      ours: { up: [], destroy: [], afterDaemonSet: [], upCpu: [] },
      floor: { up: [], destroy: [], afterDaemonSet: [], upCpu: [] },
      restart: [],
      parallel,
      checkpointBytes: [],
      inputBytes: [],
      stateBytes: 0,
      startMs,
      clusterMemoryBytes: availableBefore - memAvailableBytes(),
    };
    for (let r = 0; r < runs; r++) {
      // Alternate which goes first, so neither always runs on a machine the other just warmed.
      const order = r % 2 === 0 ? (["ours", "floor"] as const) : (["floor", "ours"] as const);
      for (const which of order) {
        const program = which === "floor" ? FLOOR_PROGRAM : undefined;
        const cpuBefore = upCpu(cluster.nodes);
        const up = await timed(() => ws!.operation("up", which, { parallel }, program));
        const upEndedAt = Date.now();
        const cpuAfter = upCpu(cluster.nodes);
        const checkpoint = ws.checkpoint(which);
        result[which].afterDaemonSet.push(upEndedAt - daemonSetReadyAt(checkpoint));
        result[which].upCpu.push({
          machine: cpuAfter.machine - cpuBefore.machine,
          nodes: cpuAfter.nodes - cpuBefore.nodes,
          operation: cpuAfter.operation - cpuBefore.operation,
        });
        if (which === "ours") {
          await expectDns(cluster.nodes, LOCAL_DNS_IP);
          if (r === 0) {
            perNodeCheckpoint(checkpoint, result);
            result.stateBytes = Buffer.byteLength(JSON.stringify(checkpoint));
          }
        }
        const down = await timed(() => ws!.operation("destroy", which, { parallel }, program));
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
    restoreInotify();
  }
}

/**
 * When the DaemonSet's create completed (the provider's await saw every pod available), epoch ms:
 * the engine stamps a resource's `created` as its create returns.
 */
export function daemonSetReadyAt(checkpoint: unknown): number {
  type Entry = { type: string; created?: string };
  const resources = (checkpoint as { checkpoint: { latest: { resources?: Entry[] } } }).checkpoint
    .latest.resources;
  const created = resources?.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")?.created;
  const at = created === undefined ? NaN : Date.parse(created);
  if (Number.isNaN(at))
    throw new Error("real-engine bench: no DaemonSet creation time in the state");
  return at;
}

/** MemAvailable from /proc/meminfo, bytes. */
function memAvailableBytes(): number {
  const line = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/meminfo", "utf8"));
  return Number(line?.[1] ?? 0) * 1024;
}

/**
 * Raises fs.inotify.max_user_instances to at least `needed` (each test node's systemd takes
 * dozens; Debian's default of 128 stops the fifth node's boot) and returns what puts it back.
 */
function raiseInotifyInstances(needed: number, log: (msg: string) => void): () => void {
  const before = Number(fs.readFileSync(INOTIFY_INSTANCES, "utf8"));
  if (before >= needed) return () => {};
  fs.writeFileSync(INOTIFY_INSTANCES, String(needed));
  log(`  fs.inotify.max_user_instances ${before} -> ${needed} while the nodes run`);
  return () => fs.writeFileSync(INOTIFY_INSTANCES, String(before));
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

function planOf(ws: PulumiWorkspace): unknown[][] {
  const settings = parseSettings(rawConfigFromFiles(ws.projectDir, "ours")).settings;
  return planRollout(settings.nodes, settings.rollout);
}

/** The counters UpCpu is the difference of, now. */
function upCpu(nodes: ClusterNode[]): UpCpu {
  return {
    machine: machineCpuSeconds(),
    nodes: nodes.reduce((sum, n) => sum + (n.program.node.cpuSeconds() ?? NaN), 0),
    operation: childrenCpuSeconds(),
  };
}

/**
 * CPU time of this process's children that have exited and been waited for, with theirs
 * (/proc/self/stat cutime + cstime), seconds. Only the operation's runner exits during an
 * operation: the control plane and the test nodes outlive the run.
 */
function childrenCpuSeconds(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  // Fields after the command name, from the 3rd (state): cutime and cstime are the 16th and 17th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU time the whole machine has spent busy since boot (/proc/stat: every state but idle and
 * iowait), seconds: the engine, the providers, the control plane and every test node.
 */
function machineCpuSeconds(): number {
  const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / CLOCK_TICKS_PER_SECOND;
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

/** Section 6's text for every size measured, and its summary lines and verdicts. */
export function realEngineTables(results: RealEngineResult[]): {
  markdown: string;
  summary: string;
  met: boolean;
  checkpointSummary: string;
  checkpointMet: boolean;
} {
  const sizes = results.map(sizeTables);
  const checkpoint = checkpointTable(results);
  return {
    markdown: [...sizes.map((t) => t.markdown), checkpoint.markdown].join("\n\n"),
    summary: sizes.map((t) => t.summary).join("; "),
    met: sizes.every((t) => t.met),
    checkpointSummary: checkpoint.summary,
    checkpointMet: checkpoint.met,
  };
}

function sizeTables(r: RealEngineResult): { markdown: string; summary: string; met: boolean } {
  const oursUp = summarize(r.ours.up);
  const floorUp = summarize(r.floor.up);
  const restart = summarize(r.restart);
  const floorWithRestarts = floorUp.median + r.rounds * restart.median;
  const upRatio = oursUp.median / floorWithRestarts;
  const oursDown = summarize(r.ours.destroy);
  const floorDown = summarize(r.floor.destroy);
  const downWithRestarts = floorDown.median + r.rounds * restart.median;
  const cpu = (which: "ours" | "floor", part: keyof UpCpu) =>
    summarize(r[which].upCpu.map((c) => c[part] * 1000));
  const oursCpu = cpu("ours", "machine");
  const floorCpu = cpu("floor", "machine");
  /** Ours less the floor, per node, of one part of the CPU time (medians), ms. */
  const extraPerNode = (part: keyof UpCpu) =>
    (cpu("ours", part).median - cpu("floor", part).median) / r.nodes;
  const extraCpuPerNode = extraPerNode("machine");
  const extraCpuWall = (oursCpu.median - floorCpu.median) / CORES;
  const elsewhere = extraCpuPerNode - extraPerNode("nodes") - extraPerNode("operation");
  const oursAfter = summarize(r.ours.afterDaemonSet);
  const floorAfter = summarize(r.floor.afterDaemonSet);
  const until = (o: Operations) => summarize(o.up.map((up, i) => up - o.afterDaemonSet[i]!));
  const floorAfterWithRestarts = floorAfter.median + r.rounds * restart.median;
  const afterRatio = oursAfter.median / floorAfterWithRestarts;
  const rows = [
    ["up", spread(oursUp, seconds), spread(floorUp, seconds), seconds(floorWithRestarts)],
    [
      "  of which until the DaemonSet is ready",
      spread(until(r.ours), seconds),
      spread(until(r.floor), seconds),
      "",
    ],
    [
      "  of which after it: the rounds",
      spread(oursAfter, seconds),
      spread(floorAfter, seconds),
      seconds(floorAfterWithRestarts),
    ],
    ["destroy", spread(oursDown, seconds), spread(floorDown, seconds), seconds(downWithRestarts)],
  ];
  const markdown = [
    `### ${r.nodes} nodes`,
    "",
    `${r.rounds} rounds under the default rollout plan, \`--parallel ${r.parallel}\`; the cluster and ` +
      `nodes took ${seconds(r.startMs)} to start, not counted, and hold ` +
      `${(r.clusterMemoryBytes / 2 ** 30).toFixed(1)} GiB (${(r.clusterMemoryBytes / r.nodes / 2 ** 20).toFixed(0)} MiB a node). kubelet restart on a test node ` +
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
    `Until the DaemonSet is ready (its create completes when every pod is available) both do ` +
      `mostly the same work (ours also runs more of its own program first), and that part ` +
      `varies by seconds between runs. After it, the part the ` +
      `rollout takes: ours / (floor + rounds × restart) ${ratio(afterRatio)}; over its ` +
      `${r.rounds} rounds, ours ${seconds(oursAfter.median / r.rounds)} a round, the floor ` +
      `${seconds(floorAfter.median / r.rounds)} plus a restart of ${ms(restart.median)}.`,
    "",
    `The machine's CPU time during \`up\` (all ${CORES} cores: engine, providers, control plane and ` +
      `every test node): ours ${spread(oursCpu, seconds)}, the floor ${spread(floorCpu, seconds)}; ` +
      `ours spends ${ms(extraCpuPerNode)} more per node than the floor, whose Commands run \`true\`: ` +
      `${ms(extraPerNode("nodes"))} on the test nodes (the node program and the kubelet restart), ` +
      `${ms(extraPerNode("operation"))} in the operation's own processes (the program, the engine, ` +
      `which writes the whole state file after every step, and the providers) and ` +
      `${ms(elsewhere)} elsewhere (the control plane, the harness that plays kubelet). ` +
      `Here every test node shares these ${CORES} cores; on a ` +
      `fleet each node spends its part on its own CPU. Spread over the ${CORES} cores, that is ` +
      `${seconds(extraCpuWall)} of the ${seconds(oursUp.median - floorUp.median)} that ours takes longer.`,
  ].join("\n");
  return {
    markdown,
    summary: `${r.nodes} nodes: up ${seconds(oursUp.median)} against ${seconds(floorWithRestarts)} (${ratio(upRatio)})`,
    met: upRatio <= REAL_ENGINE_GOAL,
  };
}

/**
 * The checkpoint per node, two ways: each node's own resources (its three Commands), and what
 * one more node adds to the whole checkpoint between two fleet sizes (its Commands, its share of
 * the round gates, its entries in the stack outputs). The goal is judged on the second, between
 * the two largest sizes, against the inputs its Commands store.
 */
function checkpointTable(results: RealEngineResult[]): {
  markdown: string;
  summary: string;
  met: boolean;
} {
  const sorted = [...results].sort((a, b) => a.nodes - b.nodes);
  const inputs = summarize(sorted.flatMap((r) => r.inputBytes)).median;
  const own = sorted.map((r) => {
    const cp = summarize(r.checkpointBytes);
    const worst = Math.max(...r.checkpointBytes.map((bytes, i) => bytes / r.inputBytes[i]!));
    return [
      `${r.nodes}`,
      spread(cp, bytesText),
      spread(summarize(r.inputBytes), bytesText),
      ratio(worst),
      bytesText(r.stateBytes),
    ];
  });
  const marginal = sorted.slice(1).map((r, i) => {
    const before = sorted[i]!;
    const perNode = (r.stateBytes - before.stateBytes) / (r.nodes - before.nodes);
    return { from: before.nodes, to: r.nodes, perNode, ratio: perNode / inputs };
  });
  const judged = marginal.at(-1);
  const met = judged !== undefined && judged.ratio <= CHECKPOINT_GOAL;
  const markdown = [
    "### Checkpoint per node",
    "",
    "The checkpoint after our first `up` of each size (`pulumi stack export`, compact JSON; the " +
      "connection encrypted). Per node, its own resources: its switch, guard and cleanup, inputs " +
      "and outputs; their inputs alone are what the goal compares with.",
    "",
    table(
      ["nodes", "a node's three Commands", "their inputs", "ratio, worst node", "whole checkpoint"],
      own,
    ),
    "",
    "What one more node adds to the whole checkpoint (its Commands, its share of the round " +
      "gates, its entries in the stack outputs), between two sizes, over its Commands' inputs " +
      `(median ${bytesText(inputs)}):`,
    "",
    table(
      ["sizes", "bytes per added node", `ratio (goal ≤ ${CHECKPOINT_GOAL}x)`],
      marginal.map((m) => [`${m.from} → ${m.to}`, bytesText(m.perNode), ratio(m.ratio)]),
    ),
    "",
    judged === undefined
      ? "One size only: no per-node slope."
      : `Between ${judged.from} and ${judged.to} nodes: ${ratio(judged.ratio)} (goal ≤ ` +
        `${CHECKPOINT_GOAL}x, ${verdict(met)}).`,
  ].join("\n");
  return {
    markdown,
    summary:
      judged === undefined
        ? "not measured (one size)"
        : `${ratio(judged.ratio)} the inputs (${bytesText(judged.perNode)} per node added, ` +
          `${judged.from} → ${judged.to} nodes)`,
    met,
  };
}

function bytesText(v: number): string {
  return `${v.toFixed(0)} B`;
}
