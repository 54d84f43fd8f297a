import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  describePlan,
  planBatches,
  planRollout,
  type RolloutPlanSettings,
} from "../components/rollout";
import { DEFAULTS } from "../components/settings";

const nodes = (n: number) => Array.from({ length: n }, (_, i) => i);
const sizes = (batches: unknown[][]) => batches.map((b) => b.length);

describe("planRollout: a canary, then batches that grow up to maxBatch", () => {
  const defaults: RolloutPlanSettings = DEFAULTS.rollout;
  const table: [string, number, Partial<RolloutPlanSettings>, number[]][] = [
    ["no nodes", 0, {}, []],
    ["one node: the canary alone", 1, {}, [1]],
    [
      "ten nodes at 10%: everything after the canary one at a time",
      10,
      {},
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
    ["100 nodes at 10%", 100, {}, [1, 2, 4, 8, 10, 10, 10, 10, 10, 10, 10, 10, 5]],
    [
      "1,000 nodes at 10%: 16 rounds (the goal: at most 20)",
      1000,
      {},
      [1, 2, 4, 8, 16, 32, 64, 100, 100, 100, 100, 100, 100, 100, 100, 73],
    ],
    ["a count instead of a share", 20, { maxBatch: { count: 5 } }, [1, 2, 4, 5, 5, 3]],
    [
      "a canary of three, tripling",
      30,
      { canary: 3, growth: 3, maxBatch: { count: 100 } },
      [3, 9, 18],
    ],
    [
      "growth 1: the canary's size throughout",
      5,
      { canary: 2, growth: 1, maxBatch: { count: 9 } },
      [2, 2, 1],
    ],
    [
      "a canary above maxBatch is cut to it",
      10,
      { canary: 8, maxBatch: { count: 3 } },
      [3, 3, 3, 1],
    ],
    ["fixed batches (batchSize) ignore the rest", 7, { batchSize: 3 }, [3, 3, 1]],
  ];
  for (const [what, count, over, expected] of table) {
    it(what, () => {
      const plan = planRollout(nodes(count), { ...defaults, ...over });
      assert.deepEqual(sizes(plan), expected);
      assert.deepEqual(plan.flat(), nodes(count), "every node once, in config order");
    });
  }

  it("describes a plan in one line", () => {
    const plan = planRollout(nodes(1000), DEFAULTS.rollout);
    assert.equal(describePlan(plan), "16 rounds (batch sizes 1, 2, 4, 8, 16, 32, 64, 100 x 8, 73)");
    assert.equal(describePlan([]), "no rounds (no nodes)");
  });
});

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
