// Proves the end-to-end harness before tests build on it: a real control plane (etcd,
// kube-apiserver, controller-manager, scheduler, kwok) starts on loopback; a Node becomes Ready
// through kwok; the project's own rendered NodeLocal DNSCache objects are accepted and the
// DaemonSet's pod is scheduled and Ready on that Node; on a systemd test node, node-cache (the
// stand-in) runs from the ConfigMap text and DaemonSet args read back from the API server, with a
// kube-dns stand-in behind it, and answers a cluster name and a forwarded non-cluster name on the
// link-local address; deleting the DaemonSet is in the audit log with its time; and stopping
// leaves no process, network namespace or temp dir. Skipped when the toolchain or systemd nodes
// are unavailable, failed instead in CI.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { nodeLocalDnsObjects } from "../../components/kubernetesObjects";
import { alerts } from "../../components/monitoring";
import { resolvedSettings } from "../support/settingsFixture";
import { startSystemdNode, systemdNodeTestOptions, type SystemdNode } from "../support/systemdNode";
import {
  expectOk,
  kubeDnsServiceSpec,
  startControlPlane,
  type ControlPlane,
} from "./support/controlPlane";
import {
  dnsQuery,
  startKubeDns,
  startNodeCache,
  type KubeDns,
  type NodeCache,
} from "./support/nodeCache";
import { CONTROL_PLANE_TOOLS, requireTools, toolchainTestOptions } from "./support/toolchain";
import { waitFor } from "./support/wait";

const TOOLS = [...CONTROL_PLANE_TOOLS, "node-cache"] as const;
const toolOptions = toolchainTestOptions(TOOLS);
const options = toolOptions.skip !== undefined ? toolOptions : systemdNodeTestOptions();

const NODE_NAME = "e2e-node-1";
const NODE_IP = "10.1.0.11";
const KUBE_DNS_IP = "10.96.0.10";
const LOCAL_DNS_IP = "169.254.20.10";
const NS = "/api/v1/namespaces/kube-system";
const DS_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
const PODS = `${NS}/pods?labelSelector=${encodeURIComponent("k8s-app=node-local-dns")}`;

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

