// The rollout plan as the component registers it: each switch depends on the round before, so
// the engine runs the batches of planRollout() one after another, and a failing node stops the
// rollout. A round of one node is depended on directly; a larger round through its gate, a Stash
// that depends on every switch of that round. Seven nodes, a canary of one, doubling up to four:
// 1, 2, 4.
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
  const switches = () =>
    regs.filter((r) => r.type === "command:remote:Command" && !r.name.includes("-guard-"));
  const urn = (node: string) =>
    switches().find((s) => s.name === `nodelocaldns-kubelet-${node}`)!.urn;
  const gates = () => regs.filter((r) => r.type === "pulumi:index:Stash");
  /** What a registration depends on among the switches and the gates, by name. */
  const onRollout = (r: Registration) =>
    r.dependencies
      .map((d) => [...switches(), ...gates()].find((x) => x.urn === d)?.name)
      .filter((name) => name !== undefined)
      .sort();

  it("chains the batches 1, 2, 4: n1 directly, then the gate of round 2", () => {
    const expected: Record<string, string[]> = {
      n1: [],
      n2: ["nodelocaldns-kubelet-n1"],
      n3: ["nodelocaldns-kubelet-n1"],
      n4: ["nodelocaldns-round-2"],
      n5: ["nodelocaldns-round-2"],
      n6: ["nodelocaldns-round-2"],
      n7: ["nodelocaldns-round-2"],
    };
    for (const [node, deps] of Object.entries(expected)) {
      assert.deepEqual(onRollout(switches().find((s) => s.urn === urn(node))!), deps, node);
    }
  });

  it("gates only a round of several nodes, and not the last round", () => {
    assert.deepEqual(
      gates().map((g) => [g.name, onRollout(g), g.inputs.input]),
      [["nodelocaldns-round-2", ["nodelocaldns-kubelet-n2", "nodelocaldns-kubelet-n3"], 2]],
    );
  });
});
