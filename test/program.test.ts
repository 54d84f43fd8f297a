// The whole program (index.ts) under the mock runtime, with the worked example stack's config as
// the engine would pass it: every value a string, structured values as JSON.
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { rawConfigFromFiles } from "../components/stackConfig";
import { Registration, startMockRuntime } from "./support/mockRuntime";

type Program = typeof import("../index");

function engineConfig(stack: string): Record<string, string> {
  const { values } = rawConfigFromFiles(path.join(__dirname, ".."), stack);
  return Object.fromEntries(
    Object.entries(values)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [`nodelocaldns:${k}`, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

const resolve = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

let program: Program;
let regs: Registration[];

before(async () => {
  const runtime = await startMockRuntime({ config: engineConfig("dev") });
  program = await import("../index");
  await runtime.settled();
  regs = runtime.registrations;
});

describe("the program on the dev stack", () => {
  it("registers the objects and a revert guard, a kubelet switch and a cleanup per configured node", () => {
    const commands = regs.filter((r) => r.type === "command:remote:Command").map((r) => r.name);
    assert.deepEqual(commands.sort(), [
      "nodelocaldns-cleanup-node-1",
      "nodelocaldns-cleanup-node-2",
      "nodelocaldns-cleanup-node-3",
      "nodelocaldns-kubelet-guard-node-1",
      "nodelocaldns-kubelet-guard-node-2",
      "nodelocaldns-kubelet-guard-node-3",
      "nodelocaldns-kubelet-node-1",
      "nodelocaldns-kubelet-node-2",
      "nodelocaldns-kubelet-node-3",
    ]);
    assert.equal(regs.filter((r) => r.type.startsWith("kubernetes:")).length, 6);
  });

  it("exports the addresses, the DaemonSet, the managed nodes and what to check", async () => {
    assert.equal(await resolve(program.clusterDnsIp), "10.96.0.10");
    assert.equal(await resolve(program.localDnsIp), "169.254.20.10");
    assert.equal(await resolve(program.namespace), "kube-system");
    assert.equal(await resolve(program.daemonSetName), "node-local-dns");
    const switches = await resolve(program.kubeletSwitches);
    assert.deepEqual(Object.keys(switches), ["node-1", "node-2", "node-3"]);
    const managed = await resolve(program.managedNodes);
    assert.deepEqual(
      managed.map((m) => m.name),
      ["node-1", "node-2", "node-3"],
    );
    const checks = await resolve(program.checks);
    assert.ok(checks.includes("kubectl -n kube-system rollout status daemonset/node-local-dns"));
  });

  it("without a kubeconfig: nothing read before or after the switches, and each output says so", async () => {
    assert.equal(await program.kubeletLive, "not read: no kubeconfig");
    assert.equal(
      await resolve(program.kubeletVerified),
      "not verified: live view not read: no kubeconfig",
    );
    assert.equal(await resolve(program.podsToRecreate), "not read: no kubeconfig");
    const switchCommand = regs.find((r) => r.name === "nodelocaldns-kubelet-node-1");
    assert.equal(switchCommand?.inputs.update, "sudo -n bash -s update", "no repair");
  });

  it("goes through sudo for the dev stack's ops user, with the bastion in the connection", () => {
    const cmd = regs.find((r) => r.name === "nodelocaldns-kubelet-node-1");
    assert.equal(cmd?.inputs.create, "sudo -n bash -s create");
  });
});
