// Section 4: node-side time through real OpenSSH into a namespace test node (test/support), TKE
// env-file format. In the same run, interleaved, on the same node:
// - ours: `bash -s create` / `bash -s delete` with the node program on stdin (as the Command does);
// - the write-up's manual step: its sed line + `systemctl restart kubelet` (and its revert), sent
//   the same way, so both pay one SSH connection and one (instant) kubelet restart;
// - the connection floor: `bash -s` with nothing on stdin.
// The node's systemctl stub is given timestamps (bash's $EPOCHREALTIME on entry and exit), so each
// run splits into the restart call, the wait after it (is-active polls), and the rest.
import { performance } from "node:perf_hooks";
import { nodeScriptParams } from "../components/nodeCommand";
import { renderNodeProgram } from "../components/nodeScript";
import { startTestNode, testNodeSupport, type TestNode } from "../test/support/testNode";
import { benchSettings } from "./benchSettings";
import { CLUSTER_DNS_IP, LOCAL_DNS_IP } from "./fixture";
import { ms, ratio, spread, summarize, table, verdict } from "./stats";

export const OVERHEAD_GOAL_MS = 150;

const KUBELET_FILE = "/etc/kubernetes/kubelet";
const ORIGINAL = `CLUSTER_DNS="--cluster-dns=${CLUSTER_DNS_IP}"\n`;
const SWITCHED = `CLUSTER_DNS="--cluster-dns=${LOCAL_DNS_IP}"\n`;
const SYSTEMCTL = "/usr/bin/systemctl";
const TIMES_LOG = "/run/bench-systemctl.times";

// The write-up's step 4 and its uninstall step 1, verbatim but for the variable values.
const MANUAL_SWITCH = `NODE_LOCAL_DNS="${LOCAL_DNS_IP}"
sed -i "/CLUSTER_DNS/c\\CLUSTER_DNS=\\"--cluster-dns=\${NODE_LOCAL_DNS}\\"" ${KUBELET_FILE}
systemctl restart kubelet
`;
const MANUAL_REVERT = `DNS_CLUSTER_IP=${CLUSTER_DNS_IP}
sed -i "/CLUSTER_DNS/c\\CLUSTER_DNS=\\"--cluster-dns=\${DNS_CLUSTER_IP}\\"" ${KUBELET_FILE}
systemctl restart kubelet
`;

/** One timed SSH run: wall time, and from the stub's timestamps the restart call and the wait. */
export interface TimedRun {
  totalMs: number;
  /** `systemctl restart kubelet`, entry to exit. */
  restartMs: number;
  /** From the restart's exit to the last `is-active`'s exit (0 when there is none). */
  waitMs: number;
}

export interface NodeSideResult {
  runs: number;
  oursCreate: TimedRun[];
  oursDelete: TimedRun[];
  manualSwitch: TimedRun[];
  manualRevert: TimedRun[];
  connection: number[];
}

export type NodeSideOutcome = NodeSideResult | { skipped: string };

