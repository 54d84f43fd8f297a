// npm run bench:cache-upgrade [-- --runs N]
//
// DNS through the cache while the cache is upgraded, with real node-cache processes: each run is
// bench/cacheUpgrade/upgrade.sh in network and mount namespaces of its own, replacing an old
// node-cache process with a new one the way a DaemonSet update does under one strategy, while a
// client queries the cache every 5 ms. Strategies alternate run by run. Writes its tables between
// the cache-upgrade markers of BENCHMARKS.md (bench/run.ts keeps that block as it is).
//
// Real node-cache is not served by the Go module proxy (k8s.io/dns), so this needs a binary built
// from a kubernetes/dns checkout: NODELOCALDNS_NODE_CACHE=/path/to/node-cache. Without it, or
// without root, `unshare` and `iptables`, it says so and writes nothing.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderCorefile } from "../components/corefile";
import { nodeLocalDnsObjects } from "../components/kubernetesObjects";
import { resolvedSettings } from "../test/support/settingsFixture";
import type { QueryLoopSummary } from "./cacheUpgrade/queryLoop";
import { ROOT } from "./child";
import { ms, spread, summarize, table } from "./stats";

const STRATEGIES = ["teardown", "surge", "surge-teardown", "reload"] as const;
type Strategy = (typeof STRATEGIES)[number];

const STRATEGY_TEXT: Record<Strategy, string> = {
  teardown: "the upstream manifest's (and this project's before): old stopped, then new started",
  surge: "maxSurge + `-skipteardown` (this project): new started beside old, then old stopped",
  "surge-teardown": "maxSurge without `-skipteardown`: new started beside old, then old stopped",
  reload:
    "a Corefile change (this project's `-reloadwithsignal`): the same process reloads in place",
};

