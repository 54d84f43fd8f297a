// What the program reads from the cluster when a read fails or finds nothing, under the mock
// runtime against a fake API server on loopback (answered through the real
// @kubernetes/client-node): kube-system/kube-proxy answers 500, so kube-proxy's mode is "not
// checked" with one info line that carries no secret; the ServiceMonitor CRD is installed and the
// PrometheusRule CRD is not, so only the ServiceMonitor is declared, with a warning for the other;
// the first two reads of the stack's own last outputs fail as a `file://` backend's may while the
// update writes its checkpoint, and the third gives the live view its record; the drifted node is
// repaired and confirmed, the cluster's unlisted Nodes are read for the reverse case, the pods
// created before the switch are listed, and the DaemonSet found is of an earlier version, so the
// update replaces each old pod first, with a warning.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { OLD_PODS_TEAR_DOWN_WARNING } from "../components/daemonSetRollout";
import { plainHttpKubeconfig } from "./support/fakeKubeconfig";
import { Registration, startMockRuntime } from "./support/mockRuntime";
import { outputValue } from "./support/outputValue";

const TOKEN = "fake-token-that-must-not-be-logged";
const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const DAEMON_SET = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
const earlierDaemonSet = {
  apiVersion: "apps/v1",
  kind: "DaemonSet",
  metadata: { name: "node-local-dns", namespace: "kube-system" },
  spec: {
    selector: { matchLabels: { "k8s-app": "node-local-dns" } },
    template: {
      metadata: { labels: { "k8s-app": "node-local-dns" } },
      spec: {
        containers: [
          {
            name: "node-cache",
            image: "x",
            args: ["-localip", "169.254.20.10", "-reloadwithsignal"],
          },
        ],
      },
    },
  },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-cluster-reads-"));
const requests: string[] = [];
let configzReads = 0;
/** Node a's switch time as the last update recorded it, and as its repair now states it. */
const SWITCHED_AT = "2026-11-26T08:00:00Z";
const REPAIRED_AT = "2026-11-26T10:00:00Z";
const podOnA = (name: string, created: string) => ({
  metadata: {
    namespace: "shop",
    name,
    creationTimestamp: created,
    labels: { "pod-template-hash": "5d9c" },
    ownerReferences: [{ kind: "ReplicaSet", name: "web-5d9c", controller: true }],
  },
  spec: { nodeName: "a" },
  status: { phase: "Running" },
});
const apiNode = (name: string) => ({
  metadata: { name },
  status: { conditions: [{ type: "Ready", status: "True" }] },
});
const POD_LIST = {
  kind: "PodList",
  apiVersion: "v1",
  metadata: {},
  items: [
    podOnA("web-5d9c-old", "2026-11-26T09:00:00Z"),
    podOnA("web-5d9c-new", "2026-11-26T11:00:00Z"),
  ],
};
const server = http.createServer((req, res) => {
  requests.push(`${req.method} ${req.url}`);
  if (req.url === "/api/v1/nodes/a/proxy/configz") {
    // Node a's file was put back: kubelet runs with kube-dns again, until its repair (the
    // switch's update, which the mock engine does not run) has run.
    configzReads += 1;
    const clusterDNS = configzReads === 1 ? ["10.96.0.10"] : ["169.254.20.10"];
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kubeletconfig: { clusterDNS } }));
  } else if (req.url === "/api/v1/nodes?limit=500") {
    // The cluster holds two Nodes besides a, which the stack does not list: b runs on the cache.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "NodeList", items: ["a", "b", "c"].map(apiNode) }));
  } else if (req.url === "/api/v1/nodes/b/proxy/configz") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kubeletconfig: { clusterDNS: ["169.254.20.10"] } }));
  } else if (req.url === "/api/v1/pods?limit=500") {
    // On node a, switched again at REPAIRED_AT (its drift repair): one pod from before, one
    // from after.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(POD_LIST));
  } else if (req.url === "/api/v1/namespaces/kube-system/configmaps/kube-proxy") {
    res.writeHead(500, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify({ kind: "Status", code: 500, message: "etcdserver: request timed out" }),
    );
  } else if (req.url === DAEMON_SET) {
    // The DaemonSet of an earlier version: node-cache without -skipteardown.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(earlierDaemonSet));
  } else if (req.url === `${CRDS}/servicemonitors.monitoring.coreos.com`) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "CustomResourceDefinition", metadata: { name: "x" } }));
  } else {
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", code: 404 }));
  }
});
const warned: string[] = [];
const informed: string[] = [];
let regs: Registration[];
let kubeProxyModeInCluster: string;
let kubeletLive: unknown;
let kubeletVerified: unknown;
let managedNodes: unknown;
let podsToRecreate: unknown;
let stackOutputReads: number;

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const kubeconfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(kubeconfig, plainHttpKubeconfig(port, TOKEN));
  process.env.KUBECONFIG = kubeconfig;
  const log = pulumi.log as {
    warn: (message: string) => Promise<void>;
    info: (message: string) => Promise<void>;
  };
  log.warn = async (message: string) => void warned.push(message);
  log.info = async (message: string) => void informed.push(message);

  const runtime = await startMockRuntime({
    config: {
      "nodelocaldns:clusterDnsIp": "10.96.0.10",
      "nodelocaldns:monitoring": JSON.stringify({ serviceMonitor: true, prometheusRule: true }),
      "nodelocaldns:nodes": JSON.stringify([
        {
          name: "a",
          host: "10.0.0.1",
          hostKey:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V",
        },
      ]),
    },
    stackOutputs: {
      managedNodes: [{ name: "a", host: "10.0.0.1", port: 22, switchedAt: SWITCHED_AT }],
    },
    failedStackOutputReads: 2,
    // The drift repair's switch, as the node program reports it.
    commandStdout: {
      "nodelocaldns-kubelet-a":
        "nodelocaldns[a]: switched: cluster DNS 10.96.0.10 -> 169.254.20.10 in " +
        `/var/lib/kubelet/config.yaml at ${REPAIRED_AT}\n`,
    },
  });
  const program = await import("../index");
  kubeProxyModeInCluster = await program.kubeProxyModeInCluster;
  kubeletLive = await program.kubeletLive;
  kubeletVerified = await outputValue(program.kubeletVerified);
  managedNodes = await outputValue(program.managedNodes);
  podsToRecreate = await outputValue(program.podsToRecreate);
  await runtime.settled();
  regs = runtime.registrations;
  stackOutputReads = runtime.stackOutputReads();
});
after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the program's cluster reads", () => {
  it("a failed read of kube-system/kube-proxy: not checked, one short info line, no secret", () => {
    assert.equal(kubeProxyModeInCluster, "not checked: cannot read kube-system/kube-proxy");
    const lines = informed.filter((line) => line.includes("kubeProxyMode"));
    assert.equal(lines.length, 1, informed.join("\n"));
    assert.match(lines[0]!, /^kubeProxyMode not checked: cannot read kube-system\/kube-proxy: /);
    assert.ok(lines[0]!.length <= 200, `a short line: ${lines[0]}`);
    for (const line of [...informed, ...warned]) assert.ok(!line.includes(TOKEN), line);
  });

  it("reads the stack's last outputs again when a read fails, and the live view gets them", () => {
    assert.equal(stackOutputReads, 3, "two failed reads, then one that answered");
    // Nodes listed by hand: the cluster's other Nodes are listed and read too; b, on the cache
    // though this stack never switched it, is reported; c (no answer) is not.
    assert.deepEqual(kubeletLive, {
      a: { state: "drifted", clusterDNS: ["10.96.0.10"] },
      b: { state: "on the cache, not selected", clusterDNS: ["169.254.20.10"] },
    });
    assert.ok(
      informed.includes(
        "kubelet live view (configz, before this update): on the cache 0/1; drifted: a; " +
          "on the cache, not selected: b",
      ),
      informed.join("\n"),
    );
  });

  it("repairs the drifted node: its switch's update carries a new repair number", () => {
    const kubeletSwitch = regs.find((r) => r.name === "nodelocaldns-kubelet-a")!;
    assert.equal(kubeletSwitch.inputs.update, "bash -s update repair-1");
    assert.equal(kubeletSwitch.inputs.create, "bash -s create");
    assert.deepEqual(managedNodes, [
      { name: "a", host: "10.0.0.1", port: 22, repairs: 1, switchedAt: REPAIRED_AT },
    ]);
    assert.ok(
      informed.includes(
        "kubelet drift repair: the last update switched a (kubelet runs 10.96.0.10); their switch runs again in this update",
      ),
      informed.join("\n"),
    );
  });

  it("reads the repaired node again after its switch and confirms it", () => {
    assert.deepEqual(kubeletVerified, { a: { state: "confirmed", clusterDNS: ["169.254.20.10"] } });
    assert.equal(configzReads, 2, "once before the update, once after the switch");
    assert.ok(
      informed.includes("kubelet after the switch (configz): confirmed 1/1"),
      informed.join("\n"),
    );
  });

  it("lists the pods created before their node's switch, with the command to restart them", () => {
    assert.ok(requests.includes("GET /api/v1/pods?limit=500"));
    assert.deepEqual(podsToRecreate, {
      count: 1,
      workloads: 1,
      commands: ["kubectl -n shop rollout restart deployment/web"],
      byHand: 0,
      others: [],
      unknownSwitchTime: [],
      // web-5d9c-new, set up after the repair's switch.
      afterUninstall: {
        count: 1,
        workloads: 1,
        commands: ["kubectl -n shop rollout restart deployment/web"],
        byHand: 0,
        others: [],
      },
    });
    for (const line of [
      "pods to recreate: 1, created before their node's switch and still asking kube-dns; " +
        "1 workload(s) to restart, e.g. kubectl -n shop rollout restart deployment/web; " +
        "0 pod(s) to recreate by hand; stack output podsToRecreate",
      "pods to recreate after an uninstall: 1, created while their node was switched (they keep " +
        "asking the cache's address); 1 workload(s) to restart, e.g. kubectl -n shop rollout " +
        "restart deployment/web; 0 pod(s) to recreate by hand; " +
        "stack output podsToRecreate.afterUninstall",
    ]) {
      assert.ok(informed.includes(line), informed.join("\n"));
    }
  });

  it("updates a DaemonSet of an earlier version the old way, each old pod first, and says so", () => {
    assert.ok(requests.includes(`GET ${DAEMON_SET}`));
    const ds = regs.find((r) => r.type === "kubernetes:apps/v1:DaemonSet");
    assert.deepEqual((ds?.inputs.spec as { updateStrategy: unknown }).updateStrategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 0, maxUnavailable: "10%" },
    });
    assert.ok(
      (
        ds?.inputs.spec as { template: { spec: { containers: { args: string[] }[] } } }
      ).template.spec.containers[0]!.args.includes("-skipteardown"),
      "its new pods leave the interface in place",
    );
    assert.equal(warned.filter((w) => w === OLD_PODS_TEAR_DOWN_WARNING).length, 1);
  });

  it("asks for each monitoring CRD and declares only what the cluster has", () => {
    assert.deepEqual(requests.filter((r) => r.includes(CRDS)).sort(), [
      `GET ${CRDS}/prometheusrules.monitoring.coreos.com`,
      `GET ${CRDS}/servicemonitors.monitoring.coreos.com`,
    ]);
    const custom = regs.filter((r) => r.type.startsWith("kubernetes:monitoring.coreos.com"));
    assert.deepEqual(
      custom.map((r) => [r.type, r.name]),
      [["kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "nodelocaldns-service-monitor"]],
    );
    assert.deepEqual(
      warned.filter((w) => w.includes("monitoring")),
      [
        "nodelocaldns:monitoring.prometheusRule: skipped: CRD prometheusrules.monitoring.coreos.com is not installed (install the Prometheus Operator's CRDs, then run up again)",
      ],
    );
  });
});
