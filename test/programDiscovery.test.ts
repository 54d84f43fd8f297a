// The program with discovery under the mock runtime: the Node list comes from a fake API server
// on loopback (answered through the real @kubernetes/client-node and a kubeconfig pointing at it),
// the last update's managedNodes from the mocked engine read of the program's own stack; the
// live view's configz reads from the same fake, through the node proxy path.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { plainHttpKubeconfig } from "./support/fakeKubeconfig";
import {
  collectProgramErrors,
  Registration,
  startMockRuntime,
  unwrapSecret,
} from "./support/mockRuntime";
import { outputValue } from "./support/outputValue";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V";

function apiNode(name: string, ip: string, role: string, ready = true) {
  return {
    metadata: { name, labels: { role } },
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    },
  };
}

const W2_SWITCHED_AT = "2026-11-20T08:00:00Z";

/** The node program's line for a switch done at `at`. */
function switchedLine(node: string, at: string): string {
  return (
    `nodelocaldns[${node}]: switched: cluster DNS 10.96.0.10 -> 169.254.20.10 in ` +
    `/var/lib/kubelet/config.yaml at ${at}\n`
  );
}

const NODE_LIST = {
  kind: "NodeList",
  apiVersion: "v1",
  metadata: {},
  items: [
    apiNode("w1", "10.0.0.1", "worker"),
    apiNode("w2", "10.0.0.2", "worker", false),
    apiNode("w3", "10.0.0.3", "worker", false),
    apiNode("db", "10.0.0.4", "database"),
  ],
};

const KUBE_PROXY_CONFIG_MAP = {
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: { name: "kube-proxy", namespace: "kube-system" },
  data: {
    "config.conf":
      "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n",
    "kubeconfig.conf": "apiVersion: v1\nkind: Config\n",
  },
};

const MANAGED_NODES_CONFIG_MAP = {
  kind: "ConfigMap",
  apiVersion: "v1",
  metadata: {
    name: "node-local-dns-managed-nodes",
    namespace: "kube-system",
    annotations: {
      "nodelocaldns.io/managed-nodes":
        '[\n{"name":"w2","host":"10.0.0.2","port":22},\n{"name":"lost","host":"10.0.0.5","port":22}\n]\n',
    },
  },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-discovery-"));
const requests: string[] = [];
const server = http.createServer((req, res) => {
  requests.push(`${req.method} ${req.url}`);
  if (req.url === "/api/v1/nodes/w1/proxy/configz") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kubeletconfig: { clusterDNS: ["10.96.0.10"] } }));
  } else if (req.url === "/api/v1/nodes/db/proxy/configz") {
    // Not selected, yet on the cache (switched by hand): reported.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kubeletconfig: { clusterDNS: ["169.254.20.10"] } }));
  } else if (req.url === "/api/v1/nodes/w2/proxy/configz") {
    // What the API server answers when it cannot reach a node's kubelet.
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify({ kind: "Status", code: 503, message: "error trying to reach service" }),
    );
  } else if (req.method === "GET" && req.url?.startsWith("/api/v1/nodes")) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(NODE_LIST));
  } else if (req.url === "/api/v1/namespaces/kube-system/configmaps/node-local-dns-managed-nodes") {
    // The record of the last update, which failed after switching "lost" (its outputs say
    // nothing of it); that machine has left the cluster since.
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(MANAGED_NODES_CONFIG_MAP));
  } else if (req.url === "/api/v1/namespaces/kube-system/configmaps/kube-proxy") {
    // kubeadm's kube-proxy ConfigMap, in nftables mode (the stack says ipvs: the default).
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(KUBE_PROXY_CONFIG_MAP));
  } else {
    res.writeHead(404).end();
  }
});
const warned: string[] = [];
const informed: string[] = [];
let regs: Registration[];
let program: typeof import("../index");
let kubeProxyModeInCluster: string;

let programErrors: unknown[];

