// npm run render -- --stack <name> --out <dir> [--cluster-dns-ip <ip>] [--project-dir <dir>]
//
// Offline: reads Pulumi.yaml and Pulumi.<stack>.yaml itself (no Pulumi CLI, no cluster, no secret
// decryption) and writes what `pulumi up` would apply: <out>/manifests.yaml and
// <out>/nodes/<node>/{create,update,delete}.sh. Bad config writes nothing.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, parseSettings } from "../components/config";
import { renderStack } from "../components/render";
import { rawConfigFromFiles } from "../components/stackConfig";

const USAGE =
  "usage: npm run render -- --stack <name> --out <dir> [--cluster-dns-ip <ip>] [--project-dir <dir>]";

export function main(argv: string[]): number {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        stack: { type: "string" },
        out: { type: "string" },
        "cluster-dns-ip": { type: "string" },
        "project-dir": { type: "string", default: "." },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.stack === undefined || args.out === undefined) {
    console.error(USAGE);
    return 2;
  }
  try {
    const raw = rawConfigFromFiles(args["project-dir"] ?? ".", args.stack);
    const fromFlag = args["cluster-dns-ip"];
    if (fromFlag !== undefined) {
      if (raw.values.clusterDnsIp !== undefined && raw.values.clusterDnsIp !== fromFlag) {
        throw new Error(
          `--cluster-dns-ip ${fromFlag} contradicts nodelocaldns:clusterDnsIp ${String(raw.values.clusterDnsIp)} in the stack config`,
        );
      }
      raw.values.clusterDnsIp = fromFlag;
    }
    const { settings, warnings } = parseSettings(raw);
    warnings.forEach((w) => console.error(`warning: ${w}`));
    const clusterDnsIp = settings.clusterDnsIp;
    if (clusterDnsIp === undefined) {
      throw new Error(
        "the kube-dns ClusterIP is unknown offline: set nodelocaldns:clusterDnsIp or pass --cluster-dns-ip <ip> " +
          "(kubectl -n kube-system get svc kube-dns -o jsonpath='{.spec.clusterIP}')",
      );
    }
    const files = renderStack({ ...settings, clusterDnsIp });
    for (const file of files) {
      const target = path.join(args.out, file.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, file.content, { mode: file.mode });
      fs.chmodSync(target, file.mode);
    }
    console.log(`wrote ${files.length} files to ${args.out}`);
    return 0;
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : `render: ${(err as Error).message}`);
    return 1;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
