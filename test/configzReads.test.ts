// The live view's bounds on its configz reads (components/fleetSources.ts readKubeletClusterDns),
// against a fake API server on loopback answered through the real @kubernetes/client-node: reads
// in flight at once stay within the concurrency, one read that does not answer ends at its own
// bound, and nodes not read when the whole read's bound is spent are unknown, not waited for.
// The bounds are scaled down (the defaults are 32, 5 s and 30 s): the rules are the same.
import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { readKubeletClusterDns } from "../components/fleetSources";
import { serveFakeApi } from "./support/fakeKubeconfig";

/** How long the fake API server takes to answer a "slow-*" node's configz. */
const SLOW_MS = 150;
let inFlight = 0;
let mostInFlight = 0;
const asked: string[] = [];
const server = http.createServer((req, res) => {
  const name = /^\/api\/v1\/nodes\/([^/]+)\/proxy\/configz$/.exec(req.url ?? "")?.[1] ?? "";
  asked.push(name);
  inFlight += 1;
  mostInFlight = Math.max(mostInFlight, inFlight);
  const answer = () => {
    inFlight -= 1;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kubeletconfig: { clusterDNS: ["169.254.20.10"] } }));
  };
  // "hang-*" nodes accept and never answer; the others answer after SLOW_MS.
  if (name.startsWith("hang-")) req.on("close", () => (inFlight -= 1));
  else setTimeout(answer, SLOW_MS);
});
let kubeconfig: string;
let stop = () => {};

before(async () => {
  ({ kubeconfig, stop } = await serveFakeApi(server));
});
after(() => stop());

describe("readKubeletClusterDns bounds", () => {
  it("reads at most `concurrency` nodes at once, and every node once", async () => {
    asked.length = 0;
    mostInFlight = 0;
    const names = Array.from({ length: 9 }, (_, i) => `slow-${i}`);
    const reads = await readKubeletClusterDns({ kubeconfig }, names, {
      concurrency: 3,
      requestMs: 2_000,
      totalMs: 10_000,
    });
    assert.equal(mostInFlight, 3);
    assert.deepEqual([...asked].sort(), names);
    for (const name of names) assert.deepEqual(reads[name], { clusterDns: ["169.254.20.10"] });
  });

  it("ends a read that never answers at its own bound, with the reason", async () => {
    const reads = await readKubeletClusterDns({ kubeconfig }, ["hang-a", "slow-a"], {
      concurrency: 2,
      requestMs: 400,
      totalMs: 10_000,
    });
    assert.deepEqual(reads["hang-a"], { unknown: "configz: no answer within 400ms" });
    assert.deepEqual(reads["slow-a"], { clusterDns: ["169.254.20.10"] });
  });

  it("makes nodes not read when the whole bound is spent unknown, without asking them", async () => {
    asked.length = 0;
    // One worker: the two hanging nodes take the whole bound; the rest are never asked.
    const names = ["hang-b", "hang-c", "slow-b", "slow-c"];
    const reads = await readKubeletClusterDns({ kubeconfig }, names, {
      concurrency: 1,
      requestMs: 400,
      totalMs: 600,
    });
    assert.deepEqual(asked, ["hang-b", "hang-c"]);
    assert.deepEqual(reads["hang-b"], { unknown: "configz: no answer within 400ms" });
    // The second read got what was left of the bound (200 ms), and still names its own bound.
    assert.deepEqual(reads["hang-c"], { unknown: "configz: no answer within 400ms" });
    for (const name of ["slow-b", "slow-c"]) {
      assert.deepEqual(reads[name], { unknown: "not read within the live view's 0.6s" });
    }
  });
});