before(async () => {
  programErrors = collectProgramErrors();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const kubeconfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(kubeconfig, plainHttpKubeconfig(port));
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
      "nodelocaldns:discover": JSON.stringify({ selector: "role=worker" }),
      "nodelocaldns:ssh": JSON.stringify({ knownHosts: `10.0.0.1 ${KEY}\n` }),
      "nodelocaldns:nodes": JSON.stringify([{ name: "w1", user: "ops" }]),
    },
    stackOutputs: {
      managedNodes: [
        { name: "w2", host: "10.0.0.2", port: 22, switchedAt: W2_SWITCHED_AT },
        { name: "gone", host: "10.0.0.9", port: 2222 },
      ],
    },
    commandStdout: {
      // w1's switch ran in this update; w2's Command kept the output of its switch in the last one.
      "nodelocaldns-kubelet-w1": switchedLine("w1", "2026-11-26T12:00:00Z"),
      "nodelocaldns-kubelet-w2": switchedLine("w2", W2_SWITCHED_AT),
    },
  });
  program = await import("../index");
  await outputValue(program.managedNodes);
  kubeProxyModeInCluster = await program.kubeProxyModeInCluster;
  await runtime.settled();
  regs = runtime.registrations;
});
after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const commandsOf = (node: string) =>
  regs.filter((r) => r.type === "command:remote:Command" && r.name.endsWith(`-${node}`));