/** Host pids whose network namespace is `netns` (a readlink of /proc/<pid>/ns/net). */
function pidsInNetns(netns: string): number[] {
  return fs
    .readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return fs.readlinkSync(`/proc/${e}/ns/net`) === netns;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("end-to-end harness", { ...options, timeout: 15 * 60_000 }, () => {
  let cp: ControlPlane | undefined;
  let node: SystemdNode | undefined;
  let kubeDns: KubeDns | undefined;
  let cache: NodeCache | undefined;

  before(async () => {
    const [plane, systemdNode] = await Promise.allSettled([
      startControlPlane(),
      startSystemdNode({ localDnsIp: LOCAL_DNS_IP, hostname: NODE_NAME }),
    ]);
    if (plane.status === "fulfilled") cp = plane.value;
    if (systemdNode.status === "fulfilled") node = systemdNode.value;
    for (const result of [plane, systemdNode]) {
      if (result.status === "rejected") throw result.reason;
    }
    console.log(`control plane started in ${cp!.timings.totalMs} ms`, cp!.timings.steps);
  });

  after(async () => {
    await cache?.stop().catch(() => {});
    await kubeDns?.stop().catch(() => {});
    await Promise.allSettled([cp?.stop(), node?.stop()]);
  });

  it("starts the control plane; a Node it is given becomes Ready through kwok", async () => {
    const ready = expectOk(await cp!.api.request("GET", "/readyz"), "/readyz");
    assert.equal(ready, "ok");
    await cp!.createNode(NODE_NAME, NODE_IP);
    await cp!.waitForNodeReady(NODE_NAME, 60_000);
    const { body } = await cp!.api.get<{
      metadata: { labels: Record<string, string> };
      status: {
        addresses: { type: string; address: string }[];
        nodeInfo: { kubeletVersion: string };
      };
    }>(`/api/v1/nodes/${NODE_NAME}`);
    assert.match(body.status.nodeInfo.kubeletVersion, /^kwok-/);
    assert.deepEqual(body.status.addresses, [
      { type: "InternalIP", address: NODE_IP },
      { type: "Hostname", address: NODE_NAME },
    ]);
    assert.equal(body.metadata.labels["kubernetes.io/hostname"], NODE_NAME);
  });

  it("accepts the rendered objects; the DaemonSet's pod is scheduled and Ready", async () => {
    const kubeDnsService = await cp!.createService(kubeDnsServiceSpec(KUBE_DNS_IP));
    assert.equal((kubeDnsService.spec as { clusterIP: string }).clusterIP, KUBE_DNS_IP);
    const objects = nodeLocalDnsObjects(resolvedSettings({ clusterDnsIp: KUBE_DNS_IP }));
    for (const object of objects.all) {
      await cp!.createObject(object);
    }
    // Available once Ready (kwok marks it Ready at once; a kubelet would after the probe's delay).
    const status = await waitFor(
      "DaemonSet node-local-dns available on 1 node",
      async () => {
        const { body } = await cp!.api.get<{ status?: Record<string, number> }>(DS_PATH);
        const s = body.status ?? {};
        return s.desiredNumberScheduled === 1 && s.numberAvailable === 1 ? s : undefined;
      },
      60_000,
    );
    assert.equal(status.numberReady, 1);
    const pods = expectOk(await cp!.api.list<Pod>(PODS), "list pods").items;
    assert.equal(pods.length, 1);
    assert.equal(pods[0]!.spec.nodeName, NODE_NAME);
    assert.equal(pods[0]!.status.phase, "Running");
    const readyCondition = pods[0]!.status.conditions?.find((c) => c.type === "Ready");
    assert.equal(readyCondition?.status, "True");
  });

  it("runs node-cache from the API server's ConfigMap and DaemonSet args; it answers", async () => {
    const binaryPath = requireTools(["node-cache"])["node-cache"];
    const configMap = expectOk(
      await cp!.api.get<{ data: { Corefile: string } }>(`${NS}/configmaps/node-local-dns`),
      "get ConfigMap",
    );
    const daemonSet = expectOk(
      await cp!.api.get<{
        spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
      }>(DS_PATH),
      "get DaemonSet",
    );
    const upstream = expectOk(
      await cp!.api.get<{ spec: { clusterIP: string } }>(`${NS}/services/kube-dns-upstream`),
      "get Service kube-dns-upstream",
    );
    const kubeDnsIp = expectOk(
      await cp!.api.get<{ spec: { clusterIP: string } }>(`${NS}/services/kube-dns`),
      "get Service kube-dns",
    ).spec.clusterIP;
    const container = daemonSet.spec.template.spec.containers.find((c) => c.name === "node-cache");
    assert.ok(container, "the DaemonSet has a node-cache container");

    await assert.rejects(
      startNodeCache(node!, {
        corefile: configMap.data.Corefile,
        args: [...container.args, "-setupiptables=false"],
        kubeDnsUpstreamIp: upstream.spec.clusterIP,
        binaryPath,
      }),
      /already contain -setupiptables=false/,
    );
    kubeDns = await startKubeDns(node!, { ip: kubeDnsIp, binaryPath });
    cache = await startNodeCache(node!, {
      corefile: configMap.data.Corefile,
      args: container.args,
      kubeDnsUpstreamIp: upstream.spec.clusterIP,
      binaryPath,
    });
    console.log(
      `kube-dns stand-in ready in ${kubeDns.startMs} ms, node-cache in ${cache.startMs} ms`,
    );
    assert.match(await cache.writtenCorefile(), /forward \. \/etc\/resolv\.conf/);

    const cluster = await dnsQuery(
      node!,
      LOCAL_DNS_IP,
      "kubernetes.default.svc.cluster.local",
      "A",
    );
    assert.equal(cluster.rcode, "NOERROR");
    assert.deepEqual(
      cluster.answers.map((a) => [a.type, a.data]),
      [["A", "10.96.0.1"]],
    );
    const external = await dnsQuery(node!, LOCAL_DNS_IP, "example.test", "A");
    assert.equal(external.rcode, "NOERROR");
    assert.deepEqual(
      external.answers.map((a) => [a.type, a.data]),
      [["A", "192.0.2.10"]],
    );
    const missing = await dnsQuery(node!, LOCAL_DNS_IP, "nope.svc.cluster.local", "A");
    assert.equal(missing.rcode, "NXDOMAIN");
    // Both went through the cache to the kube-dns stand-in: the cluster zone over TCP
    // (force_tcp), the rest through /etc/resolv.conf over UDP.
    const asked = await kubeDns.logs();
    assert.match(asked, /"A IN kubernetes\.default\.svc\.cluster\.local\. tcp /);
    assert.match(asked, /"A IN example\.test\. udp /);
  });

  it("serves every CoreDNS series the PrometheusRule's alerts select", async () => {
    // The alerts about failures need failures: kube-dns goes away, the cache's queries fail.
    await kubeDns!.stop();
    for (const name of ["gone.svc.cluster.local", "not-cached.example.test"]) {
      assert.equal((await dnsQuery(node!, LOCAL_DNS_IP, name, "A")).rcode, "SERVFAIL", name);
    }
    // Each `coredns_<name>{label="value",...}` selector of the rules, with the labels CoreDNS
    // sets (job is Prometheus's, from the ServiceMonitor).
    const exprs = alerts(resolvedSettings()).map((a) => a.expr);
    const selectors = exprs.flatMap((e) => [...e.matchAll(/\b(coredns_[a-z_]+)\{([^}]*)\}/g)]);
    assert.ok(selectors.length >= 3, "the rules select CoreDNS series");
    const missing = async () => {
      const scrape = await node!.run(
        `python3 -c 'import urllib.request; print(urllib.request.urlopen("http://${LOCAL_DNS_IP}:9253/metrics").read().decode())'`,
      );
      assert.equal(scrape.code, 0, scrape.stderr);
      const samples = scrape.stdout.split("\n").filter((l) => l.startsWith("coredns_"));
      return selectors
        .map(
          ([, metric, labels]) =>
            [metric!, labels!.split(",").filter((l) => !l.startsWith("job="))] as const,
        )
        .filter(
          ([metric, wanted]) =>
            !samples.some(
              (line) =>
                (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) &&
                wanted.every((label) => line.includes(label)),
            ),
        )
        .map(([metric, wanted]) => `${metric}{${wanted.join(",")}}`);
    };
    // The forward plugin counts health-check failures once it probes the failed upstream.
    let absent: string[] = [];
    await waitFor(
      "every selected series in the cache's metrics",
      async () => ((absent = await missing()).length === 0 ? true : undefined),
      15_000,
      500,
    ).catch(() => assert.fail(`not in the cache's metrics: ${absent.join(" ")}`));
  });

  it("records the DaemonSet's deletion, with its time, in the audit log", async () => {
    const sent = Date.now();
    const deleted = await cp!.api.delete(DS_PATH, { propagationPolicy: "Foreground" });
    const answered = Date.now();
    expectOk(deleted, "delete DaemonSet");
    await waitFor(
      "DaemonSet and its pod gone",
      async () => {
        const ds = await cp!.api.get(DS_PATH);
        const pods = await cp!.api.list<Pod>(PODS);
        return ds.status === 404 && pods.body.items.length === 0 ? true : undefined;
      },
      60_000,
    );
    const deletes = cp!.auditEvents({
      verb: "delete",
      resource: "daemonsets",
      namespace: "kube-system",
      name: "node-local-dns",
    });
    assert.equal(deletes.length, 1);
    const at = Date.parse(deletes[0]!.stageTimestamp);
    assert.ok(
      at >= sent - 1000 && at <= answered + 1000,
      `audit time ${deletes[0]!.stageTimestamp}`,
    );
    assert.equal(deletes[0]!.responseStatus?.code, 200);
    const creates = cp!.auditEvents({
      verb: "create",
      resource: "configmaps",
      name: "node-local-dns",
    });
    assert.equal(creates.length, 1);
    const podDeletes = cp!.auditEvents({
      verb: "delete",
      resource: "pods",
      namespace: "kube-system",
    });
    assert.ok(podDeletes.length >= 1, "the pod's deletion is logged too");
    await cp!.deleteNode(NODE_NAME);
    assert.equal((await cp!.api.get(`/api/v1/nodes/${NODE_NAME}`)).status, 404);
  });

  it("stops everything: no process, network namespace or temp dir is left", async () => {
    const pids = [...cp!.pids(), ...node!.hostPids()];
    const dirs = [cp!.dir, node!.dir];
    const netns = fs.readlinkSync(`/proc/${node!.leaderPid}/ns/net`);
    assert.ok(pidsInNetns(netns).length > 0);

    await cache!.stop();
    await kubeDns!.stop();
    assert.equal(
      (await node!.run("systemctl list-units --no-legend 'nodelocaldns-e2e-*'")).stdout,
      "",
    );
    assert.match(node!.readFile("/etc/resolv.conf").toString(), /no resolver/);
    assert.doesNotMatch((await node!.run("ip -o addr show dev lo")).stdout, / 10\.96\.0\.10\//);

    const stopStarted = Date.now();
    await Promise.all([cp!.stop(), node!.stop()]);
    await cp!.stop(); // idempotent
    console.log(`stopped in ${Date.now() - stopStarted} ms`);

    const alive = pids.filter((pid) => {
      try {
        return !/^\d+ \([^)]*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, []);
    assert.deepEqual(pidsInNetns(netns), []);
    assert.deepEqual(
      dirs.filter((dir) => fs.existsSync(dir)),
      [],
    );
  });
});
