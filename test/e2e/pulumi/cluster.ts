// The world a real `pulumi up` of this project meets in the end-to-end tests: a local control
// plane (test/e2e/support/controlPlane.ts) holding kube-system/kube-dns, and systemd test nodes
// reachable over SSH from this machine's loopback (a forwarder per node address), each with a
// kube-dns stand-in on the ClusterIP. A pod runner plays kubelet for the node-local-dns
// DaemonSet: while the DaemonSet exists it runs the cache (the node-cache stand-in) on every
// node with the ConfigMap and args the API server holds, restarts it when they change, and stops
// it when the DaemonSet is deleted. As kubelet does, it lets a pod object go only once the cache
// has stopped (a finalizer it removes after that), so that when a deletion of the DaemonSet
// (foreground, as the kubernetes provider does it) completes, no cache runs on a node that had
// no other pod of it. Like kubelet, it also writes the pod's node-program volume
// (the ConfigMap node-local-dns-node-program) on the node, updates it in place when the
// ConfigMap changes, and removes the pod's directory with the pod. Every DNS packet stays inside
// a node's own namespace.
//
// Node networks (E2eClusterOptions.nodeNetwork):
// - "loopback" (default): each node's InternalIP is 127.0.0.<10 + i>, where the launcher forwards
//   its sshd. kube-apiserver refuses to proxy to loopback, so the live view reads `unknown`.
// - "netns": for a suite in a network namespace of its own (test/e2e/support/netns.ts): each
//   node's InternalIP is 10.254.0.<10 + i> on that namespace's lo, with its sshd and its kubelet
//   endpoint (verified HTTPS, to the stand-in kubelet's configz) forwarded there
//   (nodeForwarders.ts), so that the API server's node proxy reaches every node's configz.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { NODE_PROGRAM_DELIVERY } from "../../../components/nodeScript";
import { removePodDir, writeNodeProgramVolume } from "../../support/kubeletVolume";
import { KUBELET_LAYOUTS } from "../../support/systemdNode";
import { ProgramNode, startProgramNode } from "../../support/programNode";
import {
  expectOk,
  kubeDnsServiceSpec,
  startControlPlane,
  type ControlPlane,
} from "../support/controlPlane";
import { addLoopbackAddress, loopbackUp, requireOwnNetworkNamespace } from "../support/netns";
import { startKubeDns, startNodeCache, type KubeDns, type NodeCache } from "../support/nodeCache";
import { requireTools } from "../support/toolchain";
import { sleep } from "../support/wait";
import {
  advertisedKubeletPort,
  forwardKubeletEndpoint,
  forwardTcp,
  type Forwarder,
} from "./nodeForwarders";

export const KUBE_DNS_IP = "10.96.0.10";
const NS = "/api/v1/namespaces/kube-system";
const DS_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
const PODS = `${NS}/pods?labelSelector=${encodeURIComponent("k8s-app=node-local-dns")}`;
/** The pod runner's finalizer: the pod object stays until the runner has stopped its cache. */
const POD_FINALIZER = "e2e.nodelocaldns.io/cache-stopped";

export interface ClusterNode {
  name: string;
  program: ProgramNode;
  /** Where the node's sshd is reachable from this machine. */
  host: string;
  port: number;
  kubeDns: KubeDns;
  cache: NodeCache | undefined;
  /** What the running cache was started from (uid, args, Corefile). */
  cacheKey: string;
  /** The pod whose node-program volume is on the node, and the program written there. */
  programPod: { uid: string; program: string } | undefined;
}

export type NodeNetwork = "loopback" | "netns";

export interface E2eClusterOptions {
  /** Where the nodes' addresses are (see the header); default "loopback". */
  nodeNetwork?: NodeNetwork;
  /** kwok reports a pod Ready this long after it is scheduled; default: at once. */
  podReadyDelayMs?: number;
}

interface Pod {
  metadata: {
    name: string;
    resourceVersion: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
  spec: { nodeName?: string };
}

interface DaemonSet {
  metadata: { uid: string; deletionTimestamp?: string };
  spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
}

export class E2eCluster {
  readonly nodes: ClusterNode[] = [];
  private readonly forwarders: Forwarder[] = [];
  /** netns: each node's sshd and kubelet endpoint forwarders, stopped with the node. */
  private readonly nodeForwarders = new Map<string, Forwarder[]>();
  private running = false;
  private runner: Promise<void> | undefined;
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-e2e-cluster-"));
  private readonly nodeCacheBinary = requireTools(["node-cache"])["node-cache"];

  private constructor(
    readonly controlPlane: ControlPlane,
    readonly nodeNetwork: NodeNetwork,
  ) {}

