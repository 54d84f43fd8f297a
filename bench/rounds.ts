// Section 5: rollout rounds, read from the dependency graph the component registers. A Command
// can start only when every resource it depends on is done, so the longest dependency chain among
// Commands is the number of sequential rounds (the engine runs the rest of a round in parallel,
// up to its --parallel limit). A round's gate (a Stash between two rounds) runs nothing: the
// chain passes through it without counting it.
import type { Registration } from "../test/support/mockRuntime";
import { ms, ratio, seconds, table } from "./stats";

const COMMAND = "command:remote:Command";
const GATE = "pulumi:index:Stash";

/** Length of the longest chain of Commands linked by dependencies, through the round gates. */
export function longestCommandChain(regs: readonly Registration[]): number {
  // Kubelet switches only: a revert guard runs alongside its node's switch, not as a round, and a
  // cleanup runs only on destroy.
  const isSwitch = (r: Registration) =>
    r.type === COMMAND && r.name.includes("-kubelet-") && !r.name.includes("-guard-");
  const links = new Map(regs.filter((r) => isSwitch(r) || r.type === GATE).map((r) => [r.urn, r]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (urn: string): number => {
    const known = depth.get(urn);
    if (known !== undefined) return known;
    if (visiting.has(urn)) throw new Error(`dependency cycle through ${urn}`);
    visiting.add(urn);
    const link = links.get(urn)!;
    let deepest = 0;
    for (const dep of link.dependencies) {
      if (links.has(dep)) deepest = Math.max(deepest, depthOf(dep));
    }
    visiting.delete(urn);
    const own = isSwitch(link) ? deepest + 1 : deepest;
    depth.set(urn, own);
    return own;
  };
  let longest = 0;
  for (const urn of links.keys()) longest = Math.max(longest, depthOf(urn));
  return longest;
}

export interface RoundsResult {
  nodes: number;
  batchSize: number;
  commands: number;
  rounds: number;
}

export interface RolloutInputs {
  /** Median measured create time of one node (real OpenSSH, instant kubelet restart), ms. */
  createMs?: number;
  /** Median measured delete time of one node, ms. */
  deleteMs?: number;
  /** Assumed kubelet restart time, ms (a parameter, not a measurement). */
  restartMs: number;
}

export function roundsTable(results: RoundsResult[], t: RolloutInputs): string {
  const est = (perNode: number | undefined, rounds: number) =>
    perNode === undefined ? "not measured" : seconds(rounds * perNode);
  const sorted = [...results].sort((a, b) => a.nodes - b.nodes || a.batchSize - b.batchSize);
  const rows = sorted.map((r) => [
    r.nodes.toLocaleString("en"),
    String(r.batchSize),
    String(r.rounds),
    String(Math.ceil(r.nodes / r.batchSize)),
    est(t.createMs, r.rounds),
    est(t.deleteMs, r.rounds),
    seconds(r.rounds * t.restartMs),
    est(t.createMs === undefined ? undefined : t.createMs + t.restartMs, r.rounds),
    t.createMs === undefined ? "not measured" : ratio((t.createMs + t.restartMs) / t.restartMs),
  ]);
  const r = seconds(t.restartMs);
  return table(
    [
      "nodes",
      "batchSize",
      "rounds (longest Command chain)",
      "ceil(nodes / batchSize)",
      `up: rounds × create (${t.createMs === undefined ? "n/a" : ms(t.createMs)}, instant restart)`,
      `destroy: rounds × delete (${t.deleteMs === undefined ? "n/a" : ms(t.deleteMs)})`,
      `floor: rounds × R (R = ${r}, assumed)`,
      `up with R: rounds × (create + R)`,
      "up with R / floor",
    ],
    rows,
  );
}

export function roundsSummary(results: RoundsResult[]): string {
  const bySize = new Map<number, RoundsResult[]>();
  const sorted = [...results].sort((a, b) => a.nodes - b.nodes || a.batchSize - b.batchSize);
  for (const r of sorted) bySize.set(r.nodes, [...(bySize.get(r.nodes) ?? []), r]);
  return [...bySize]
    .map(
      ([nodes, rs]) =>
        `${nodes.toLocaleString("en")} nodes: ${rs.map((r) => `${r.rounds} rounds at batchSize ${r.batchSize}`).join(", ")}`,
    )
    .join("; ");
}
