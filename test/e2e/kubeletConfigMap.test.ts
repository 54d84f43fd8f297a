// The kubeadmKubeletConfig resource's provider (components/kubeletConfigMapResource.ts) called
// directly against a real kube-apiserver: the cases the whole-engine scenario in pulumi.test.ts
// does not reach. A create that runs again after its state record was lost keeps the first
// original; drift is seen by diff and repaired by update, and a diff whose read fails claims none;
// a concurrent writer's change (409) is read again and kept; a value someone else set
// is left on delete; a missing ConfigMap or a foreign annotation is refused, touching nothing.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ORIGINAL_ANNOTATION } from "../../components/kubeletConfigMap";
import { kubeletConfigProvider as provider } from "../../components/kubeletConfigMapResource";
import { plainHttpKubeconfig } from "../support/fakeKubeconfig";
import { startControlPlane, type ControlPlane } from "./support/controlPlane";
import { CONTROL_PLANE_TOOLS, toolchainTestOptions } from "./support/toolchain";

const options = toolchainTestOptions(CONTROL_PLANE_TOOLS);
const CM_PATH = "/api/v1/namespaces/kube-system/configmaps/kubelet-config";
const KUBEADM = fs.readFileSync(
  path.join(__dirname, "..", "fixtures", "kubeadm-kubelet-config.yaml"),
  "utf8",
);
const SWITCHED = KUBEADM.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n");
const ADDRESSES = {
  localDnsIp: "169.254.20.10",
  clusterDnsIp: "10.96.0.10",
  fallbackToKubeDns: false,
};

interface ConfigMap {
  metadata: { annotations?: Record<string, string>; resourceVersion?: string };
  data: { kubelet: string };
}

let cp: ControlPlane;

