// The cluster-wide lists (components/fleetSources.ts: listClusterNodes, listClusterPods) follow the
// API server's pages (`limit` and `continue`) to the end, against a fake API server on loopback
// answered through the real @kubernetes/client-node, and end at their bound when the API server
// does not answer.
import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { listClusterNodes, listClusterPods } from "../components/fleetSources";
import { serveFakeApi } from "./support/fakeKubeconfig";

const asked: string[] = [];
/** Three pages per list: the first two name the next with a continue token. */
/** While set, the fake API server takes list requests and never answers them. */
let hang = false;
const server = http.createServer((req, res) => {
  asked.push(req.url ?? "");
  if (hang) return;
  const url = new URL(req.url ?? "", "http://fake");
  const page = Number(url.searchParams.get("continue") ?? "0");
  const kind = url.pathname === "/api/v1/nodes" ? "Node" : "Pod";
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(
    JSON.stringify({
      kind: `${kind}List`,
      apiVersion: "v1",
      metadata: page < 2 ? { continue: String(page + 1) } : {},
      items: [{ kind, metadata: { name: `${kind.toLowerCase()}-${page}` } }],
    }),
  );
});
let kubeconfig: string;
let stop = () => {};

before(async () => {
  ({ kubeconfig, stop } = await serveFakeApi(server));
});
after(() => stop());

describe("the cluster-wide lists", () => {
  it("read every page of the Nodes, 500 at a time", async () => {
    asked.length = 0;
    const { items } = await listClusterNodes({ kubeconfig });
    const names = items.map((i) => (i as { metadata: { name: string } }).metadata.name);
    assert.deepEqual(names, ["node-0", "node-1", "node-2"]);
    assert.deepEqual(asked, [
      "/api/v1/nodes?limit=500",
      "/api/v1/nodes?continue=1&limit=500",
      "/api/v1/nodes?continue=2&limit=500",
    ]);
  });

  it("read every page of the Pods of all namespaces", async () => {
    asked.length = 0;
    const items = await listClusterPods({ kubeconfig });
    const names = items.map((i) => (i as { metadata: { name: string } }).metadata.name);
    assert.deepEqual(names, ["pod-0", "pod-1", "pod-2"]);
    assert.equal(asked.length, 3);
  });

  it("end where the API server never answers, at their bound, saying which list", async () => {
    hang = true;
    try {
      await assert.rejects(listClusterPods({ kubeconfig }, 300), {
        message: "the pod list took longer than 0.3s",
      });
      await assert.rejects(listClusterNodes({ kubeconfig }, 300), {
        message: "the Node list took longer than 0.3s",
      });
    } finally {
      hang = false;
    }
  });
});
