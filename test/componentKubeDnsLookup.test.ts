// Without clusterDnsIp in config, the component reads Service kube-system/<dnsServiceName> from the
// cluster (a read, never a managed resource) and renders the Corefile and node programs with it.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Settings } from "../components/settings";
import { Registration, startMockRuntime } from "./support/mockRuntime";
import { resolvedSettings } from "./support/settingsFixture";

const settings: Settings = resolvedSettings({
  dnsServiceName: "coredns",
  nodes: [
    {
      name: "n1",
      host: "10.0.0.11",
      port: 22,
      user: "root",
      sudo: true,
      kubelet: { format: "auto" },
    },
  ],
});
delete settings.clusterDnsIp;

let regs: Registration[];

before(async () => {
  const runtime = await startMockRuntime({ kubeDnsClusterIp: "10.100.0.10" });
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  new NodeLocalDns("lookup", { settings });
  await runtime.settled();
  regs = runtime.registrations;
});

describe("kube-dns ClusterIP lookup", () => {
  it("reads the configured DNS Service from kube-system, as a read only", () => {
    const reads = regs.filter((r) => r.read);
    assert.equal(reads.length, 1);
    assert.equal(reads[0].type, "kubernetes:core/v1:Service");
    assert.equal(reads[0].name, "lookup-kube-dns");
    assert.equal(reads[0].readId, "kube-system/coredns");
    assert.equal(
      regs.filter((r) => !r.read && r.type === "kubernetes:core/v1:Service").length,
      2,
      "only kube-dns-upstream and the metrics Service are managed",
    );
  });

  it("forwards the cluster zones to the ClusterIP it read", () => {
    const cm = regs.find((r) => r.type === "kubernetes:core/v1:ConfigMap");
    const corefile = (cm?.inputs.data as { Corefile: string }).Corefile;
    assert.equal(corefile.match(/forward \. 10\.100\.0\.10 \{/g)?.length, 3);
  });

  it("gives the node program the ClusterIP it read", () => {
    const cmd = regs.find((r) => r.name === "lookup-kubelet-n1");
    assert.match(String(cmd?.inputs.stdin), /\nreadonly CLUSTER_DNS_IP=10\.100\.0\.10\n/);
  });
});
