// The world a real `pulumi up` of this project meets in the end-to-end tests: a local control
// plane (test/e2e/support/controlPlane.ts) holding kube-system/kube-dns, and systemd test nodes
// reachable over SSH from this machine's loopback (a forwarder per node address), each with a
// kube-dns stand-in on the ClusterIP. A pod runner plays kubelet for the node-local-dns
// DaemonSet: while the DaemonSet exists it runs the cache (the node-cache stand-in) on every
// node with the ConfigMap and args the API server holds, restarts it when they change, and stops
// it when the DaemonSet is deleted. Like kubelet, it also writes the pod's node-program volume
// (the ConfigMap node-local-dns-node-program) on the node, updates it in place when the
// ConfigMap changes, and removes the pod's directory with the pod. Every DNS packet stays inside
// a node's own namespace.

import { spawn, type ChildProcess } from "node:child_process";
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
import { startKubeDns, startNodeCache, type KubeDns, type NodeCache } from "../support/nodeCache";
import { requireTools } from "../support/toolchain";
import { sleep } from "../support/wait";

export const KUBE_DNS_IP = "10.96.0.10";
const NS = "/api/v1/namespaces/kube-system";
const DS_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";

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

interface DaemonSet {
  metadata: { uid: string };
  spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
}

export class E2eCluster {
  readonly nodes: ClusterNode[] = [];
  private readonly forwarders: ChildProcess[] = [];
  private running = false;
  private runner: Promise<void> | undefined;
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-e2e-cluster-"));
  private readonly nodeCacheBinary = requireTools(["node-cache"])["node-cache"];

  private constructor(readonly controlPlane: ControlPlane) {}

  /** A control plane with kube-system/kube-dns, and `count` kubeadm-layout nodes. */
  static async start(count: number): Promise<E2eCluster> {
    const cluster = new E2eCluster(await startControlPlane());
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
   * A kubeadm-layout machine joins as Node `name`, reachable on 127.0.0.<10 + index>:port (a free
   * port unless given: a machine rejoining on its old address). Returns it, also in `nodes`.
   */
  async addNode(name: string, index: number, sshPort?: number): Promise<ClusterNode> {
    const host = `127.0.0.${10 + index}`;
    const port = sshPort ?? (await freePort(host));
    const program = await startProgramNode(
      KUBELET_LAYOUTS.kubeadm.files as Record<string, string>,
      {
        hostname: name,
        sshForward: { address: host, port },
        cache: false,
      },
    );
    const kubeDns = await startKubeDns(program.node, {
      ip: KUBE_DNS_IP,
      binaryPath: this.nodeCacheBinary,
    });
    // The Node advertises the loopback address its sshd is forwarded on: discovery dials it.
    await this.controlPlane.createNode(name, host);
    await this.controlPlane.waitForNodeReady(name, 60_000);
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
    await node!.cache?.stop();
    await node!.kubeDns.stop();
    await node!.program.stop();
  }

  /** A second loopback address:port for a node's sshd (a socat forwarder, stopped with the cluster). */
  async forward(node: ClusterNode, address: string): Promise<number> {
    const port = await freePort(address);
    const script = path.join(this.dir, `forward-${address}-${port}.sh`);
    fs.writeFileSync(
      script,
      `#!/bin/bash\nexec nsenter -t ${node.program.node.leaderPid} -n -- socat STDIO TCP4:127.0.0.1:22\n`,
      { mode: 0o700 },
    );
    const socat = spawn(
      "socat",
      [`TCP4-LISTEN:${port},bind=${address},reuseaddr,fork`, `EXEC:${script}`],
      {
        stdio: "ignore",
        detached: true,
      },
    );
    this.forwarders.push(socat);
    for (let i = 0; i < 100; i++) {
      if (await canConnect(address, port)) return port;
      await sleep(50);
    }
    throw new Error(`socat does not listen on ${address}:${port}`);
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
    const ds = await api.get<DaemonSet>(DS_PATH);
    if (ds.status === 404) {
      for (const node of this.nodes) {
        await this.stopCache(node);
        await this.removeProgramVolume(node);
      }
      return;
    }
    const daemonSet = expectOk(ds, "get DaemonSet");
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
    for (const socat of this.forwarders) {
      try {
        process.kill(-socat.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
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

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
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
