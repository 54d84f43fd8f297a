import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planBatches } from "../components/rollout";

describe("planBatches", () => {
  it("keeps config order and puts the remainder in the last batch", () => {
    assert.deepEqual(planBatches([1, 2, 3, 4, 5, 6, 7], 3), [[1, 2, 3], [4, 5, 6], [7]]);
  });

  it("gives one batch per node at batchSize 1 and one batch when the size covers all", () => {
    assert.deepEqual(planBatches(["a", "b"], 1), [["a"], ["b"]]);
    assert.deepEqual(planBatches(["a", "b"], 50), [["a", "b"]]);
    assert.deepEqual(planBatches([], 5), []);
  });

  it("rejects a batch size that is not a positive whole number", () => {
    assert.throws(() => planBatches([1], 0), /batchSize must be a positive whole number, got 0/);
    assert.throws(() => planBatches([1], 1.5), /got 1.5/);
  });
});
