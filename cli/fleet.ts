// The fleet the CLIs (render, check) work on: the stack's `nodes`, or with discovery the cluster's
// Nodes, from a saved `kubectl get nodes -o json` or (check) from the cluster itself. Neither CLI
// has the stack's state, so nodes that left the cluster since the last `up` are not shown.
import * as fs from "node:fs";
import { clusterNodesFromList, fleetPlan } from "../components/discovery";
import type { NodeSettings, Settings } from "../components/settings";

export interface Fleet {
  nodes: NodeSettings[];
  warnings: string[];
}

/** Without discovery, the stack's `nodes`; a saved Node list is then a mistake. */
export function listedFleet(settings: Settings, nodesFrom: string | undefined): Fleet {
  if (nodesFrom !== undefined) throw new Error("--nodes-from needs nodelocaldns:discover");
  return { nodes: settings.nodes, warnings: [] };
}

/** With discovery: the Nodes in `nodesFrom` (`kubectl get nodes -o json`), planned as `up` would. */
export function discoveredFleet(settings: Settings, nodesFrom: string | undefined): Fleet {
  if (nodesFrom === undefined) {
    throw new Error(
      "nodelocaldns:discover takes the nodes from the cluster: pass --nodes-from <file> " +
        "(kubectl get nodes -o json > nodes.json)",
    );
  }
  let list: unknown;
  try {
    list = JSON.parse(fs.readFileSync(nodesFrom, "utf8"));
  } catch (err) {
    throw new Error(`--nodes-from ${nodesFrom}: ${(err as Error).message}`);
  }
  return plannedFleet(settings, list, `--nodes-from ${nodesFrom}`);
}

/** A NodeList planned against the stack's settings; `where` names its source in errors. */
export function plannedFleet(settings: Settings, list: unknown, where: string): Fleet {
  let cluster;
  try {
    cluster = clusterNodesFromList(list);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  return fleetPlan(settings.discover!, cluster, settings.nodes, []);
}
