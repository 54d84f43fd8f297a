// kube-proxy's mode from kube-system/kube-proxy, and the warning when kubeProxyMode says another:
// pure, tested as a table.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kubeProxyModeWarning, statedKubeProxyMode } from "../components/kubeProxyMode";

const config = (body: string) =>
  `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${body}`;

describe("statedKubeProxyMode", () => {
  const cases: [string, Record<string, string> | undefined, unknown][] = [
    ["no ConfigMap", undefined, undefined],
    ["kubeadm's, ipvs", { "config.conf": config("mode: ipvs\n") }, "ipvs"],
    ["nftables", { "config.conf": config('mode: "nftables"\n') }, "nftables"],
    ['mode: "" is the default, iptables', { "config.conf": config('mode: ""\n') }, "iptables"],
    [
      "no mode at all is the default too",
      { "config.conf": config("bindAddress: 0.0.0.0\n") },
      "iptables",
    ],
    [
      "a mode this program does not know",
      { "config.conf": config("mode: kernelspace\n") },
      "other",
    ],
    [
      "another key holds it",
      { "kubeconfig.conf": "kind: Config\n", "x.yaml": config("mode: ipvs") },
      "ipvs",
    ],
    ["text that is not YAML is passed over", { "config.conf": "mode: [ipvs\n" }, undefined],
    [
      "another kind is not kube-proxy's config",
      { "config.conf": "kind: Other\nmode: ipvs\n" },
      undefined,
    ],
  ];
  for (const [name, data, mode] of cases) {
    it(name, () => assert.equal(statedKubeProxyMode(data)?.mode, mode));
  }

  it("keeps the field as written and the key it came from", () => {
    assert.deepEqual(statedKubeProxyMode({ "config.conf": config('mode: ""\n') }), {
      mode: "iptables",
      written: "",
      key: "config.conf",
    });
  });
});

describe("kubeProxyModeWarning", () => {
  const stated = (body: string) => statedKubeProxyMode({ "config.conf": config(body) });

  it("says nothing when the cluster agrees or does not say", () => {
    assert.equal(kubeProxyModeWarning("ipvs", stated("mode: ipvs\n")), undefined);
    assert.equal(kubeProxyModeWarning("iptables", stated('mode: ""\n')), undefined);
    assert.equal(kubeProxyModeWarning("ipvs", undefined), undefined);
  });

  it("names the key, the ConfigMap and the mode to set when they differ", () => {
    assert.equal(
      kubeProxyModeWarning("ipvs", stated('mode: ""\n')),
      "nodelocaldns:kubeProxyMode: ipvs, but kube-system/kube-proxy (config.conf) says " +
        'mode: "" (kube-proxy\'s default, iptables); set kubeProxyMode: iptables (the objects ' +
        "and kubelet's switch are the same; the README's notes for that mode are the ones that apply)",
    );
  });

  it("an unknown mode is named, cut short, without advice to set it", () => {
    const warning = kubeProxyModeWarning("nftables", stated(`mode: ${"x".repeat(200)}\n`));
    assert.match(warning ?? "", /says mode: x{40}; a mode this program does not know/);
    assert.ok((warning ?? "").length < 250);
  });
});
