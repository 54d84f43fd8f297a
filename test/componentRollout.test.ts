// The rollout plan as the component registers it: each switch depends on every switch of the
// batch before, so the engine runs the batches of planRollout() one after another, and a failing
// node stops the rollout. Seven nodes, a canary of one, doubling up to four: 1, 2, 4.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DEFAULTS, Settings } from "../components/settings";
import { Registration, startMockRuntime } from "./support/mockRuntime";
import { resolvedSettings } from "./support/settingsFixture";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnFbvm4BNwc0sBhv3ZN1fQpaCtbDYIvZrQuQmPNDi5C";
const settings: Settings = resolvedSettings({
  rollout: { ...DEFAULTS.rollout, maxBatch: { count: 4 } },
  nodes: Array.from({ length: 7 }, (_, i) => ({
    name: `n${i + 1}`,
    host: `10.0.0.${11 + i}`,
    port: 22,
    user: "root",
    sudo: true,
    hostKey: HOST_KEY,
    kubelet: { format: "auto" as const },
  })),
});

let regs: Registration[];

before(async () => {
  const runtime = await startMockRuntime();
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  new NodeLocalDns("nodelocaldns", { settings });
  await runtime.settled();
  regs = runtime.registrations;
});

describe("the rollout plan in the dependency graph", () => {
  it("chains the batches 1, 2, 4: every switch depends on all of the batch before, no more", () => {
    const switches = regs.filter(
      (r) => r.type === "command:remote:Command" && !r.name.includes("-guard-"),
    );
    const urn = (node: string) =>
      switches.find((s) => s.name === `nodelocaldns-kubelet-${node}`)!.urn;
    const batches = [["n1"], ["n2", "n3"], ["n4", "n5", "n6", "n7"]];
    for (const [k, batch] of batches.entries()) {
      const previous = k === 0 ? [] : batches[k - 1]!.map(urn);
      for (const node of batch) {
        const deps = switches.find((s) => s.urn === urn(node))!.dependencies;
        const onSwitches = deps.filter((d) => switches.some((s) => s.urn === d));
        assert.deepEqual(onSwitches.sort(), previous.sort(), node);
      }
    }
  });
});
