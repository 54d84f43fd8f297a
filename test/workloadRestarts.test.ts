// restartWorkloads through @kubernetes/client-node against a fake API server on loopback: the
// request each kind gets (a merge patch of one pod template annotation), a refused one reported
// with its reason while the others go on, and the overall time bound.
import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { restartLine, restartWorkloads } from "../components/workloadRestarts";
import { serveFakeApi } from "./support/fakeKubeconfig";

const AT = "2026-11-26T10:00:00Z";
const requests: { method: string; url: string; type: string; body: unknown }[] = [];
const server = http.createServer((req, res) => {
  let text = "";
  req.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  req.on("end", () => {
    requests.push({
      method: req.method ?? "",
      url: req.url ?? "",
      type: req.headers["content-type"] ?? "",
      body: text === "" ? undefined : (JSON.parse(text) as unknown),
    });
    res.writeHead(req.url?.includes("/locked/") ? 403 : 200, {
      "Content-Type": "application/json",
    });
    res.end(
      req.url?.includes("/locked/")
        ? JSON.stringify({ kind: "Status", code: 403, message: "patch is forbidden" })
        : JSON.stringify({ kind: "Deployment", apiVersion: "apps/v1", metadata: {} }),
    );
  });
});
let api: Awaited<ReturnType<typeof serveFakeApi>>;

before(async () => {
  api = await serveFakeApi(server);
});
after(() => api.stop());

describe("restartWorkloads", () => {
  it("merge-patches each workload's pod template; a refused one is named, the rest go on", async () => {
    const result = await restartWorkloads({ kubeconfig: api.kubeconfig }, [
      { namespace: "locked", workload: "deployment/api", switchedAt: AT },
      { namespace: "shop", workload: "deployment/web", switchedAt: AT },
      { namespace: "shop", workload: "statefulset/db", switchedAt: AT },
      { namespace: "shop", workload: "daemonset/agent", switchedAt: AT },
    ]);
    assert.deepEqual(result, {
      restarted: ["shop/deployment/web", "shop/statefulset/db", "shop/daemonset/agent"],
      failed: [{ workload: "locked/deployment/api", reason: "HTTP 403: patch is forbidden" }],
    });
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.url}`),
      [
        "PATCH /apis/apps/v1/namespaces/locked/deployments/api",
        "PATCH /apis/apps/v1/namespaces/shop/deployments/web",
        "PATCH /apis/apps/v1/namespaces/shop/statefulsets/db",
        "PATCH /apis/apps/v1/namespaces/shop/daemonsets/agent",
      ],
    );
    for (const r of requests) {
      assert.equal(r.type, "application/merge-patch+json");
      assert.deepEqual(r.body, {
        spec: {
          template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": AT } } },
        },
      });
    }
    assert.equal(
      restartLine(result),
      "restartWorkloads: restarted 3 workload(s); not restarted: locked/deployment/api (HTTP 403: patch is forbidden)",
    );
  });

  it("tries none once its time is up, and says so for each", async () => {
    requests.length = 0;
    const result = await restartWorkloads(
      { kubeconfig: api.kubeconfig },
      [{ namespace: "shop", workload: "deployment/web", switchedAt: AT }],
      0,
    );
    assert.deepEqual(result, {
      restarted: [],
      failed: [{ workload: "shop/deployment/web", reason: "not tried: restarts took over 0ms" }],
    });
    assert.equal(requests.length, 0);
  });
});
