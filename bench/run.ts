// npm run bench [-- --quick]
//
// Measures what the operator of a large cluster asks about: program cost against the SDK floor,
// state per node, render time, node-side time against the write-up's manual step, rollout
// rounds, a real `pulumi up`/`destroy` against a floor on test nodes, and a real `pulumi preview`
// of 1,000 nodes against the same floor. Prints the tables and writes them to BENCHMARKS.md
// (--quick: fewer runs, prints only). Section 8 (a cache upgrade with real node-cache processes)
// is bench/cacheUpgrade.ts's, `npm run bench:cache-upgrade`: its block is kept as it is.
// Nothing here asserts a time; `npm test` has no timed assertions.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { cacheUpgradeBlock, withBlock } from "./cacheUpgrade";
import { ROOT, runWorker } from "./child";
import { measureNodeSide, nodeSideTables, OVERHEAD_GOAL_MS } from "./nodeSide";
import {
  CHECKPOINT_GOAL,
  DEFAULT_PARALLEL,
  measureRealEngine,
  REAL_ENGINE_GOAL,
  realEngineTables,
  type RealEngineResult,
} from "./realEngine";
import { measurePrograms, programTables } from "./program";
import { measurePreview, PREVIEW_GOAL, previewTables } from "./realEnginePreview";
import type { RegistrationReport } from "./registrationWorker";
import { measureRender, renderTable } from "./render";
import { roundsSummary, roundsTable } from "./rounds";
import { stateTable } from "./state";
import { ms, seconds, table, verdict } from "./stats";

const PROGRAM_SIZES = [10, 100, 1000];
const ROUND_COMBOS = ["1000x1", "1000x10", "1000x50", "100x1", "100x10", "100x50"];
/** Assumed time for a real kubelet to restart: a parameter of the estimate, not a measurement. */
const ASSUMED_RESTART_MS = 5000;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
}

