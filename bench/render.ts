// Section 3: the offline render of a 1,000-node stack. renderStack in-process (first call, then
// warm calls), and the whole `npm run render` CLI once, from a generated stack file in a temp dir.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { stringify } from "yaml";
import { renderStack } from "../components/render";
import { benchSettings } from "./benchSettings";
import { benchNodes, CLUSTER_DNS_IP, PROJECT, SSH_USER } from "./fixture";
import { bytes, ms, spread, summarize, Summary, table, verdict } from "./stats";

export const RENDER_GOAL_MS = 2000;

export interface RenderResult {
  nodes: number;
  files: number;
  outputBytes: number;
  firstMs: number;
  warm: Summary;
  cli: { ms: number; files: number } | { error: string };
}

export function measureRender(nodes: number, warmRuns: number, tmpDir: string): RenderResult {
  const settings = benchSettings(nodes);
  let t = performance.now();
  const first = renderStack(settings);
  const firstMs = performance.now() - t;
  const warm: number[] = [];
  for (let i = 0; i < warmRuns; i++) {
    t = performance.now();
    renderStack(settings);
    warm.push(performance.now() - t);
  }
  return {
    nodes,
    files: first.length,
    outputBytes: first.reduce((sum, f) => sum + Buffer.byteLength(f.content), 0),
    firstMs,
    warm: summarize(warm),
    cli: measureRenderCli(nodes, tmpDir),
  };
}

/** `npm run render` on a generated project dir: Pulumi.yaml of this repo + a 1,000-node stack. */
function measureRenderCli(nodes: number, tmpDir: string): RenderResult["cli"] {
  const root = path.join(__dirname, "..");
  const projectDir = path.join(tmpDir, "render-project");
  const out = path.join(tmpDir, "render-out");
  fs.mkdirSync(projectDir, { recursive: true });
  fs.copyFileSync(path.join(root, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
  const key = (k: string) => `${PROJECT}:${k}`;
  const stack = {
    config: {
      [key("clusterDnsIp")]: CLUSTER_DNS_IP,
      // A secret in a stack file is ciphertext; render never decrypts it.
      [key("ssh")]: { user: SSH_USER, sudo: true, privateKey: { secure: "v1:AAAAbench" } },
      [key("nodes")]: benchNodes(nodes),
    },
  };
  fs.writeFileSync(path.join(projectDir, "Pulumi.bench.yaml"), stringify(stack));
  const t = performance.now();
  const run = spawnSync(
    "npm",
    [
      "run",
      "--silent",
      "render",
      "--",
      "--stack",
      "bench",
      "--out",
      out,
      "--project-dir",
      projectDir,
    ],
    { cwd: root, encoding: "utf8", timeout: 120_000 },
  );
  const elapsed = performance.now() - t;
  if (run.status !== 0) {
    return { error: `npm run render exited ${run.status ?? run.signal}: ${run.stderr.trim()}` };
  }
  const files = fs
    .readdirSync(out, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile());
  return { ms: elapsed, files: files.length };
}

export function renderTable(r: RenderResult): { markdown: string; met: boolean; summary: string } {
  const cliMet = "ms" in r.cli ? r.cli.ms < RENDER_GOAL_MS : undefined;
  const met = r.warm.max < RENDER_GOAL_MS && r.firstMs < RENDER_GOAL_MS && cliMet !== false;
  const rows = [
    ["renderStack, first call in the process", ms(r.firstMs), verdict(r.firstMs < RENDER_GOAL_MS)],
    ["renderStack, warm calls", spread(r.warm, ms), verdict(r.warm.max < RENDER_GOAL_MS)],
    [
      "`npm run render` CLI, whole process (npm + tsx start-up, config parse, render, write files), once",
      "ms" in r.cli ? `${ms(r.cli.ms)} (${r.cli.files} files written)` : r.cli.error,
      verdict(cliMet),
    ],
  ];
  const note = `${r.nodes.toLocaleString("en")} nodes → ${r.files} files, ${bytes(r.outputBytes)} of output.`;
  return {
    markdown: `${table(["what", "wall time", "goal < 2 s"], rows)}\n\n${note}`,
    met,
    summary:
      `renderStack ${ms(r.warm.median)} warm, ${ms(r.firstMs)} first call; ` +
      ("ms" in r.cli ? `whole \`npm run render\` ${ms(r.cli.ms)}` : "CLI failed"),
  };
}