const RUN_TIMEOUT_MS = 90_000;
const SCRIPT = path.join(__dirname, "cacheUpgrade", "upgrade.sh");
const QUERY_LOOP = path.join(__dirname, "cacheUpgrade", "queryLoop.ts");
const BENCHMARKS = path.join(ROOT, "BENCHMARKS.md");
const BLOCK_START = "<!-- cache-upgrade:start -->";
const BLOCK_END = "<!-- cache-upgrade:end -->";

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Why this machine cannot run the measurement, or undefined. */
function missing(nodeCache: string | undefined): string | undefined {
  if (nodeCache === undefined) {
    return "NODELOCALDNS_NODE_CACHE is not set (the path of a node-cache binary built from kubernetes/dns)";
  }
  if (!fs.existsSync(nodeCache)) return `NODELOCALDNS_NODE_CACHE: no file at ${nodeCache}`;
  if (process.getuid?.() !== 0) return "needs root (network namespaces, iptables)";
  for (const tool of ["unshare", "iptables", "ip"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `needs ${tool}`;
  }
  return undefined;
}

/**
 * The container args as the DaemonSet renders them, each file under @DIR@ (upgrade.sh's), without
 * -skipteardown, which upgrade.sh adds by strategy.
 */
function nodeCacheArgs(): string[] {
  const ds = nodeLocalDnsObjects(resolvedSettings()).daemonSet as unknown as {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  return ds.spec.template.spec.containers[0]!.args.flatMap((arg) =>
    arg === "-skipteardown" ? [] : [arg.startsWith("/") ? `@DIR@/${path.basename(arg)}` : arg],
  );
}

interface UpgradeRun {
  queries: QueryLoopSummary;
  /**
   * From the new process's start to CoreDNS's banner (its servers listen), or from the Corefile's
   * change to CoreDNS's "Reloading complete".
   */
  newStartMs: number;
}

function runOnce(strategy: Strategy, nodeCache: string, corefile: string): UpgradeRun {
  const s = resolvedSettings();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "nodelocaldns-upgrade-"));
  try {
    const r = spawnSync(
      "unshare",
      [
        ...["--net", "--mount", "--propagation", "private", "--kill-child", "--"],
        ...["bash", SCRIPT, strategy, work, nodeCache, process.execPath, QUERY_LOOP, corefile],
        ...[s.localDnsIp, s.clusterDnsIp, String(s.healthPort), ...nodeCacheArgs()],
      ],
      { cwd: ROOT, encoding: "utf8", timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL" },
    );
    if (r.status !== 0) {
      throw new Error(
        `upgrade.sh ${strategy}: exit ${r.status ?? r.signal}\n${r.stderr.slice(-3000)}`,
      );
    }
    return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as UpgradeRun;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function markdown(
  results: Record<Strategy, UpgradeRun[]>,
  runs: number,
  nodeCache: string,
): string {
  const rows = STRATEGIES.map((strategy) => {
    const r = results[strategy].map((run) => run.queries);
    const failed = summarize(r.map((x) => x.failed));
    const gap = summarize(r.map((x) => x.longestGapMs));
    const sent = summarize(r.map((x) => x.sent));
    const start = summarize(results[strategy].map((run) => run.newStartMs));
    return [
      `\`${strategy}\`: ${STRATEGY_TEXT[strategy]}`,
      `${failed.median} (${failed.min}–${failed.max})`,
      `${r.filter((x) => x.failed === 0).length} of ${r.length}`,
      spread(gap, ms),
      spread(start, ms),
      String(sent.median),
    ];
  });
  // node-cache has no version flag: it names its version first, then fails on the missing -localip.
  const probe = spawnSync(nodeCache, [], { encoding: "utf8", timeout: 10_000 });
  const version =
    /Starting node-cache image: (\S+)/.exec(probe.stdout + probe.stderr)?.[1] ?? "unknown";
  return `${BLOCK_START}
## 8. Cache upgrade: DNS while node-cache is replaced

Written by \`npm run bench:cache-upgrade\` (bench/cacheUpgrade.ts) on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${runs} runs
per strategy, interleaved. Real node-cache processes (version ${version}, built from a
kubernetes/dns checkout: the Go module proxy does not serve k8s.io/dns) with the Corefile this
project renders, in network and mount namespaces of their own; kube-dns is another node-cache
process answering the cluster zone (TTL 1 s). A client sends an A query to the cache every 5 ms
over UDP; a query not answered within 1 s, or answered with an error, failed. The longest gap is
the longest time between two answered queries' sending with none answered between. Rerun:
\`NODELOCALDNS_NODE_CACHE=/path/to/node-cache npm run bench:cache-upgrade\` (as root, with
\`iptables\`; README "Cache upgrades").

The kernel here has no dummy link driver: the \`nodelocaldns\` interface is a bridge made just
before each node-cache process starts, which node-cache adopts (and deletes on teardown). In the
\`teardown\` strategy the new process starts as soon as the old one exited; on a node, kubelet
starts the new pod later (seconds), so that gap is a lower bound. In \`surge-teardown\` the old
process's teardown deletes the interface under the new one; node-cache adds it back at its next
sync (every 60 s by default), which this kernel cannot, so the failures run to the end of the run.
In \`reload\` the Corefile (a copy per run, standing for the ConfigMap's volume) gets a longer
success TTL; node-cache finds the change at its next file sync (every 10 s) and CoreDNS reloads
in the same process. "Change in effect after": from the new process's start to CoreDNS's start
banner (it listens), or from the Corefile's change to CoreDNS's "Reloading complete".

${table(
  [
    "strategy",
    "failed queries: median (min–max)",
    "runs with no failed query",
    "longest gap: median (min–max)",
    "change in effect after: median (min–max)",
    "queries per run",
  ],
  rows,
)}
${BLOCK_END}`;
}

/** The cache-upgrade block of a BENCHMARKS.md text, markers included, if it has one. */
export function cacheUpgradeBlock(text: string): string | undefined {
  const start = text.indexOf(BLOCK_START);
  const end = text.indexOf(BLOCK_END);
  return start === -1 || end === -1 ? undefined : text.slice(start, end + BLOCK_END.length);
}

/** BENCHMARKS.md with its cache-upgrade block replaced (or appended). */
export function withBlock(text: string, block: string): string {
  const start = text.indexOf(BLOCK_START);
  const end = text.indexOf(BLOCK_END);
  if (start === -1 || end === -1) return `${text.trimEnd()}\n\n${block}\n`;
  return text.slice(0, start) + block + text.slice(end + BLOCK_END.length);
}

function main(argv: string[]): void {
  const runsAt = argv.indexOf("--runs");
  const runs = runsAt === -1 ? 10 : Number(argv[runsAt + 1]);
  const nodeCache = process.env.NODELOCALDNS_NODE_CACHE;
  const why = missing(nodeCache);
  if (why !== undefined) {
    log(`cache upgrade: not measured: ${why}`);
    process.exitCode = 1;
    return;
  }
  const corefile = path.join(
    fs.mkdtempSync(path.join(os.tmpdir(), "nodelocaldns-corefile-")),
    "Corefile.base",
  );
  fs.writeFileSync(corefile, renderCorefile(resolvedSettings()));
  const results: Record<Strategy, UpgradeRun[]> = {
    reload: [],
    teardown: [],
    surge: [],
    "surge-teardown": [],
  };
  for (let run = 1; run <= runs; run++) {
    for (const strategy of STRATEGIES) {
      const r = runOnce(strategy, nodeCache!, corefile);
      log(`run ${run}/${runs} ${strategy}: ${JSON.stringify(r)}`);
      results[strategy].push(r);
    }
  }
  fs.rmSync(path.dirname(corefile), { recursive: true, force: true });
  const block = markdown(results, runs, nodeCache!);
  process.stdout.write(`${block}\n`);
  if (!argv.includes("--print-only")) {
    fs.writeFileSync(BENCHMARKS, withBlock(fs.readFileSync(BENCHMARKS, "utf8"), block));
  }
}

if (require.main === module) main(process.argv.slice(2));
