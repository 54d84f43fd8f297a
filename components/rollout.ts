// The rollout plan: nodes in batches of `batchSize`, in config order. Batch k+1 depends on batch k,
// so a node that fails stops the rollout before the next batch is touched.

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
