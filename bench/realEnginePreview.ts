// Section 7: `pulumi preview` of a 1,000-node stack under the real engine: the CLI and providers of
// the end-to-end suite and its local control plane (the kubernetes provider previews against it),
// a fresh stack each time, so that every resource is a create. No node is contacted: a preview
// runs no Command. In the same run, alternating:
// - ours: this project's index.ts;
// - the floor: bench/realEngineFloor.ts, the same resource graph with none of our logic.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { E2eCluster, KUBE_DNS_IP } from "../test/e2e/pulumi/cluster";
import { CLUSTER_TOOLS, clusterTestOptions } from "../test/e2e/pulumi/tools";
import { PulumiWorkspace } from "../test/e2e/pulumi/workspace";
import { requireTools } from "../test/e2e/support/toolchain";
import { ok } from "./realEngine";
import { ratio, seconds, spread, summarize, table, verdict } from "./stats";

export const PREVIEW_GOAL = 1.3;
const FLOOR_PROGRAM = path.join(__dirname, "realEngineFloor.ts");

export interface PreviewResult {
  nodes: number;
  /** Wall time of each preview, ms, in run order. */
  ours: number[];
  floor: number[];
  /** Peak RSS of the engine's process (`pulumi preview`) in each preview, bytes. */
  engineRss: { ours: number[]; floor: number[] };
  /** Resources the engine planned to create, per program (the same for every run). */
  creates: { ours: number; floor: number };
}

export type PreviewOutcome = PreviewResult | { skipped: string };

export async function measurePreview(
  nodes: number,
  runs: number,
  log: (msg: string) => void,
): Promise<PreviewOutcome> {
  const skip = clusterTestOptions().skip;
  if (skip !== undefined) return { skipped: skip };
  // Only the control plane: no test node is needed, since a preview runs no Command.
  const cluster = await E2eCluster.start(0);
  let ws: PulumiWorkspace | undefined;
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-bench-key-"));
  try {
    ws = await PulumiWorkspace.create(
      requireTools(CLUSTER_TOOLS),
      cluster.controlPlane.kubeconfigPath,
    );
    const privateKey = generateKey(keyDir);
    const result: PreviewResult = {
      nodes,
      ours: [],
      floor: [],
      engineRss: { ours: [], floor: [] },
      creates: { ours: 0, floor: 0 },
    };
    for (const stack of ["ours", "floor"] as const)
      await configureStack(ws, stack, nodes, privateKey);
    for (let r = 0; r < runs; r++) {
      const order = r % 2 === 0 ? (["ours", "floor"] as const) : (["floor", "ours"] as const);
      for (const which of order) {
        const sampler = new PeakRss("preview");
        const t = performance.now();
        const preview = await ws
          .operation("preview", which, {}, which === "floor" ? FLOOR_PROGRAM : undefined)
          .finally(() => sampler.stop());
        const took = performance.now() - t;
        result.engineRss[which].push(sampler.peak);
        if (!preview.ok) throw new Error(`preview of ${which}: ${preview.error ?? "failed"}`);
        result[which].push(took);
        result.creates[which] = preview.changeSummary?.create ?? 0;
        log(`  run ${r + 1}/${runs} ${which}: preview ${seconds(took)}`);
      }
    }
    return result;
  } finally {
    ws?.remove();
    fs.rmSync(keyDir, { recursive: true, force: true });
    await cluster.stop();
  }
}

/** The largest VmRSS seen, every 500 ms, of the processes running `pulumi <operation>`. */
class PeakRss {
  peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(operation: string) {
    this.timer = setInterval(() => {
      for (const pid of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
        try {
          const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
          if (path.basename(argv[0] ?? "") !== "pulumi" || argv[1] !== operation) continue;
          const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
          if (rss !== null) this.peak = Math.max(this.peak, Number(rss[1]) * 1024);
        } catch {
          // The process ended between the listing and the read.
        }
      }
    }, 500);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** An ed25519 key for the stack's ssh.privateKey: config needs one; nothing dials with it. */
function generateKey(dir: string): string {
  const file = path.join(dir, "id_ed25519");
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return fs.readFileSync(file, "utf8");
}

/**
 * N nodes on loopback addresses (never dialled: a preview runs no Command), one shared key, the
 * default rollout plan.
 */
async function configureStack(ws: PulumiWorkspace, stack: string, nodes: number, key: string) {
  ok(await ws.cli(["stack", "init", stack]));
  const args = ["config", "set-all", "--path", "--stack", stack];
  args.push("--plaintext", `clusterDnsIp=${KUBE_DNS_IP}`, "--plaintext", "ssh.user=root");
  for (let i = 0; i < nodes; i++) {
    const host = `127.1.${i >> 8}.${(i & 255) + 1}`;
    args.push(
      "--plaintext",
      `nodes[${i}].name=node-${i}`,
      "--plaintext",
      `nodes[${i}].host=${host}`,
    );
  }
  args.push("--secret", `ssh.privateKey=${key}`);
  ok(await ws.cli(args));
}

export function previewTables(r: PreviewResult): {
  markdown: string;
  summary: string;
  met: boolean;
} {
  const ours = summarize(r.ours);
  const floor = summarize(r.floor);
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const previewRatio = ours.median / floor.median;
  const markdown = [
    table(
      [
        "program",
        `preview of ${r.nodes.toLocaleString("en-US")} nodes: median (min–max)`,
        "engine's peak RSS",
        "resources to create",
      ],
      [
        ["ours", spread(ours, seconds), mib(Math.max(...r.engineRss.ours)), String(r.creates.ours)],
        [
          "floor",
          spread(floor, seconds),
          mib(Math.max(...r.engineRss.floor)),
          String(r.creates.floor),
        ],
      ],
    ),
    "",
    `Ours / floor: ${ratio(previewRatio)} (goal ≤ ${PREVIEW_GOAL}x, ${verdict(previewRatio <= PREVIEW_GOAL)}).`,
  ].join("\n");
  return {
    markdown,
    summary: `${r.nodes.toLocaleString("en-US")} nodes: ${seconds(ours.median)} against ${seconds(floor.median)} (${ratio(previewRatio)})`,
    met: previewRatio <= PREVIEW_GOAL,
  };
}