  /** A control plane with kube-system/kube-dns, and `count` kubeadm-layout nodes. */
  static async start(count: number, options: E2eClusterOptions = {}): Promise<E2eCluster> {
    const nodeNetwork = options.nodeNetwork ?? "loopback";
    if (nodeNetwork === "netns") {
      requireOwnNetworkNamespace('E2eCluster with nodeNetwork "netns"');
      loopbackUp(); // the control plane listens on 127.0.0.1
    }
    const controlPlane = await startControlPlane({ podReadyDelayMs: options.podReadyDelayMs });
    const cluster = new E2eCluster(controlPlane, nodeNetwork);
    try {
      await cluster.controlPlane.createService(kubeDnsServiceSpec(KUBE_DNS_IP));
      await Promise.all(
        Array.from({ length: count }, (_, i) => cluster.addNode(`e2e-node-${i + 1}`, i + 1)),
      );
      cluster.nodes.sort((a, b) => a.name.localeCompare(b.name));
      cluster.running = true;
      cluster.runner = cluster.runPods();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /**
   * A kubeadm-layout machine joins as Node `name`, reachable on its address (127.0.0.<10 + index>,
   * or 10.254.0.<10 + index> in the netns node network) and port (a free one unless given: a
   * machine rejoining on its old address). Returns it, also in `nodes`.
   */
  async addNode(name: string, index: number, sshPort?: number): Promise<ClusterNode> {
    const netns = this.nodeNetwork === "netns";
    const host = netns ? `10.254.0.${10 + index}` : `127.0.0.${10 + index}`;
    if (netns) addLoopbackAddress(host);
    const port = sshPort ?? (await freePort(host));
    const program = await startProgramNode(
      KUBELET_LAYOUTS.kubeadm.files as Record<string, string>,
      // The launcher forwards loopback addresses only; the netns forwarders are ours (below).
      { hostname: name, sshForward: netns ? undefined : { address: host, port }, cache: false },
    );
    let kubeDns: KubeDns | undefined;
    try {
      kubeDns = await startKubeDns(program.node, {
        ip: KUBE_DNS_IP,
        binaryPath: this.nodeCacheBinary,
      });
      // The Node advertises the address its sshd is forwarded on: discovery dials it.
      await this.controlPlane.createNode(name, host);
      await this.controlPlane.waitForNodeReady(name, 60_000);
      if (netns) await this.forwardNodeNetwork(name, program, host, port);
    } catch (err) {
      // Not in `nodes` yet, so stop() would not find it.
      await this.stopNodeForwarders(name);
      await kubeDns?.stop();
      await program.stop();
      throw err;
    }
    const node: ClusterNode = {
      name,
      program,
      host,
      port,
      kubeDns,
      cache: undefined,
      cacheKey: "",
      programPod: undefined,
    };
    this.nodes.push(node);
    return node;
  }

  /** A machine gone for good: its Node deleted from the API server, the machine stopped. */
  async removeNode(name: string): Promise<void> {
    const index = this.nodes.findIndex((n) => n.name === name);
    if (index < 0) throw new Error(`no node ${name}`);
    const [node] = this.nodes.splice(index, 1);
    await this.controlPlane.deleteNode(name);
    await this.stopNodeForwarders(name);
    await node!.cache?.stop();
    await node!.kubeDns.stop();
    await node!.program.stop();
  }

  /** A second loopback address:port for a node's sshd (a socat forwarder, stopped with the cluster). */
  async forward(node: ClusterNode, address: string): Promise<number> {
    const port = await freePort(address);
    const leader = node.program.node.leaderPid;
    this.forwarders.push(await forwardTcp(this.dir, leader, { address, port }));
    return port;
  }

  /**
   * netns: the node's sshd on host:sshPort, and its kubelet endpoint on host at the port its Node
   * advertises, where the API server's node proxy dials it.
   */
  private async forwardNodeNetwork(
    name: string,
    program: ProgramNode,
    host: string,
    sshPort: number,
  ): Promise<void> {
    const forwarders: Forwarder[] = [];
    this.nodeForwarders.set(name, forwarders);
    const leader = program.node.leaderPid;
    forwarders.push(await forwardTcp(this.dir, leader, { address: host, port: sshPort }));
    const kubeletPort = await advertisedKubeletPort(this.controlPlane.api, name);
    const pki = this.controlPlane.pki;
    forwarders.push(
      await forwardKubeletEndpoint(this.dir, leader, pki, name, {
        address: host,
        port: kubeletPort,
      }),
    );
  }

  private async stopNodeForwarders(name: string): Promise<void> {
    await Promise.all((this.nodeForwarders.get(name) ?? []).map((f) => f.stop()));
    this.nodeForwarders.delete(name);
  }

  /** The pod runner: the cache follows the DaemonSet (see the header). */
  private async runPods(): Promise<void> {
    while (this.running) {
      try {
        await this.syncPods();
      } catch (err) {
        process.stderr.write(`e2e pod runner: ${String(err)}\n`);
      }
      await sleep(300);
    }
  }

  private async syncPods(): Promise<void> {
    const api = this.controlPlane.api;
    await this.holdPods();
    const ds = await api.get<DaemonSet>(DS_PATH);
    if (ds.status === 404) {
      for (const node of this.nodes) {
        await this.stopCache(node);
        await this.removeProgramVolume(node);
      }
      return;
    }
    const daemonSet = expectOk(ds, "get DaemonSet");
    // Being deleted (foreground): its pods are going, and no cache starts again.
    if (daemonSet.metadata.deletionTimestamp !== undefined) return;
    await this.syncProgramVolumes(daemonSet.metadata.uid);
    const cm = await api.get<{ data: { Corefile: string } }>(`${NS}/configmaps/node-local-dns`);
    const upstream = await api.get<{ spec: { clusterIP: string } }>(
      `${NS}/services/kube-dns-upstream`,
    );
    if (cm.status !== 200 || upstream.status !== 200) return;
    const container = daemonSet.spec.template.spec.containers.find((c) => c.name === "node-cache");
    if (container === undefined) return;
    const key = JSON.stringify([daemonSet.metadata.uid, container.args, cm.body.data.Corefile]);
    for (const node of this.nodes) {
      if (node.cacheKey === key) continue;
      await this.stopCache(node);
      node.cache = await startNodeCache(node.program.node, {
        corefile: cm.body.data.Corefile,
        args: container.args,
        kubeDnsUpstreamIp: upstream.body.spec.clusterIP,
        binaryPath: this.nodeCacheBinary,
      });
      node.cacheKey = key;
    }
  }

  /**
   * kubelet's part for pods that go: a pod being deleted stops the cache on its node (unless
   * another pod of the DaemonSet still runs there, as in an upgrade's surge), and only then may
   * its object go. Every pod gets the runner's finalizer for that; a patch that loses a race (409)
   * is retried by the next round.
   */
  private async holdPods(): Promise<void> {
    const api = this.controlPlane.api;
    const pods = expectOk(await api.list<Pod>(PODS), "list node-local-dns pods").items;
    for (const pod of pods) {
      const finalizers = pod.metadata.finalizers ?? [];
      const deleting = pod.metadata.deletionTimestamp !== undefined;
      const held = finalizers.includes(POD_FINALIZER);
      if (deleting === held) {
        if (deleting) {
          const node = this.nodes.find((n) => n.name === pod.spec.nodeName);
          const served = pods.some(
            (p) =>
              p.spec.nodeName === pod.spec.nodeName && p.metadata.deletionTimestamp === undefined,
          );
          if (node !== undefined && !served) await this.stopCache(node);
        }
        const next = deleting
          ? finalizers.filter((f) => f !== POD_FINALIZER)
          : [...finalizers, POD_FINALIZER];
        await api.patch(
          `${NS}/pods/${pod.metadata.name}`,
          { metadata: { finalizers: next, resourceVersion: pod.metadata.resourceVersion } },
          "merge",
        );
      }
    }
  }

  /** kubelet's part for the node-program volume: written at pod start, updated in place. */
  private async syncProgramVolumes(daemonSetUid: string): Promise<void> {
    const cm = await this.controlPlane.api.get<{ data: Record<string, string> }>(
      `${NS}/configmaps/${NODE_PROGRAM_DELIVERY.configMap}`,
    );
    if (cm.status !== 200) return; // kubelet would keep the pod from starting
    const program = cm.body.data[NODE_PROGRAM_DELIVERY.file] ?? "";
    for (const node of this.nodes) {
      const uid = podUid(daemonSetUid, node.name);
      if (node.programPod?.uid === uid && node.programPod.program === program) continue;
      if (node.programPod !== undefined && node.programPod.uid !== uid) {
        await this.removeProgramVolume(node);
      }
      await writeNodeProgramVolume(node.program.node, { podUid: uid, program });
      node.programPod = { uid, program };
    }
  }

  private async removeProgramVolume(node: ClusterNode): Promise<void> {
    if (node.programPod === undefined) return;
    await removePodDir(node.program.node, node.programPod.uid);
    node.programPod = undefined;
  }

  private async stopCache(node: ClusterNode): Promise<void> {
    await node.cache?.stop();
    node.cache = undefined;
    node.cacheKey = "";
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.runner?.catch(() => {});
    await Promise.all(this.forwarders.map((f) => f.stop()));
    await Promise.all([...this.nodeForwarders.keys()].map((name) => this.stopNodeForwarders(name)));
    await Promise.allSettled(
      this.nodes.map(async (n) => {
        await n.cache?.stop();
        await n.kubeDns.stop();
        await n.program.stop();
      }),
    );
    await this.controlPlane.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A pod UID for the DaemonSet's pod on a node, stable while the DaemonSet is the same object. */
function podUid(daemonSetUid: string, nodeName: string): string {
  const hex = createHash("sha256").update(`${daemonSetUid}/${nodeName}`).digest("hex");
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    hex.slice(12, 16),
    hex.slice(16, 20),
    hex.slice(20, 32),
  ].join("-");
}
