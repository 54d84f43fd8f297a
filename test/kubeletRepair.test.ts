// Drift repair and the check after a switch, as tables: which nodes' switches run again, the line
// that says why, which nodes are read again after their switch, and the verdicts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { managedNodesFromOutput } from "../components/discovery";
import type { LiveNodeView } from "../components/kubeletLive";
import {
  nodesToVerify,
  repairLine,
  repairNumbers,
  verification,
  verificationFailure,
  verificationLine,
} from "../components/kubeletRepair";

const CACHE = "169.254.20.10";
const KUBE_DNS = "10.96.0.10";
const managed = (name: string, repairs?: number) =>
  repairs === undefined ? { name, host: "h", port: 22 } : { name, host: "h", port: 22, repairs };

const VIEW: Record<string, LiveNodeView> = {
  healthy: { state: "switched", clusterDNS: [CACHE] },
  drifted: { state: "drifted", clusterDNS: [KUBE_DNS] },
  again: { state: "drifted", clusterDNS: [] },
  repaired: { state: "switched", clusterDNS: [CACHE] },
  fresh: { state: "to switch", clusterDNS: [KUBE_DNS] },
  silent: { state: "unknown", reason: "configz: no answer within 5000ms" },
  adopted: { state: "on the cache already", clusterDNS: [CACHE] },
};

describe("repairNumbers", () => {
  const nodes = Object.keys(VIEW);
  const before = [
    managed("healthy"),
    managed("drifted"),
    managed("again", 2),
    managed("repaired", 4),
    managed("silent", 1),
  ];

  it("counts one more repair for each drifted node, and keeps every other node's number", () => {
    assert.deepEqual(repairNumbers(nodes, before, VIEW), {
      drifted: 1,
      again: 3,
      repaired: 4,
      silent: 1,
    });
  });

  it("keeps the numbers when the live view was not read, and forgets nodes no longer selected", () => {
    assert.deepEqual(repairNumbers(["again", "repaired"], before, "not read: no kubeconfig"), {
      again: 2,
      repaired: 4,
    });
  });

  it("starts from nothing without a record (first update, or its outputs not read)", () => {
    assert.deepEqual(repairNumbers(nodes, [], VIEW), { drifted: 1, again: 1 });
  });
});

describe("repairLine", () => {
  it("names each drifted node with what its kubelet runs", () => {
    assert.equal(
      repairLine(VIEW),
      "kubelet drift repair: the last update switched drifted (kubelet runs 10.96.0.10), " +
        "again (kubelet runs none); their switch runs again in this update",
    );
  });

  it("says nothing on a healthy fleet or without a live view", () => {
    assert.equal(repairLine({ healthy: VIEW.healthy! }), undefined);
    assert.equal(repairLine("not read (liveView: false)"), undefined);
  });

  it("stops at 10 names", () => {
    const many = Object.fromEntries(
      Array.from({ length: 12 }, (_, i) => [`n${i}`, VIEW.drifted!] as const),
    );
    assert.match(repairLine(many)!, /n9 \(kubelet runs 10\.96\.0\.10\) and 2 more; their/);
  });
});

describe("nodesToVerify", () => {
  it("reads again every node this update may change or could not read, not the healthy ones", () => {
    assert.deepEqual(nodesToVerify(Object.keys(VIEW), VIEW), [
      "drifted",
      "again",
      "fresh",
      "silent",
      "adopted",
    ]);
    assert.deepEqual(nodesToVerify(["healthy"], "not read: no kubeconfig"), []);
  });
});

describe("verification", () => {
  it("confirms a kubelet on the cache, also with a fallback entry, and fails one without it", () => {
    assert.deepEqual(verification(CACHE, { clusterDns: [CACHE, KUBE_DNS] }), {
      state: "confirmed",
      clusterDNS: [CACHE, KUBE_DNS],
    });
    assert.deepEqual(verification(CACHE, { clusterDns: [KUBE_DNS] }), {
      state: "failed",
      clusterDNS: [KUBE_DNS],
    });
    assert.deepEqual(verification(CACHE, { unknown: "configz: HTTP 503: x" }), {
      state: "unconfirmed",
      reason: "configz: HTTP 503: x",
    });
  });

  it("reports in one line, and fails the update only for nodes off the cache", () => {
    const results = {
      a: verification(CACHE, { clusterDns: [CACHE] }),
      b: verification(CACHE, { clusterDns: [KUBE_DNS] }),
      c: verification(CACHE, { unknown: "configz: HTTP 503: x" }),
      d: verification(CACHE, { unknown: "configz: HTTP 503: x" }),
    };
    assert.equal(
      verificationLine(results),
      "kubelet after the switch (configz): confirmed 1/4; failed: b (10.96.0.10); " +
        "unconfirmed: c, d (configz: HTTP 503: x)",
    );
    assert.equal(
      verificationFailure(CACHE, results),
      "kubelet verification failed: after their switch, kubelet reports a cluster DNS without " +
        "169.254.20.10 (configz) on b (10.96.0.10); the node program saw the switch done; look at " +
        "what that kubelet runs (README: Verification after the switch)",
    );
    assert.equal(verificationFailure(CACHE, { a: results.a, c: results.c }), undefined);
  });
});

describe("managedNodesFromOutput", () => {
  it("keeps well-formed entries and their repair counts, and drops what is not one", () => {
    assert.deepEqual(
      managedNodesFromOutput([
        { name: "a", host: "10.0.0.1", port: 22 },
        { name: "b", host: "10.0.0.2", port: 22, repairs: 2 },
        { name: "c", host: "10.0.0.3", port: 22, repairs: "2; rm -rf /" },
        { name: "d", host: "10.0.0.4", port: 22, repairs: 0 },
        { name: "e", host: "10.0.0.5", port: 22, repairs: 1e12 },
        { name: "f", host: "10.0.0.6", port: "22" },
        null,
        "g",
      ]),
      [
        { name: "a", host: "10.0.0.1", port: 22 },
        { name: "b", host: "10.0.0.2", port: 22, repairs: 2 },
        { name: "c", host: "10.0.0.3", port: 22 },
        { name: "d", host: "10.0.0.4", port: 22 },
        { name: "e", host: "10.0.0.5", port: 22, repairs: 999_999 },
      ],
    );
    assert.deepEqual(managedNodesFromOutput(undefined), []);
    assert.deepEqual(managedNodesFromOutput({ name: "a" }), []);
  });
});
