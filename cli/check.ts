// npm run check -- --stack <name> [--parallel N] [--node <name>]... [--cluster-dns-ip <ip>]
//                  [--project-dir <dir>] [--pulumi <path>] [--ssh <path>] [--timeout <s>]
//
// A read-only dry run before `pulumi up`: runs the node program's `check` action on every node of
// the stack (or the --node ones), over the same SSH settings the stack's remote.Commands use, and
// prints one line per node saying what create would do there, or why it would fail, then a
// summary. Exit status 0 only when create would go through on every node checked. Config and
// secrets come from the Pulumi CLI (`pulumi config --json --show-secrets`), so bad config fails
// with the messages `pulumi up` gives. Nothing is changed on any node (check takes no lock and
// writes nothing), nothing secret is printed, and every temp file (private keys among them) is
// removed at the end, also when the run is interrupted.
import { parseArgs } from "node:util";
import { ConfigError } from "../components/config";
import { listClusterNodes } from "../components/fleetSources";
import type { NodeSettings, Settings } from "../components/settings";
import { allWouldSucceed, formatSummary } from "./check/checkOutput";
import { checkFleet } from "./check/fleet";
import {
  readEngineConfig,
  settingsFromEngineConfig,
  type EngineConfig,
} from "./check/pulumiConfig";
import { discoveredFleet, listedFleet, plannedFleet, type Fleet } from "./fleet";
import { Redactor } from "./check/redact";

const USAGE = `usage: npm run check -- --stack <name> [options]

Runs the node program's read-only check on every node of the stack over SSH, as \`pulumi up\`
would connect, and prints what create would do on each node; exit status 1 if it would fail on
any. Config and secrets come from \`pulumi config --json --show-secrets --stack <name>\`.
  --stack <name>          the stack (required)
  --node <name>           check only this node (repeatable; default: every node)
  --parallel <n>          nodes checked at once (default: 10)
  --cluster-dns-ip <ip>   the kube-dns ClusterIP, when nodelocaldns:clusterDnsIp is not set
  --nodes-from <file>     with nodelocaldns:discover, the Nodes from \`kubectl get nodes -o json\`
                          instead of the cluster (listed with the stack's kubernetes:kubeconfig
                          and kubernetes:context, else KUBECONFIG or ~/.kube/config)
  --project-dir <dir>     where Pulumi.yaml is (default: .)
  --pulumi <path>         the Pulumi CLI (default: pulumi on PATH)
  --ssh <path>            the OpenSSH client (default: ssh on PATH)
  --timeout <seconds>     the longest one node may take, connection included (default: 60)
  --help                  this text`;

const CONNECT_TIMEOUT_SECONDS = 10;

/** Exit status of bad usage, as render's. */
const USAGE_ERROR = 2;

interface CheckArgs {
  stack: string;
  nodes: string[];
  parallel: number;
  clusterDnsIp?: string;
  nodesFrom?: string;
  projectDir: string;
  pulumi: string;
  ssh: string;
  timeoutSeconds: number;
}

/** Parses argv; a string is the usage error to print. */
export function parseCheckArgs(argv: string[]): CheckArgs | "help" | string {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        stack: { type: "string" },
        node: { type: "string", multiple: true },
        parallel: { type: "string", default: "10" },
        "cluster-dns-ip": { type: "string" },
        "nodes-from": { type: "string" },
        "project-dir": { type: "string", default: "." },
        pulumi: { type: "string", default: "pulumi" },
        ssh: { type: "string", default: "ssh" },
        timeout: { type: "string", default: "60" },
        help: { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (err) {
    return (err as Error).message;
  }
  if (values.help === true) return "help";
  if (values.stack === undefined) return "--stack <name> is required";
  const parallel = wholeNumber(values.parallel, 1, 1000);
  if (parallel === undefined) return "--parallel must be a whole number from 1 to 1000";
  const timeoutSeconds = wholeNumber(values.timeout, 5, 3600);
  if (timeoutSeconds === undefined) return "--timeout must be a whole number of seconds, 5 to 3600";
  return {
    stack: values.stack,
    nodes: values.node ?? [],
    parallel,
    clusterDnsIp: values["cluster-dns-ip"],
    nodesFrom: values["nodes-from"],
    projectDir: values["project-dir"] ?? ".",
    pulumi: values.pulumi ?? "pulumi",
    ssh: values.ssh ?? "ssh",
    timeoutSeconds,
  };
}

function wholeNumber(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** The stack's nodes; with discovery, the Nodes of a saved list or of the cluster itself. */
async function checkedFleet(
  settings: Settings,
  config: EngineConfig,
  nodesFrom: string | undefined,
): Promise<Fleet> {
  if (settings.discover === undefined) return listedFleet(settings, nodesFrom);
  if (nodesFrom !== undefined) return discoveredFleet(settings, nodesFrom);
  const kube = {
    kubeconfig: config.values["kubernetes:kubeconfig"],
    context: config.values["kubernetes:context"],
  };
  return plannedFleet(settings, await listClusterNodes(kube), "the cluster's Node list");
}

function selectNodes(all: NodeSettings[], names: string[]): NodeSettings[] {
  const unknown = names.filter((name) => !all.some((node) => node.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `no node ${unknown.join(", ")} in the stack (nodes: ${all.map((n) => n.name).join(", ") || "none"})`,
    );
  }
  return names.length === 0 ? all : all.filter((node) => names.includes(node.name));
}

export async function main(argv: string[]): Promise<number> {
  const args = parseCheckArgs(argv);
  if (args === "help") {
    console.log(USAGE);
    return 0;
  }
  if (typeof args === "string") {
    console.error(`check: ${args}\n${USAGE}`);
    return USAGE_ERROR;
  }
  const redactor = new Redactor();
  redactor.add(process.env.PULUMI_CONFIG_PASSPHRASE);
  const out = (line: string) => console.log(redactor.apply(line));
  const err = (line: string) => console.error(redactor.apply(line));
  try {
    const config = await readEngineConfig(args);
    const { settings, warnings } = settingsFromEngineConfig(config, args.clusterDnsIp);
    for (const node of [...settings.nodes, settings.discover?.template]) {
      redactor.add(node?.privateKey);
      redactor.add(node?.proxy?.privateKey);
    }
    warnings.forEach((w) => err(`warning: ${w}`));
    const clusterDnsIp = settings.clusterDnsIp;
    if (clusterDnsIp === undefined) {
      throw new Error(
        "the kube-dns ClusterIP is not in the stack config: set nodelocaldns:clusterDnsIp or pass --cluster-dns-ip <ip> " +
          "(kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')",
      );
    }
    const fleet = await checkedFleet(settings, config, args.nodesFrom);
    fleet.warnings.forEach((w) => err(`warning: ${w}`));
    const nodes = selectNodes(fleet.nodes, args.nodes);
    const reports = await checkFleet({ ...settings, clusterDnsIp }, nodes, {
      parallel: args.parallel,
      ssh: args.ssh,
      connectTimeoutSeconds: CONNECT_TIMEOUT_SECONDS,
      timeoutSeconds: args.timeoutSeconds,
    });
    reports.forEach((report) => out(report.line));
    const verdicts = reports.map((report) => report.check.verdict);
    out(formatSummary(verdicts));
    return allWouldSucceed(verdicts) ? 0 : 1;
  } catch (error) {
    err(error instanceof ConfigError ? error.message : `check: ${(error as Error).message}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
