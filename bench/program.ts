// Section 1: program cost under the mock runtime, ours against the SDK floor. Every run is a fresh
// child process (bench/programWorker.ts); ours and floor runs alternate, so drift on the machine
// hits both alike, and every ratio is taken between runs of this same invocation.
import * as fs from "node:fs";
import * as path from "node:path";
import { nodeLocalDnsObjects } from "../components/kubernetesObjects";
import { nodeCommandText, nodeScriptParams } from "../components/nodeCommand";
import {
  renderCleanupProgram,
  renderGuardProgram,
  renderSwitchLauncher,
} from "../components/nodeScript";
import { benchSettings } from "./benchSettings";
import { runWorker } from "./child";
import { FloorShape, ProgramMode, WorkerResult } from "./programProtocol";
import { mib, ms, ratio, spread, summarize, table, verdict } from "./stats";

export interface ProgramRun extends WorkerResult {
  /** Whole process, spawn to exit, measured by the parent. */
  processMs: number;
}

export interface ProgramSize {
  nodes: number;
  ours: ProgramRun[];
  floor: ProgramRun[];
}

/** The floor's inputs: the sizes and texts of what our program registers for N nodes. */
export function floorShape(nodes: number): FloorShape {
  const s = benchSettings(nodes);
  const o = nodeLocalDnsObjects(s);
  return {
    nodes,
    batchSize: s.rollout.batchSize ?? 5,
    objects: {
      serviceAccount: { metadata: o.serviceAccount.metadata },
      upstreamService: { metadata: o.upstreamService.metadata, spec: o.upstreamService.spec },
      configMap: { metadata: o.configMap.metadata, data: o.configMap.data },
      nodeProgramConfigMap: {
        metadata: o.nodeProgramConfigMap.metadata,
        data: o.nodeProgramConfigMap.data,
      },
      daemonSet: { metadata: o.daemonSet.metadata, spec: o.daemonSet.spec },
      metricsService: { metadata: o.metricsService.metadata, spec: o.metricsService.spec },
    },
    stdinLengths: s.nodes.map((n) => renderSwitchLauncher(nodeScriptParams(s, n)).length),
    guardStdinLengths: s.nodes.map((n) => renderGuardProgram(nodeScriptParams(s, n)).length),
    cleanupStdinLengths: s.nodes.map((n) => renderCleanupProgram(nodeScriptParams(s, n)).length),
    commandTexts: {
      create: nodeCommandText(s.nodes[0]!, "create"),
      update: nodeCommandText(s.nodes[0]!, "update"),
      delete: nodeCommandText(s.nodes[0]!, "delete"),
    },
  };
}

async function runProgram(
  mode: ProgramMode,
  nodes: number,
  shapeFile: string,
): Promise<ProgramRun> {
  const { result, ms: processMs } = await runWorker<WorkerResult>("programWorker.ts", [
    mode,
    String(nodes),
    shapeFile,
  ]);
  return { ...result, processMs };
}

export async function measurePrograms(
  sizes: readonly number[],
  runs: number,
  tmpDir: string,
  log: (msg: string) => void,
): Promise<ProgramSize[]> {
  const shapes = new Map<number, string>();
  for (const nodes of sizes) {
    const file = path.join(tmpDir, `shape-${nodes}.json`);
    fs.writeFileSync(file, JSON.stringify(floorShape(nodes)));
    shapes.set(nodes, file);
  }
  // One warm-up of each mode (tsx's transform cache, the OS page cache), not reported.
  await runProgram("ours", sizes[0]!, shapes.get(sizes[0]!)!);
  await runProgram("floor", sizes[0]!, shapes.get(sizes[0]!)!);
  const results: ProgramSize[] = sizes.map((nodes) => ({ nodes, ours: [], floor: [] }));
  for (let r = 0; r < runs; r++) {
    for (const size of results) {
      // Alternate which mode goes first, so neither always runs right after the other.
      const order: ProgramMode[] = r % 2 === 0 ? ["ours", "floor"] : ["floor", "ours"];
      for (const mode of order) {
        const run = await runProgram(mode, size.nodes, shapes.get(size.nodes)!);
        size[mode].push(run);
      }
      log(`  program run ${r + 1}/${runs}, ${size.nodes} nodes`);
    }
  }
  return results;
}

