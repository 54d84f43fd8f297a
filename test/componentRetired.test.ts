// Nodes that left the cluster (discovery.ts): the component updates their switch and guard to
// Commands that run nothing, so the provider never dials the dead host, now or when they go.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { ManagedNode } from "../components/discovery";
import { DEFAULTS, Settings } from "../components/settings";
import { Registration, startMockRuntime, unwrapSecret } from "./support/mockRuntime";
import { resolvedSettings } from "./support/settingsFixture";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnFbvm4BNwc0sBhv3ZN1fQpaCtbDYIvZrQuQmPNDi5C";
const settings: Settings = resolvedSettings({
  rollout: { ...DEFAULTS.rollout },
  nodes: [
    {
      name: "kept",
      host: "10.0.0.11",
      port: 22,
      user: "root",
      sudo: true,
      hostKey: HOST_KEY,
      kubelet: { format: "auto" as const },
    },
  ],
});
const retired: ManagedNode[] = [{ name: "gone", host: "10.0.0.12", port: 2222 }];

let regs: Registration[];

before(async () => {
  const runtime = await startMockRuntime();
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  new NodeLocalDns("nodelocaldns", { settings, retired });
  await runtime.settled();
  regs = runtime.registrations;
});

describe("a node that left the cluster", () => {
  it("keeps its three Commands' names, with no create, update, delete or program", () => {
    const gone = regs.filter(
      (r) => r.type === "command:remote:Command" && r.name.endsWith("-gone"),
    );
    assert.deepEqual(gone.map((r) => r.name).sort(), [
      "nodelocaldns-cleanup-gone",
      "nodelocaldns-kubelet-gone",
      "nodelocaldns-kubelet-guard-gone",
    ]);
    for (const r of gone) {
      for (const key of ["create", "update", "delete", "stdin", "triggers"]) {
        assert.equal(r.inputs[key], undefined, `${r.name} ${key}`);
      }
      const connection = unwrapSecret(r.inputs.connection);
      assert.equal(connection.secret, true);
      assert.equal((connection.value as { host: string }).host, "10.0.0.12");
      assert.equal((connection.value as { port: number }).port, 2222);
    }
  });

  it("keeps the stored triggers (a changed one would replace, running the old delete)", () => {
    const gone = regs.filter((r) => r.name.endsWith("-gone"));
    for (const r of gone) assert.deepEqual(r.ignoreChanges, ["triggers"], r.name);
  });

  it("waits for nothing and is waited on by nothing", () => {
    const gone = regs.filter((r) => r.name.endsWith("-gone"));
    const goneUrns = gone.map((r) => r.urn);
    for (const r of gone) {
      assert.deepEqual(r.dependencies, [], r.name);
      assert.deepEqual(r.replaceWith, [], r.name);
      assert.equal(r.deletedWith, "", r.name);
    }
    for (const r of regs.filter((r) => !r.name.endsWith("-gone"))) {
      assert.ok(!r.dependencies.some((d) => goneUrns.includes(d)), r.name);
    }
  });

  it("is retained on delete (destroy --run-program drops it unreverted); no other Command is", () => {
    for (const r of regs.filter((r) => r.type === "command:remote:Command")) {
      assert.equal(r.retainOnDelete, r.name.endsWith("-gone"), r.name);
    }
  });

  it("leaves the nodes still there as they were: switch, guard and cleanup with their programs", () => {
    const kept = regs.filter((r) => r.name.endsWith("-kept"));
    assert.equal(kept.length, 3);
    for (const r of kept) assert.match(String(r.inputs.delete), /bash -s delete$/);
  });
});
