// The live view's reads against a real kube-apiserver, run by ../kubeletLive.test.ts inside a
// network namespace of its own (`unshare --net`): the node addresses below exist only there, on
// its lo, where this script puts them. kube-apiserver refuses to proxy to loopback and link-local
// addresses, so the nodes need addresses like these, and the namespace keeps every packet here.
//
// Stand-in kubelets serve configz over HTTPS on their node's address, with a certificate signed by
// the control plane's CA (the API server verifies it and presents its own client certificate).
// The nodes: one on the cache, one on kube-dns, one whose kubelet accepts but never answers, one
// with nothing listening; and a name with no Node. The script prints one JSON line: the reads,
// the live view, and what the stand-ins saw (ScenarioResult).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as https from "node:https";
import type { TLSSocket } from "node:tls";
import { readKubeletClusterDns } from "../../../components/fleetSources";
import { liveView } from "../../../components/kubeletLive";
import { signServingCert, startControlPlane } from "../support/controlPlane";

const CACHE = "169.254.20.10";
const KUBE_DNS = "10.96.0.10";
/** Node name -> its address on this namespace's lo. */
const NODES = {
  "on-cache": "10.254.0.11",
  "on-kube-dns": "10.254.0.12",
  silent: "10.254.0.13",
  "no-kubelet": "10.254.0.14",
} as const;
const REQUEST_MS = 2_000;

export interface ScenarioResult {
  reads: Record<string, unknown>;
  view: ReturnType<typeof liveView>;
  /** What each stand-in saw: the path asked, and the client certificate's common name. */
  seen: { node: string; path: string; client: string }[];
  kubeletPort: number;
}

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

async function main(): Promise<void> {
  ip("link", "set", "lo", "up");
  for (const address of Object.values(NODES)) ip("addr", "add", `${address}/32`, "dev", "lo");

  const cp = await startControlPlane();
  const servers: https.Server[] = [];
  try {
    for (const [name, address] of Object.entries(NODES)) await cp.createNode(name, address);
    for (const name of Object.keys(NODES)) await cp.waitForNodeReady(name, 60_000);
    // The port the API server dials: the Node's kubelet endpoint as kwok left it, else 10250.
    const node = await cp.api.get<{
      status?: { daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } };
    }>("/api/v1/nodes/on-cache");
    const kubeletPort = node.body.status?.daemonEndpoints?.kubeletEndpoint?.Port || 10250;

    const seen: ScenarioResult["seen"] = [];
    const clusterDns: Record<string, string[]> = {
      "on-cache": [CACHE],
      "on-kube-dns": [KUBE_DNS],
    };
    for (const [name, address] of Object.entries(NODES)) {
      if (name === "no-kubelet") continue;
      const { cert, key } = signServingCert(cp.pki, `kubelet-${name}`, [address]);
      const server = https.createServer(
        {
          cert: readFileSync(cert),
          key: readFileSync(key),
          ca: readFileSync(cp.pki.caCert),
          requestCert: true,
          rejectUnauthorized: true,
        },
        (req, res) => {
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          seen.push({ node: name, path: req.url ?? "", client: String(peer.subject?.CN ?? "") });
          if (name === "silent") return; // accepts, never answers
          res.writeHead(200, { "Content-Type": "application/json" });
          res.end(JSON.stringify({ kubeletconfig: { clusterDNS: clusterDns[name] } }));
        },
      );
      await new Promise<void>((resolve) => server.listen(kubeletPort, address, resolve));
      servers.push(server);
    }

    const names = [...Object.keys(NODES), "no-such-node"];
    const reads = await readKubeletClusterDns({ kubeconfig: cp.kubeconfigPath }, names, {
      concurrency: 8,
      requestMs: REQUEST_MS,
      totalMs: 20_000,
    });
    // As if the last update had switched every node.
    const view = liveView(
      CACHE,
      names.map((name) => ({ name, switchedBefore: true })),
      reads,
    );
    const result: ScenarioResult = { reads, view, seen, kubeletPort };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    for (const server of servers) server.closeAllConnections();
    for (const server of servers) server.close();
    await cp.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
