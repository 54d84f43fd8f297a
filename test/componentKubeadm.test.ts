// kubeadmKubeletConfig under the mock runtime: the component registers the kubelet-config edit
// as one dynamic resource that depends on the DaemonSet (so destroy reverts it before the
// DaemonSet goes), with the addresses the node program uses and the kubeconfig as a secret; and
// nothing of it when the option is off. Its behaviour against a real API server and through the
// real engine: test/e2e/kubeletConfigMap.test.ts and test/e2e/pulumi.test.ts.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Registration, startMockRuntime, unwrapSecret } from "./support/mockRuntime";
import { resolvedSettings } from "./support/settingsFixture";

const KUBECONFIG =
  "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: SECRET-TOKEN}}]\n";
let regs: Registration[];

before(async () => {
  const runtime = await startMockRuntime();
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  new NodeLocalDns("on", {
    settings: resolvedSettings({ kubeadmKubeletConfig: true, fallbackToKubeDns: true }),
    kube: { kubeconfig: KUBECONFIG, context: "prod" },
  });
  new NodeLocalDns("off", { settings: resolvedSettings() });
  await runtime.settled();
  regs = runtime.registrations;
});

describe("kubeadmKubeletConfig in the component", () => {
  it("registers one dynamic resource after the DaemonSet, with the node program's addresses", () => {
    const edits = regs.filter((r) => r.type === "pulumi-nodejs:dynamic:Resource");
    assert.deepEqual(
      edits.map((r) => r.name),
      ["on-kubeadm-kubelet-config"],
      "only where the option is on",
    );
    const edit = edits[0]!;
    const daemonSet = regs.find((r) => r.name === "on-daemonset")!;
    assert.deepEqual(edit.dependencies, [daemonSet.urn]);
    assert.deepEqual(edit.inputs.addresses, {
      localDnsIp: "169.254.20.10",
      clusterDnsIp: "10.96.0.10",
      fallbackToKubeDns: true,
    });
    assert.deepEqual(unwrapSecret(edit.inputs.kubeconfig), { secret: true, value: KUBECONFIG });
    assert.equal(edit.inputs.context, "prod");
  });
});