describe("the program with discovery", () => {
  it("lists the Nodes once, through the kubeconfig's API server", () => {
    assert.deepEqual(
      requests.filter((r) => r.includes("/nodes") && !r.endsWith("/proxy/configz")),
      ["GET /api/v1/nodes?limit=500"],
    );
  });

  it("reads the live cluster DNS of every Node once, the selected first, and reports them", async () => {
    const configzReads = requests.filter((r) => r.endsWith("/proxy/configz"));
    assert.deepEqual(configzReads.slice(0, 4), [
      "GET /api/v1/nodes/w1/proxy/configz",
      "GET /api/v1/nodes/w2/proxy/configz",
      "GET /api/v1/nodes/db/proxy/configz",
      "GET /api/v1/nodes/w3/proxy/configz",
    ]);
    // w3 (not selected, no kubelet answer: 404 here) is what an unselected node is: not listed.
    assert.deepEqual(await program.kubeletLive, {
      w1: { state: "to switch", clusterDNS: ["10.96.0.10"] },
      w2: { state: "unknown", reason: "configz: HTTP 503: error trying to reach service" },
      db: { state: "on the cache, not selected", clusterDNS: ["169.254.20.10"] },
    });
    assert.deepEqual(
      informed.filter((m) => m.startsWith("kubelet live view")),
      [
        "kubelet live view (configz, before this update): on the cache 0/2; to switch: w1; " +
          "on the cache, not selected: db; " +
          "unknown: w2 (configz: HTTP 503: error trying to reach service)",
      ],
    );
  });

  it("reads the nodes switched in this update again; one that still runs kube-dns fails the update", async () => {
    // w1's switch says it switched now, but its kubelet still reports kube-dns. w2's switch did
    // not run (its output states the recorded switch): it is not read again.
    await assert.rejects(
      outputValue(program.kubeletVerified),
      new RegExp(
        "^Error: kubelet verification failed: after their switch, kubelet reports a cluster DNS " +
          "without 169\\.254\\.20\\.10 \\(configz\\) on w1 \\(10\\.96\\.0\\.10\\); the node program saw " +
          "the switch done; look at what that kubelet runs \\(README: Verification after the switch\\)$",
      ),
    );
    assert.deepEqual(requests.filter((r) => r.endsWith("/proxy/configz")).sort(), [
      "GET /api/v1/nodes/db/proxy/configz",
      "GET /api/v1/nodes/w1/proxy/configz",
      "GET /api/v1/nodes/w1/proxy/configz",
      "GET /api/v1/nodes/w2/proxy/configz",
      "GET /api/v1/nodes/w3/proxy/configz",
    ]);
    // What fails the update: the one error, once, as Pulumi's program runner reports it.
    assert.equal(programErrors.length, 1);
    assert.ok(programErrors[0] instanceof pulumi.RunError);
    assert.deepEqual(
      informed.filter((m) => m.startsWith("kubelet after the switch")),
      ["kubelet after the switch (configz): confirmed 0/1; failed: w1 (10.96.0.10)"],
    );
  });

  it("reads kube-proxy's mode from kube-system/kube-proxy and warns that the stack says another", () => {
    assert.ok(requests.includes("GET /api/v1/namespaces/kube-system/configmaps/kube-proxy"));
    assert.equal(kubeProxyModeInCluster, "nftables", "the stack output");
    const about = warned.filter((w) => w.includes("kubeProxyMode"));
    assert.deepEqual(about, [
      "nodelocaldns:kubeProxyMode: ipvs, but kube-system/kube-proxy (config.conf) says mode: " +
        "nftables; set kubeProxyMode: nftables (the objects and kubelet's switch are the same; " +
        "the README's notes for that mode are the ones that apply)",
    ]);
  });

  it("switches the selected Ready Node with its override and its known_hosts key", () => {
    const kubeletSwitch = commandsOf("w1").find((r) => r.name === "nodelocaldns-kubelet-w1");
    assert.ok(kubeletSwitch);
    const connection = unwrapSecret(kubeletSwitch.inputs.connection).value as Record<
      string,
      unknown
    >;
    assert.equal(connection.host, "10.0.0.1");
    assert.equal(connection.user, "ops");
    assert.equal(connection.hostKey, KEY);
    assert.equal(kubeletSwitch.inputs.create, "sudo -n bash -s create");
  });

  it("leaves a managed NotReady Node declared as it was; skips a new one", () => {
    assert.equal(commandsOf("w2").length, 3);
    for (const r of commandsOf("w2")) assert.match(String(r.inputs.delete), /bash -s delete$/);
    assert.equal(commandsOf("w3").length, 0);
    assert.equal(commandsOf("db").length, 0);
  });

  it("retires the nodes that left the cluster, managed or recorded: no create, update or delete", () => {
    const gone = [...commandsOf("gone"), ...commandsOf("lost")];
    assert.equal(gone.length, 6);
    for (const r of gone) {
      assert.equal(r.inputs.create, undefined);
      assert.equal(r.inputs.delete, undefined);
      assert.deepEqual(r.ignoreChanges, ["triggers"]);
    }
  });

  it("records the declared nodes before any switch runs: a ConfigMap the DaemonSet waits for", () => {
    assert.ok(
      requests.includes(
        "GET /api/v1/namespaces/kube-system/configmaps/node-local-dns-managed-nodes",
      ),
    );
    const record = regs.find((r) => r.name === "nodelocaldns-managed-nodes")!;
    assert.equal(record.type, "kubernetes:core/v1:ConfigMap");
    assert.deepEqual((record.inputs.metadata as { annotations: unknown }).annotations, {
      "nodelocaldns.io/managed-nodes":
        '[\n{"name":"w1","host":"10.0.0.1","port":22},\n{"name":"w2","host":"10.0.0.2","port":22}\n]\n',
    });
    assert.equal(record.inputs.data, undefined);
    const daemonSet = regs.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")!;
    assert.ok(daemonSet.dependencies.some((d) => d.endsWith("::nodelocaldns-managed-nodes")));
  });

  it("exports what the next update compares with, and says what it did in one line each", async () => {
    const managed = await outputValue(program.managedNodes);
    assert.deepEqual(managed, [
      { name: "w1", host: "10.0.0.1", port: 22, switchedAt: "2026-11-26T12:00:00Z" },
      { name: "w2", host: "10.0.0.2", port: 22, switchedAt: W2_SWITCHED_AT },
    ]);
    assert.deepEqual(
      warned.filter((w) => !w.includes("kubeProxyMode")),
      [
        "nodelocaldns:discover: not switched now: w3 (NotReady)",
        "nodelocaldns:discover: left as they are: w2 (NotReady)",
        "nodelocaldns:discover: left the cluster, retired without a revert: gone, lost",
        "nodelocaldns:nodes[*].hostKey: not pinned for 1 of 2 nodes (w2): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)",
      ],
    );
  });
});
