// The check of a whole fleet: every selected node checked over SSH, at most `parallel` at once,
// each in a directory of its own under one temp dir of the run. That dir (private keys in it) is
// removed when the run ends, when the process exits, and on SIGINT/SIGTERM, which also stop every
// ssh still running.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { NodeSettings, ResolvedSettings } from "../../components/settings";
import { checkNodeOverSsh, nodeDir, type NodeReport } from "./nodeRun";
import { stopAllProcesses } from "./processes";

export interface FleetOptions {
  parallel: number;
  ssh: string;
  connectTimeoutSeconds: number;
  timeoutSeconds: number;
}

/**
 * Runs `task` on every item, at most `limit` at once; results in the items' order. After a task
 * throws, no new one starts and the first error is thrown once the running ones are done.
 */
export async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const index = next++;
      try {
        results[index] = await task(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

/** The run's temp dir (0700) and how to remove it, on every way out of the process. */
function runDirectory(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nodelocaldns-check-"));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const onSignal = (signal: NodeJS.Signals) => {
    stopAllProcesses();
    remove();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", remove);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    dir,
    remove() {
      remove();
      process.off("exit", remove);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** Checks `nodes`, reports in their order. */
export async function checkFleet(
  settings: ResolvedSettings,
  nodes: readonly NodeSettings[],
  options: FleetOptions,
): Promise<NodeReport[]> {
  const run = runDirectory();
  try {
    return await mapWithLimit(nodes, options.parallel, (node, i) =>
      checkNodeOverSsh(settings, node, {
        ssh: options.ssh,
        connectTimeoutSeconds: options.connectTimeoutSeconds,
        timeoutSeconds: options.timeoutSeconds,
        dir: nodeDir(run.dir, i),
      }),
    );
  } finally {
    stopAllProcesses();
    run.remove();
  }
}
