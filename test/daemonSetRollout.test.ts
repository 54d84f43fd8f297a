// How an update of the DaemonSet replaces its pods, as tables: which DaemonSet read from the
// cluster runs node-cache that tears down on exit, and the updateStrategy for each case.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tearsDownOnExit, updateStrategy } from "../components/daemonSetRollout";
import { nodeLocalDnsObjects } from "../components/kubernetesObjects";
import { resolvedSettings } from "./support/settingsFixture";

function daemonSet(containers: { name?: string; args?: unknown }[]) {
  return { kind: "DaemonSet", spec: { template: { spec: { containers } } } };
}

describe("tearsDownOnExit", () => {
  it("is true for a node-cache container without -skipteardown, and only then", () => {
    const cases: [unknown, boolean][] = [
      [undefined, false], // no DaemonSet: nothing to replace
      [{}, false],
      [daemonSet([]), false],
      [daemonSet([{ name: "sidecar", args: [] }]), false],
      [daemonSet([{ name: "node-cache", args: ["-localip", "169.254.20.10"] }]), true],
      [daemonSet([{ name: "node-cache" }]), true],
      [daemonSet([{ name: "node-cache", args: "-skipteardown" }]), true],
      [daemonSet([{ name: "node-cache", args: ["-localip", "x", "-skipteardown"] }]), false],
    ];
    for (const [ds, expected] of cases) {
      assert.equal(tearsDownOnExit(ds), expected, JSON.stringify(ds));
    }
  });

  it("is false for the DaemonSet this project renders", () => {
    assert.equal(tearsDownOnExit(nodeLocalDnsObjects(resolvedSettings()).daemonSet), false);
  });
});

describe("updateStrategy", () => {
  it("surges, or replaces each old pod first while the old pods tear down", () => {
    assert.deepEqual(updateStrategy(false), {
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: "10%", maxUnavailable: 0 },
    });
    assert.deepEqual(updateStrategy(true), {
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 0, maxUnavailable: "10%" },
    });
  });

  it("is what the rendered DaemonSet carries", () => {
    for (const oldPodsTearDown of [false, true]) {
      const ds = nodeLocalDnsObjects(resolvedSettings({ oldPodsTearDown }))
        .daemonSet as unknown as {
        spec: {
          updateStrategy: unknown;
          minReadySeconds?: number;
          template: {
            spec: { containers: { readinessProbe?: { initialDelaySeconds: number } }[] };
          };
        };
      };
      assert.deepEqual(ds.spec.updateStrategy, updateStrategy(oldPodsTearDown));
      // Held back by the readiness delay, not by minReadySeconds (its timed requeue can be lost).
      assert.equal(ds.spec.minReadySeconds, undefined);
      const probe = ds.spec.template.spec.containers[0]!.readinessProbe;
      assert.equal(probe?.initialDelaySeconds, 10);
    }
  });
});