export async function measureNodeSide(
  runs: number,
  warmup: number,
  log: (msg: string) => void,
): Promise<NodeSideOutcome> {
  const unsupported = testNodeSupport();
  if (unsupported !== undefined) return { skipped: `test nodes unavailable: ${unsupported}` };

  const settings = benchSettings(1);
  const program = renderNodeProgram({
    ...nodeScriptParams(settings, settings.nodes[0]!),
    readyTimeoutSeconds: 5,
    kubeletTimeoutSeconds: 5,
  });
  const node = await startTestNode({ files: { [KUBELET_FILE]: ORIGINAL } });
  try {
    instrumentSystemctl(node);
    const result: NodeSideResult = {
      runs,
      oursCreate: [],
      oursDelete: [],
      manualSwitch: [],
      manualRevert: [],
      connection: [],
    };
    for (let i = 0; i < warmup + runs; i++) {
      const keep = i >= warmup;
      const create = await timed(node, "bash -s create", program, SWITCHED);
      const del = await timed(node, "bash -s delete", program, ORIGINAL);
      const manual = await timed(node, "bash -s", MANUAL_SWITCH, SWITCHED);
      const revert = await timed(node, "bash -s", MANUAL_REVERT, ORIGINAL);
      const t = performance.now();
      const nothing = await node.ssh("bash -s", "");
      const connection = performance.now() - t;
      if (nothing.code !== 0) throw new Error(`ssh floor failed: ${nothing.stderr}`);
      if (keep) {
        result.oursCreate.push(create);
        result.oursDelete.push(del);
        result.manualSwitch.push(manual);
        result.manualRevert.push(revert);
        result.connection.push(connection);
        if ((i - warmup + 1) % 5 === 0) log(`  node-side run ${i - warmup + 1}/${runs}`);
      }
    }
    return result;
  } finally {
    await node.stop();
  }
}

/** Adds entry/exit timestamps to the node's systemctl stub (inside the node only). */
function instrumentSystemctl(node: TestNode): void {
  const stub = node.readFile(SYSTEMCTL).toString("utf8");
  const marker = "set -u\n";
  if (!stub.includes(marker)) throw new Error("unexpected systemctl stub: no `set -u` line");
  const stamp =
    `__a="$*"; printf '%s B %s\\n' "$EPOCHREALTIME" "$__a" >>${TIMES_LOG}\n` +
    `trap 'printf "%s E %s\\n" "$EPOCHREALTIME" "$__a" >>${TIMES_LOG}' EXIT\n`;
  node.writeFile(SYSTEMCTL, stub.replace(marker, marker + stamp), 0o755);
  node.writeFile(TIMES_LOG, "");
}

async function timed(
  node: TestNode,
  command: string,
  stdin: string,
  expected: string,
): Promise<TimedRun> {
  node.writeFile(TIMES_LOG, "");
  const t = performance.now();
  const r = await node.ssh(command, stdin);
  const totalMs = performance.now() - t;
  if (r.code !== 0) {
    throw new Error(`${command} failed (${r.code}):\n${r.stdout}${r.stderr}`);
  }
  const file = node.readFile(KUBELET_FILE).toString("utf8");
  if (file !== expected) {
    throw new Error(`after ${command}: kubelet file is ${JSON.stringify(file)}`);
  }
  return { totalMs, ...splitTimes(node.readFile(TIMES_LOG).toString("utf8")) };
}

function splitTimes(text: string): { restartMs: number; waitMs: number } {
  const events = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const [time, edge, ...args] = l.split(" ");
      return { t: Number(time!.replace(",", ".")) * 1000, edge, call: args.join(" ") };
    });
  const begin = events.find((e) => e.edge === "B" && e.call === "restart kubelet");
  const end = events.find((e) => e.edge === "E" && e.call === "restart kubelet");
  if (begin === undefined || end === undefined) throw new Error(`no kubelet restart in:\n${text}`);
  const lastActive = events.filter((e) => e.edge === "E" && e.call === "is-active kubelet").pop();
  return {
    restartMs: end.t - begin.t,
    waitMs: lastActive === undefined ? 0 : lastActive.t - end.t,
  };
}

export interface NodeSideSummary {
  createMs: number;
  deleteMs: number;
  /** ours create − manual switch, median of the paired differences. */
  overheadMs: number;
  /** The same without our wait after the restart. */
  overheadNoWaitMs: number;
  /** The goal: our own work (without the restart and the wait after it) within budget. */
  overheadNoWaitMet: boolean;
}