interface Metric {
  label: string;
  /** The goals are on the whole program's wall time and peak memory. */
  goal: boolean;
  /** Shown in the growth table (start-up is a constant, not a cost that grows). */
  growth: boolean;
  /** Same as another row for the floor (it loads none of our modules). */
  oursOnly?: boolean;
  pick: (r: ProgramRun) => number;
  fmt: (v: number) => string;
}

const METRICS: Metric[] = [
  {
    label: "whole process wall time",
    goal: true,
    growth: true,
    pick: (r) => r.processMs,
    fmt: ms,
  },
  {
    label: "  of which start-up and loading the SDK, before the program",
    goal: false,
    growth: false,
    pick: (r) => r.setupMs,
    fmt: ms,
  },
  {
    label: "program only (in-process)",
    goal: false,
    growth: true,
    pick: (r) => r.programMs,
    fmt: ms,
  },
  {
    label: "program only, without loading our modules",
    goal: false,
    growth: true,
    oursOnly: true,
    pick: (r) => r.programMs - r.loadMs,
    fmt: ms,
  },
  { label: "peak RSS", goal: true, growth: true, pick: (r) => r.maxRssBytes, fmt: mib },
];

export interface ProgramVerdicts {
  ratioMet: boolean;
  linearMet: boolean;
  /** One line each for the summary table. */
  ratioSummary: string;
  linearSummary: string;
}

export function programTables(results: ProgramSize[]): { markdown: string } & ProgramVerdicts {
  const median = (runs: ProgramRun[], m: Metric) => summarize(runs.map(m.pick)).median;
  const rows: string[][] = [];
  let ratioMet = true;
  const ratioNotes = new Map<string, string[]>();
  for (const size of results) {
    for (const m of METRICS) {
      const ours = summarize(size.ours.map(m.pick));
      const floor = summarize(size.floor.map(m.pick));
      const r = ours.median / floor.median;
      if (m.goal) {
        if (r > 1.3) ratioMet = false;
        ratioNotes.set(m.label, [...(ratioNotes.get(m.label) ?? []), ratio(r)]);
      }
      rows.push([
        size.nodes.toLocaleString("en"),
        m.label,
        spread(ours, m.fmt),
        m.oursOnly ? "(as above)" : spread(floor, m.fmt),
        ratio(r),
        m.goal ? verdict(r <= 1.3) : "(for reference)",
      ]);
    }
  }
  const costTable = table(
    [
      "nodes",
      "measure",
      "ours: median (min–max)",
      "SDK floor: median (min–max)",
      "ours / floor",
      "goal ≤ 1.3x",
    ],
    rows,
  );

  const growthRows: string[][] = [];
  let linearMet = true;
  const growthNotes: string[] = [];
  const s100 = results.find((s) => s.nodes === 100);
  const s1000 = results.find((s) => s.nodes === 1000);
  if (s100 !== undefined && s1000 !== undefined) {
    for (const m of METRICS.filter((x) => x.growth)) {
      for (const mode of ["ours", "floor"] as const) {
        if (mode === "floor" && m.oursOnly) continue;
        const a = median(s100[mode], m);
        const b = median(s1000[mode], m);
        const g = b / a;
        if (mode === "ours") {
          if (g > 11) linearMet = false;
          growthNotes.push(`${m.label} ${ratio(g)}`);
        }
        growthRows.push([
          m.label,
          mode === "ours" ? "ours" : "SDK floor",
          m.fmt(a),
          m.fmt(b),
          ratio(g),
          mode === "ours" ? verdict(g <= 11) : "(reference)",
        ]);
      }
    }
  }
  const growthTable = table(
    [
      "measure",
      "program",
      "100 nodes (median)",
      "1,000 nodes (median)",
      "1,000 / 100",
      "goal ≤ 11x",
    ],
    growthRows,
  );
  const sizes = results.map((s) => s.nodes.toLocaleString("en")).join(" / ");
  return {
    markdown: `${costTable}\n\nGrowth, 100 → 1,000 nodes (ours must stay ≤ 11x):\n\n${growthTable}`,
    ratioMet,
    linearMet,
    ratioSummary:
      [...ratioNotes].map(([label, r]) => `${label}: ${r.join(" / ")}`).join("; ") +
      ` (at ${sizes} nodes)`,
    linearSummary: growthNotes.join("; "),
  };
}