describe("kubelet-config provider on a real API server", { ...options, concurrency: 1 }, () => {
  before(async () => (cp = await startControlPlane()), { timeout: 5 * 60_000 });
  after(async () => cp?.stop());

  const inputs = () => ({ addresses: ADDRESSES, kubeconfig: cp.kubeconfigPath });
  const read = async () => {
    const r = await cp.api.get<ConfigMap>(CM_PATH);
    return r.status === 200 ? r.body : undefined;
  };
  const put = async (text: string, annotations?: Record<string, string>) => {
    const current = await read();
    const body = { metadata: { name: "kubelet-config", namespace: "kube-system", annotations } };
    const r =
      current === undefined
        ? await cp.api.create(CM_PATH.replace(/\/kubelet-config$/, ""), {
            ...body,
            data: { kubelet: text },
          })
        : await cp.api.update(CM_PATH, {
            ...body,
            metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion },
            data: { kubelet: text },
          });
    assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
  };
  const remove = () => cp.api.request("DELETE", CM_PATH);

  it("refuses a cluster without kubeadm's ConfigMap, naming it", async () => {
    await assert.rejects(
      provider.create!(inputs()),
      /kube-system\/kubelet-config not found: kubeadmKubeletConfig is for clusters made by kubeadm/,
    );
  });

  it("a create run again after a lost state record keeps the first original", async () => {
    await put(KUBEADM);
    const first = await provider.create!(inputs());
    assert.equal((await read())?.data.kubelet, SWITCHED);
    assert.equal(first.outs.original, "clusterDNS:\n- 10.96.0.10\n");
    // The engine lost the record (an interrupted up): the same create runs on the switched text.
    const again = await provider.create!(inputs());
    assert.equal(again.outs.original, first.outs.original, "from the annotation, not our value");
    assert.deepEqual(again.outs.originalClusterDns, ["10.96.0.10"]);
    await provider.delete!(again.id, again.outs);
    const restored = await read();
    assert.equal(restored?.data.kubelet, KUBEADM);
    assert.equal(restored?.metadata.annotations?.[ORIGINAL_ANNOTATION], undefined);
  });

  it("an update (fallbackToKubeDns on) keeps the first original", async () => {
    const created = await provider.create!(inputs());
    const news = { ...inputs(), addresses: { ...ADDRESSES, fallbackToKubeDns: true } };
    assert.deepEqual(await provider.diff!(created.id, created.outs, news), { changes: true });
    assert.deepEqual(await provider.diff!(created.id, created.outs, inputs()), { changes: false });
    const updated = await provider.update!(created.id, created.outs, news);
    assert.equal(
      (await read())?.data.kubelet,
      KUBEADM.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n- 10.96.0.10\n"),
    );
    await provider.delete!(created.id, updated.outs!);
    assert.equal((await read())?.data.kubelet, KUBEADM);
  });

  it("diff reports drift (the field put back by kubeadm or by hand); update repairs it", async () => {
    await put(KUBEADM);
    const created = await provider.create!(inputs());
    assert.deepEqual(await provider.diff!(created.id, created.outs, inputs()), { changes: false });
    // `kubeadm upgrade apply` writes the document again from its own config: kube-dns is back,
    // our annotation gone.
    await put(KUBEADM);
    assert.deepEqual(await provider.diff!(created.id, created.outs, inputs()), { changes: true });
    const repaired = await provider.update!(created.id, created.outs, inputs());
    assert.equal((await read())?.data.kubelet, SWITCHED);
    assert.equal(repaired.outs!.original, created.outs.original, "the original from state");
    assert.deepEqual(await provider.diff!(created.id, repaired.outs!, inputs()), {
      changes: false,
    });
    await provider.delete!(created.id, repaired.outs!);
    assert.equal((await read())?.data.kubelet, KUBEADM);
  });

  it("a diff whose read fails claims no drift: an API server error, or none answering", async () => {
    await put(KUBEADM);
    const created = await provider.create!(inputs());
    const failing = http.createServer((_req, res) => {
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", code: 500, message: "etcdserver: leader changed" }));
    });
    await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
    const port = (failing.address() as { port: number }).port;
    try {
      // Drifted for real, so that a read that got through would say so.
      await put(KUBEADM);
      const through = (kubeconfig: string) => ({ ...inputs(), kubeconfig });
      assert.deepEqual(await provider.diff!(created.id, created.outs, inputs()), { changes: true });
      assert.deepEqual(
        await provider.diff!(created.id, created.outs, through(plainHttpKubeconfig(port))),
        { changes: false },
        "an answer of 500",
      );
      failing.closeAllConnections();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
      assert.deepEqual(
        await provider.diff!(created.id, created.outs, through(plainHttpKubeconfig(port))),
        { changes: false },
        "nothing listening",
      );
    } finally {
      failing.closeAllConnections();
      failing.close();
    }
    await provider.delete!(created.id, created.outs);
    assert.equal((await read())?.data.kubelet, KUBEADM);
  });

  it("a write that loses a race to another writer is read again; their change stays", async () => {
    await put(KUBEADM);
    // The provider talks to the API server through a loopback proxy that, before it passes on
    // the provider's first update, lets another writer change the ConfigMap: the real API
    // server then refuses the provider's update (409, stale resourceVersion).
    const statuses: number[] = [];
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => void forward(req, Buffer.concat(chunks), res));
    });
    const forward = async (
      req: http.IncomingMessage,
      payload: Buffer,
      res: http.ServerResponse,
    ) => {
      if (req.method === "PUT" && statuses.length === 0) {
        const current = (await read())!;
        await put(
          current.data.kubelet.replace("rotateCertificates: true", "rotateCertificates: false"),
          current.metadata.annotations,
        );
      }
      const body = payload.length === 0 ? undefined : payload.toString("utf8");
      const contentType = req.headers["content-type"] ?? "application/json";
      const r = await cp.api.request(req.method!, req.url!, body, contentType);
      if (req.method === "PUT") statuses.push(r.status);
      res.writeHead(r.status, { "Content-Type": "application/json" });
      res.end(typeof r.body === "string" ? r.body : JSON.stringify(r.body));
    };
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const port = (proxy.address() as { port: number }).port;
      const created = await provider.create!({
        ...inputs(),
        kubeconfig: plainHttpKubeconfig(port),
      });
      assert.deepEqual(statuses, [409, 200], "refused once, then written from a fresh read");
      const theirs = KUBEADM.replace("rotateCertificates: true", "rotateCertificates: false");
      assert.equal(
        (await read())?.data.kubelet,
        theirs.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n"),
      );
      await provider.delete!(created.id, created.outs);
      assert.equal((await read())?.data.kubelet, theirs);
    } finally {
      proxy.close();
    }
  });

  it("delete leaves a value someone else set since, and removes the annotation", async () => {
    await put(KUBEADM);
    const created = await provider.create!(inputs());
    const current = await read();
    await put(
      current!.data.kubelet.replace("- 169.254.20.10", "- 10.96.0.53"),
      current!.metadata.annotations,
    );
    await provider.delete!(created.id, created.outs);
    const after = await read();
    assert.equal(after?.data.kubelet, KUBEADM.replace("- 10.96.0.10", "- 10.96.0.53"));
    assert.equal(after?.metadata.annotations?.[ORIGINAL_ANNOTATION], undefined);
  });

  it("refuses an annotation it did not write, changing nothing", async () => {
    await put(KUBEADM, { [ORIGINAL_ANNOTATION]: "{not json" });
    const before = await read();
    await assert.rejects(
      provider.create!(inputs()),
      new RegExp(`the annotation ${ORIGINAL_ANNOTATION} is not as this program writes it`),
    );
    assert.equal((await read())?.metadata.resourceVersion, before?.metadata.resourceVersion);
  });

  it("delete of a ConfigMap that is gone does nothing", async () => {
    await remove();
    await provider.delete!("kube-system/kubelet-config", {
      ...inputs(),
      clusterDns: ["169.254.20.10"],
      original: "clusterDNS:\n- 10.96.0.10\n",
      originalClusterDns: ["10.96.0.10"],
    });
    assert.equal(await read(), undefined);
  });
});