function machine(loadAtStart: string): string {
  const cpus = os.cpus();
  const gib = (os.totalmem() / 1024 ** 3).toFixed(1);
  return [
    `- Date: ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC`,
    `- CPU: ${cpus[0]?.model.trim() ?? "unknown"}, ${cpus.length} cores`,
    `- Memory: ${gib} GiB`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node.js ${process.version}`,
    `- Load average (1 / 5 / 15 min): ${loadAtStart} at the start, ${load()} at the end ` +
      "(other processes on the machine are not controlled)",
  ].join("\n");
}

/** Section 6's fleet sizes (see its text for why), and the runs of each. */
const REAL_ENGINE_SIZES = [10, 50];
const REAL_ENGINE_MAX_NODES = 150;
/** Nodes in section 7's preview (the issue's fleet size), and its runs: each takes minutes here. */
const PREVIEW_NODES = 1000;
const PREVIEW_RUNS = 1;

/** Section 6 at each size in turn; a failure ends the section (and sets the exit code). */
async function measureRealEngineSizes(
  sizes: { nodes: number; runs: number }[],
): Promise<RealEngineResult[] | { skipped: string }> {
  const results: RealEngineResult[] = [];
  for (const [i, { nodes, runs }] of sizes.entries()) {
    log(
      `6/7 real engine, ${nodes} nodes (${runs} runs each of ours and the floor; size ${i + 1} of ${sizes.length})`,
    );
    try {
      const outcome = await measureRealEngine(nodes, runs, log);
      if ("skipped" in outcome) return outcome;
      results.push(outcome);
    } catch (err) {
      process.exitCode = 1;
      log(`real engine failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return {
        skipped: `failed at ${nodes} nodes: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`,
      };
    }
  }
  return results;
}

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes("--quick");
  const programRuns = quick ? 2 : 7;
  const nodeRuns = quick ? 4 : 20;
  const engineRuns = quick ? 1 : 3;
  const loadAtStart = load();
  const started = performance.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nodelocaldns-bench-"));
  try {
    log(`1/7 program cost (${programRuns} runs each of ours and the floor per size)`);
    const programs = await measurePrograms(PROGRAM_SIZES, programRuns, tmp, log);
    log("2/7 + 5/7 state per node and rollout rounds (mock registrations)");
    const { result: reg } = await runWorker<RegistrationReport>(
      "registrationWorker.ts",
      ROUND_COMBOS,
    );
    log("3/7 render of 1,000 nodes");
    const render = measureRender(1000, quick ? 2 : 5, tmp);
    log(`4/7 node side (${nodeRuns} runs through a test node)`);
    const nodeSide = await measureNodeSide(nodeRuns, 2, log).catch((err: unknown) => {
      // Reported in the table and by the exit code, after the other sections are written.
      process.exitCode = 1;
      log(`node side failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return {
        skipped: `failed: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`,
      };
    });

    const engineSizes = quick
      ? [{ nodes: 10, runs: 1 }]
      : [
          ...REAL_ENGINE_SIZES.map((nodes) => ({ nodes, runs: engineRuns })),
          { nodes: REAL_ENGINE_MAX_NODES, runs: 1 },
        ];
    const engine = await measureRealEngineSizes(engineSizes);

    log(
      `7/7 real engine, preview of ${PREVIEW_NODES.toLocaleString("en-US")} nodes (${PREVIEW_RUNS} run each)`,
    );
    const preview = await measurePreview(PREVIEW_NODES, PREVIEW_RUNS, log).catch((err: unknown) => {
      process.exitCode = 1;
      log(`preview failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return {
        skipped: `failed: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`,
      };
    });

    const p = programTables(programs);
    const st = stateTable(reg.state);
    const rn = renderTable(render);
    const ns = "skipped" in nodeSide ? undefined : nodeSideTables(nodeSide);
    const rounds = roundsTable(reg.rounds, {
      createMs: ns?.createMs,
      deleteMs: ns?.deleteMs,
      restartMs: ASSUMED_RESTART_MS,
    });
    const en = "skipped" in engine ? undefined : realEngineTables(engine);
    const pv = "skipped" in preview ? undefined : previewTables(preview);
    const elapsed = performance.now() - started;

    const summary = table(
      ["goal", "result", "verdict"],
      [
        [
          "1. program ≤ 1.3x the SDK floor (whole-process wall time and peak RSS, 10/100/1,000 nodes)",
          p.ratioSummary,
          verdict(p.ratioMet),
        ],
        ["1. linear: cost(1,000) ≤ 11x cost(100)", p.linearSummary, verdict(p.linearMet)],
        ["2. registered inputs ≤ 16 KiB per node", st.summary, verdict(st.met)],
        ["3. render of 1,000 nodes < 2 s", rn.summary, verdict(rn.met)],
        [
          `4. node-side time ≤ ${OVERHEAD_GOAL_MS} ms more than the write-up's sed + restart per node, with kubelet healthy at once (ours waits for the new kubelet's healthz and checks its value; the write-up does not wait; net of the stand-in kubelet's own start)`,
          ns === undefined ? "not measured" : `${ms(ns.overheadMs)}`,
          ns === undefined ? verdict(undefined) : verdict(ns.overheadMet),
        ],
        ["5. rollout rounds (sequential)", roundsSummary(reg.rounds), "(no goal; see section 5)"],
        [
          `6. real \`pulumi up\` ≤ ${REAL_ENGINE_GOAL}x the floor (same engine and graph, Commands that do nothing) + rounds × kubelet restart`,
          en?.summary ?? "not measured",
          verdict(en?.met),
        ],
        [
          `6. checkpoint per node ≤ ${CHECKPOINT_GOAL}x its registered inputs`,
          en?.checkpointSummary ?? "not measured",
          verdict(en?.checkpointMet),
        ],
        [
          `7. real \`pulumi preview\` of 1,000 nodes ≤ ${PREVIEW_GOAL}x the same graph without our logic`,
          pv?.summary ?? "not measured",
          verdict(pv?.met),
        ],
      ],
    );

    const nodeSection =
      ns === undefined
        ? `Not measured: ${"skipped" in nodeSide ? nodeSide.skipped : ""}`
        : ns.markdown;
    const markdown = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts); rerun it to refresh this file (about ${seconds(elapsed)} here).
Figures are medians with (min–max) over the runs of one invocation; every ratio compares runs of
the same invocation, interleaved. \`npm test\` asserts no times.

${machine(loadAtStart)}

## Summary

${summary}

## 1. Program cost under the mock runtime

Each run is a fresh \`node --import tsx bench/programWorker.ts\` process; ${programRuns} runs of each
program per size, ours and floor alternating (after one unreported warm-up of each). Both set up
Pulumi's mock runtime with the stack config of N nodes as the engine passes it (JSON text, one
secret key) and load the SDK and its resource modules.

- **ours**: the real program, \`index.ts\`: reads and validates the config (parseSettings), renders
  the objects and each node's switch launcher, revert guard and cleanup, registers the component,
  6 Kubernetes objects and 3 Commands per node (the switches in batches, each depending on the one
  before).
- **SDK floor**: the same kinds, number and options of resources (a ComponentResource, a
  ServiceAccount, 2 Services, 2 ConfigMaps, a DaemonSet, 3N remote.Command with the switches
  chained in the same batches, secret connections), with inputs of the same size (the Kubernetes objects' inputs as
  ours registers them; stdin and command texts of the same lengths), and none of our logic.

"Whole process" is spawn to exit, measured by the parent: Node start-up, tsx, loading the SDK, the
program and the drain of every registration; nothing subtracted. "Program only" is in-process,
from before the program runs to the SDK's RPC queue drained (every registration answered); for
ours it includes loading our modules (components/ and the \`yaml\` package), also shown without.
This is the program's share of a preview; the engine and providers are not part of it.

${p.markdown}

## 2. State per node

Registered inputs of each node's Command (create, update and delete texts, stdin, triggers, and
the connection with its private key removed), as JSON, over the ${reg.state.nodes.toLocaleString("en")} Commands of a
${reg.state.nodes.toLocaleString("en")}-node stack. The component already sends the node program once on stdin with short
\`sudo -n bash -s create|update|delete\` commands. The checkpoint also stores each resource's
outputs, which for remote.Command repeat these inputs and add stdout/stderr, so the file on disk
holds roughly twice this per node.

${st.markdown}

## 3. Render of a 1,000-node stack

${rn.markdown}

## 4. Node-side time through real OpenSSH

One systemd test node (test/support/systemdNode.ts: real systemd 252, real sshd, the stand-in
kubelet as kubelet.service, the cache address answering DNS), TKE layout: kubelet.service reads
\`/etc/kubernetes/kubelet\`, which holds \`CLUSTER_DNS="--cluster-dns=10.96.0.10"\`. Per run,
interleaved: our create and delete (\`bash -s create|delete\`, the switch launcher on stdin, which
loads the node program from the node-program volume as kubelet writes it), the
write-up's manual step (its sed line + \`systemctl restart kubelet\`) and its revert, sent the same
way, and an empty \`bash -s\` (the connection floor). ${nodeRuns} runs after 2 unreported warm-up runs.

The two do different work: ours finds the source from the running kubelet, queries the cache,
writes its record ahead (flushed to disk), edits, restarts kubelet, and waits until the new
kubelet answers \`/healthz\` and runs with the new value; the write-up's step returns as soon as
\`systemctl restart\` has forked kubelet, healthy or not. The difference is what that safety
costs per node, with a kubelet that is healthy at once (the stand-in starts in a fraction of a
second; a real kubelet takes longer, which both then wait for in a rollout).

${nodeSection}

## 5. Rollout rounds

From the dependency graph the component registers under mocks: the longest chain of Commands
linked by dependencies is the number of sequential rounds (a batch waits for the whole previous
batch; within a round the engine runs Commands in parallel, up to its \`--parallel\` limit). The
DaemonSet's readiness wait comes once before the first round and is not included.
Estimates multiply rounds by the medians of section 4 (instant kubelet restart), so they assume
that the Commands of one round run side by side and each takes the median time; the engine's and
the command provider's own time per Command, and a slower node holding up its round, are not in
them. **R = ${seconds(ASSUMED_RESTART_MS)} is an assumed kubelet restart time, not a measurement**: the floor is
rounds × R, and "up with R" adds R to each measured node time (conservative: it counts our ~1 s
post-restart wait on top of R).

${rounds}

## 6. A real \`pulumi up\` and \`pulumi destroy\`

The Pulumi CLI, the kubernetes provider and the command-provider stand-in of the end-to-end suite
(built from their Go modules; the program runs through the Automation API, as in the end-to-end
tests), a local control plane with kwok Nodes, and systemd test nodes reached over SSH on loopback
with node-cache (the stand-in) run by the suite's pod runner. Ours is this project's program;
the floor (bench/realEngineFloor.ts) registers the same resource graph for the same config, with
Commands that run \`true\` and send no program: the engine, the providers, the DaemonSet's
readiness and one SSH session per Command that runs on the node (the guard, as ours, has a delete only). Goal: ours at most ${REAL_ENGINE_GOAL}x the floor plus one kubelet
restart per round. Each run is an \`up\` then a \`destroy\`, ours and the floor alternating,
on the same nodes; every node's kubelet is checked on the cache after our \`up\` and back on
kube-dns after each \`destroy\`.

Sizes: ${REAL_ENGINE_SIZES.join(" and ")} nodes, ${engineRuns} runs each, and ${REAL_ENGINE_MAX_NODES} nodes, 1 run. Each test node is a booted
systemd with sshd, the stand-in kubelet, node-cache and a kube-dns stand-in, on the same 2 cores
as the control plane and the engine. ${REAL_ENGINE_MAX_NODES} is the most this machine holds with room to spare: a test
node takes some tens of MiB (each size's figures below; the machine has ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB), the engine
and the providers take more as the fleet grows (section 7), and the boot time grows faster than
the fleet on 2 cores; beyond it the figures would measure the machine more than the program. The
rollout is the default plan (a canary, doubling, at most 10% of the nodes a round), and the CLI
runs with \`--parallel\` of at least twice the largest round, as the README advises (its own
default here is ${DEFAULT_PARALLEL}).

${en?.markdown ?? `Not measured: ${"skipped" in engine ? engine.skipped : ""}`}

## 7. A real \`pulumi preview\` of 1,000 nodes

The same engine and providers as section 6 and its control plane (the kubernetes provider
previews the objects against it), no test node: a preview runs no Command. A fresh stack of
${PREVIEW_NODES.toLocaleString("en-US")} nodes on loopback addresses, so every resource is a create; ours (index.ts) and
the floor (bench/realEngineFloor.ts, the same resource graph without our logic), ${PREVIEW_RUNS} run each:
one preview of this size takes minutes here. Whole \`preview\` wall time, through the Automation API
as in section 6, and the peak resident memory of the engine's process (\`pulumi preview\`,
sampled from /proc every half second).

${pv?.markdown ?? `Not measured: ${"skipped" in preview ? preview.skipped : ""}`}
`;
    process.stdout.write(markdown);
    if (quick) {
      log("--quick: BENCHMARKS.md not written");
    } else {
      // Section 8 is written by `npm run bench:cache-upgrade` (it needs a node-cache binary this
      // run may not have): its block is kept as it is.
      const file = path.join(ROOT, "BENCHMARKS.md");
      const kept = cacheUpgradeBlock(fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
      fs.writeFileSync(file, kept === undefined ? markdown : withBlock(markdown, kept));
      log(`wrote BENCHMARKS.md in ${seconds(performance.now() - started)}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
