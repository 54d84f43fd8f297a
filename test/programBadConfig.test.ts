// Bad config stops the program before any resource is registered, with every bad key named.
import assert from "node:assert/strict";
import { it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { startMockRuntime } from "./support/mockRuntime";

it("fails with every problem listed and registers nothing", async () => {
  const runtime = await startMockRuntime({
    config: {
      "nodelocaldns:localDnsIp": "169.254.20",
      "nodelocaldns:kubeProxyMode": "userspace",
      "nodelocaldns:nodes": JSON.stringify([{ name: "a", host: "10.0.0.1; reboot" }]),
      "nodelocaldns:colour": "blue",
    },
  });
  await assert.rejects(import("../index"), (err: Error) => {
    // RunError: the engine prints its message alone, without a stack trace.
    assert.ok(pulumi.RunError.isInstance(err), `expected a RunError, got ${err.name}`);
    assert.equal(
      err.message,
      [
        "invalid nodelocaldns configuration (4 problems):",
        "  - nodelocaldns:colour: unknown key (known keys: clusterDnsIp, dnsServiceName, localDnsIp, fallbackToKubeDns, kubeadmKubeletConfig, liveView, restartWorkloads, clusterDomain, kubeProxyMode, image, cache, healthPort, metricsPort, resources, priorityClassName, tolerations, nodeSelector, monitoring, nodes, discover, ssh, kubelet, rollout, stateDir)",
        '  - nodelocaldns:localDnsIp: "169.254.20" is not an IP address',
        '  - nodelocaldns:kubeProxyMode: "userspace" is not one of ipvs, iptables, nftables',
        '  - nodelocaldns:nodes[0].host: "10.0.0.1; reboot" is not a hostname or IP address',
      ].join("\n"),
    );
    return true;
  });
  await runtime.settled();
  assert.deepEqual(runtime.registrations, []);
});