export function nodeSideTables(r: NodeSideResult): { markdown: string } & NodeSideSummary {
  const s = (v: number[]) => summarize(v);
  const col = (runs: TimedRun[], f: (x: TimedRun) => number) => s(runs.map(f));
  const own = (x: TimedRun) => x.totalMs - x.restartMs - x.waitMs;
  const pair = (a: TimedRun[], b: TimedRun[], f: (x: TimedRun, y: TimedRun) => number) =>
    s(a.map((x, i) => f(x, b[i]!)));

  const conn = s(r.connection);
  const phases = (label: string, runs: TimedRun[]) => [
    [
      label,
      "total (client wall time, one SSH connection)",
      spread(
        col(runs, (x) => x.totalMs),
        ms,
      ),
    ],
    [
      "",
      "  kubelet restart call (stub: instant)",
      spread(
        col(runs, (x) => x.restartMs),
        ms,
      ),
    ],
    [
      "",
      "  wait after the restart (is-active polls)",
      spread(
        col(runs, (x) => x.waitMs),
        ms,
      ),
    ],
    ["", "  everything else (SSH + the script's own work)", spread(col(runs, own), ms)],
    [
      "",
      "  everything else minus the connection floor median",
      spread(
        col(runs, (x) => own(x) - conn.median),
        ms,
      ),
    ],
  ];
  const phaseTable = table(
    ["run", "part", "median (min–max)"],
    [
      ...phases("ours: create", r.oursCreate),
      ...phases("ours: delete", r.oursDelete),
      ...phases("manual (write-up): switch", r.manualSwitch),
      ...phases("manual (write-up): revert", r.manualRevert),
      ["connection floor", "`ssh … bash -s` with empty stdin", spread(conn, ms)],
    ],
  );

  const diff = (x: TimedRun, y: TimedRun) => x.totalMs - y.totalMs;
  const diffNoWait = (x: TimedRun, y: TimedRun) => x.totalMs - x.waitMs - (y.totalMs - y.waitMs);
  const createOver = pair(r.oursCreate, r.manualSwitch, diff);
  const deleteOver = pair(r.oursDelete, r.manualRevert, diff);
  const createOverNoWait = pair(r.oursCreate, r.manualSwitch, diffNoWait);
  const deleteOverNoWait = pair(r.oursDelete, r.manualRevert, diffNoWait);
  const med = (runs: TimedRun[]) => col(runs, (x) => x.totalMs).median;
  const goal = (v: number) => verdict(v <= OVERHEAD_GOAL_MS);
  const overheadTable = table(
    [
      "per node",
      "ours − manual (median of paired runs, min–max)",
      "ours / manual (medians)",
      "goal ≤ 150 ms",
    ],
    [
      [
        "create vs the write-up's switch, as run",
        spread(createOver, ms),
        ratio(med(r.oursCreate) / med(r.manualSwitch)),
        "(includes the wait; reference)",
      ],
      [
        "delete vs the write-up's revert, as run",
        spread(deleteOver, ms),
        ratio(med(r.oursDelete) / med(r.manualRevert)),
        "(includes the wait; reference)",
      ],
      [
        "create, without our wait after the restart",
        spread(createOverNoWait, ms),
        ratio(col(r.oursCreate, (x) => x.totalMs - x.waitMs).median / med(r.manualSwitch)),
        goal(createOverNoWait.median),
      ],
      [
        "delete, without our wait after the restart",
        spread(deleteOverNoWait, ms),
        ratio(col(r.oursDelete, (x) => x.totalMs - x.waitMs).median / med(r.manualRevert)),
        goal(deleteOverNoWait.median),
      ],
    ],
  );
  const worst = Math.max(createOver.median, deleteOver.median);
  const worstNoWait = Math.max(createOverNoWait.median, deleteOverNoWait.median);
  return {
    markdown: `${phaseTable}\n\nOverhead against the write-up's manual step (same node, same run, interleaved):\n\n${overheadTable}`,
    createMs: med(r.oursCreate),
    deleteMs: med(r.oursDelete),
    overheadMs: worst,
    overheadNoWaitMs: worstNoWait,
    overheadNoWaitMet: worstNoWait <= OVERHEAD_GOAL_MS,
  };
}
