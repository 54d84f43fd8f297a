// The rollout plan: which nodes are switched in which round. A batch starts only when the batch
// before it succeeded (the component chains them by dependencies), so a failing node stops the
// rollout. By default the first batch is a canary (one node), and each batch after it is twice
// the one before, up to maxBatch (a count, or a share of the nodes): a 1,000-node cluster at 10%
// takes 16 rounds (1, 2, 4, ... 64, then 100 at a time) instead of 200 fixed batches of 5.
// `batchSize` keeps the plain fixed batches. Pure: render prints the same plan.

/** A batch limit: a number of nodes, or a share of them ("10%"). */
export type BatchLimit = { count: number } | { percent: number };

export interface RolloutPlanSettings {
  /** Fixed batches of this many nodes, instead of a canary and growing batches. */
  batchSize?: number;
  /** Nodes in the first batch. */
  canary: number;
  /** The largest batch. */
  maxBatch: BatchLimit;
  /** Each batch is this many times the one before, up to maxBatch. */
  growth: number;
}

export function planRollout<T>(items: readonly T[], rollout: RolloutPlanSettings): T[][] {
  if (rollout.batchSize !== undefined) return planBatches(items, rollout.batchSize);
  const largest = maxBatchSize(items.length, rollout.maxBatch);
  const batches: T[][] = [];
  let size = Math.min(rollout.canary, largest);
  for (let at = 0; at < items.length; at += size) {
    if (batches.length > 0) size = Math.min(size * rollout.growth, largest);
    batches.push(items.slice(at, at + size));
  }
  return batches;
}

/** maxBatch in nodes for a rollout of `total` nodes: at least 1. */
export function maxBatchSize(total: number, limit: BatchLimit): number {
  const size = "count" in limit ? limit.count : Math.ceil((total * limit.percent) / 100);
  return Math.max(1, size);
}

export function planBatches<T>(items: readonly T[], batchSize: number): T[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be a positive whole number, got ${batchSize}`);
  }
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += batchSize) {
    batches.push(items.slice(i, i + batchSize));
  }
  return batches;
}

/** The plan in one line: "16 rounds (batch sizes 1, 2, 4, 8, 16, 32, 64, 100 x 8, 73)". */
export function describePlan(batches: readonly (readonly unknown[])[]): string {
  const runs: [number, number][] = [];
  for (const b of batches) {
    const last = runs.at(-1);
    if (last !== undefined && last[0] === b.length) last[1] += 1;
    else runs.push([b.length, 1]);
  }
  const sizes = runs.map(([size, times]) => (times > 1 ? `${size} x ${times}` : `${size}`));
  const rounds = `${batches.length} round${batches.length === 1 ? "" : "s"}`;
  return batches.length === 0
    ? "no rounds (no nodes)"
    : `${rounds} (batch sizes ${sizes.join(", ")})`;
}
