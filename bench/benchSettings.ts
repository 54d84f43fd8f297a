// The benchmark cluster's settings, parsed by the program's own parser from the config the
// engine would pass (bench/fixture.ts), for the measurements that need them resolved.
import { parseSettings } from "../components/config";
import { ResolvedSettings } from "../components/settings";
import { rawConfigFromEngine } from "../components/stackConfig";
import { engineConfig } from "./fixture";

export function benchSettings(nodes: number, batchSize = 5): ResolvedSettings {
  const { config, secretKeys } = engineConfig(nodes, batchSize);
  const { settings, warnings } = parseSettings(
    rawConfigFromEngine(config, (key) => secretKeys.includes(key)),
  );
  if (warnings.length > 0) throw new Error(`unexpected config warnings: ${warnings.join("; ")}`);
  if (settings.clusterDnsIp === undefined) throw new Error("bench config has no clusterDnsIp");
  return { ...settings, clusterDnsIp: settings.clusterDnsIp };
}
