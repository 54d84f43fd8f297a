// The live view's pure parts: configz answers parsed, and each node's state (switched, drifted,
// to switch, on the cache already, unknown) with its summary line.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { liveView, parseConfigz } from "../components/kubeletLive";

const CACHE = "169.254.20.10";
const KUBE_DNS = "10.96.0.10";

/** A configz answer as kubelet writes it (trimmed: kubelet lists every field). */
function configz(clusterDNS?: unknown): string {
  return JSON.stringify({
    kubeletconfig: {
      enableServer: true,
      staticPodPath: "/etc/kubernetes/manifests",
      ...(clusterDNS === undefined ? {} : { clusterDNS }),
      clusterDomain: "cluster.local",
    },
  });
}

describe("parseConfigz", () => {
  it("reads kubeletconfig.clusterDNS from the text or the parsed answer", () => {
    assert.deepEqual(parseConfigz(configz([KUBE_DNS])), [KUBE_DNS]);
    assert.deepEqual(parseConfigz(JSON.parse(configz([CACHE, KUBE_DNS]))), [CACHE, KUBE_DNS]);
  });

  it("reads a missing clusterDNS (kubelet omits an empty list) as no entries", () => {
    assert.deepEqual(parseConfigz(configz()), []);
  });

  it("refuses what is not a configz answer, with a short reason", () => {
    const cases: [unknown, RegExp][] = [
      ["<html>502 Bad Gateway</html>", /not JSON/],
      [JSON.stringify({ componentconfig: {} }), /without a kubeletconfig object/],
      ["null", /without a kubeletconfig object/],
      [configz("10.96.0.10"), /clusterDNS is not a list of addresses/],
      [configz([10]), /clusterDNS is not a list of addresses/],
    ];
    for (const [answer, reason] of cases) assert.throws(() => parseConfigz(answer), reason);
  });

  it("cuts an entry to the length of an address, so no long text reaches a message", () => {
    const [entry] = parseConfigz(configz(["x".repeat(500)]));
    assert.equal(entry!.length, 45);
  });
});

describe("liveView", () => {
  const nodes = [
    { name: "n1", switchedBefore: true },
    { name: "n2", switchedBefore: true },
    { name: "n3", switchedBefore: false },
    { name: "n4", switchedBefore: false },
    { name: "n5", switchedBefore: true },
    { name: "n6", switchedBefore: false },
  ];
  const reads = {
    n1: { clusterDns: [CACHE] },
    n2: { clusterDns: [KUBE_DNS] },
    n3: { clusterDns: [KUBE_DNS] },
    n4: { clusterDns: [CACHE, KUBE_DNS] },
    n5: { unknown: "configz: HTTP 503" },
    n6: { unknown: "configz: HTTP 503" },
  };

  it("gives each node its state against our record", () => {
    const view = liveView(CACHE, nodes, reads);
    assert.deepEqual(view.nodes, {
      n1: { state: "switched", clusterDNS: [CACHE] },
      n2: { state: "drifted", clusterDNS: [KUBE_DNS] },
      n3: { state: "to switch", clusterDNS: [KUBE_DNS] },
      n4: { state: "on the cache already", clusterDNS: [CACHE, KUBE_DNS] },
      n5: { state: "unknown", reason: "configz: HTTP 503" },
      n6: { state: "unknown", reason: "configz: HTTP 503" },
    });
  });

  it("says it in one line: the count on the cache, then who drifted, waits, or is unknown", () => {
    assert.equal(
      liveView(CACHE, nodes, reads).summary,
      "kubelet live view (configz, before this update): on the cache 2/6; drifted: n2; " +
        "to switch: n3; on the cache already: n4; unknown: n5, n6 (configz: HTTP 503)",
    );
  });

  it("counts a switch that kept another entry before the cache's as on the cache", () => {
    const view = liveView(CACHE, [{ name: "n1", switchedBefore: true }], {
      n1: { clusterDns: ["10.0.0.53", CACHE] },
    });
    assert.equal(view.nodes.n1!.state, "switched");
  });

  it("names at most 10 nodes a list, then how many more", () => {
    const many = Array.from({ length: 13 }, (_, i) => ({ name: `d${i}`, switchedBefore: true }));
    const drifted = Object.fromEntries(many.map((n) => [n.name, { clusterDns: [KUBE_DNS] }]));
    assert.match(
      liveView(CACHE, many, drifted).summary,
      /: on the cache 0\/13; drifted: d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 and 3 more$/,
    );
  });

  it("reports the cluster's unselected Nodes only when they run on the cache", () => {
    const unselected = [
      { name: "relabelled", switchedBefore: true, selected: false },
      { name: "by-hand", switchedBefore: false, selected: false },
      { name: "plain", switchedBefore: false, selected: false },
      { name: "reverted", switchedBefore: true, selected: false },
      { name: "silent", switchedBefore: false, selected: false },
    ];
    const view = liveView(CACHE, [{ name: "n1", switchedBefore: true }, ...unselected], {
      n1: { clusterDns: [CACHE] },
      relabelled: { clusterDns: [CACHE] },
      "by-hand": { clusterDns: [CACHE, KUBE_DNS] },
      plain: { clusterDns: [KUBE_DNS] },
      reverted: { clusterDns: [KUBE_DNS] },
      silent: { unknown: "configz: HTTP 503" },
    });
    assert.deepEqual(view.nodes, {
      n1: { state: "switched", clusterDNS: [CACHE] },
      relabelled: { state: "to revert", clusterDNS: [CACHE] },
      "by-hand": { state: "on the cache, not selected", clusterDNS: [CACHE, KUBE_DNS] },
    });
    assert.equal(
      view.summary,
      "kubelet live view (configz, before this update): on the cache 1/1; " +
        "to revert: relabelled; on the cache, not selected: by-hand",
    );
  });

  it("reports a node without a read as unknown", () => {
    const view = liveView(CACHE, [{ name: "n1", switchedBefore: false }], {});
    assert.deepEqual(view.nodes.n1, { state: "unknown", reason: "not read" });
  });
});
