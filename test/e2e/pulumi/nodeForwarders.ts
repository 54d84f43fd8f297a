// socat forwarders from the network namespace the tests run in into a systemd test node's own:
// socat listens on an address here, and hands each connection to a socat that nsenter puts in the
// node's network namespace, dialling a port on the node's loopback.
//
// - forwardTcp: plain TCP, for the node's sshd (what the command provider dials).
// - forwardKubeletEndpoint: the node's kubelet endpoint. kube-apiserver's node proxy dials
//   https://<InternalIP>:<kubelet port>, verifies the serving certificate with the cluster CA
//   (--kubelet-certificate-authority) and presents its kubelet client certificate. socat ends
//   that TLS here, checking the client certificate against the same CA (verify=1), and passes
//   plain HTTP on to the stand-in kubelet's healthz/configz server, which listens on 127.0.0.1
//   inside the node only (kubelet-standin.py: healthzBindAddress:healthzPort).
//
// Each forwarder runs in a process group of its own (stop(): SIGKILL to the group, which takes
// the per-connection children along) under `setpriv --pdeathsig KILL`, so that one the test
// forgot still dies with the test process.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import { signServingCert, type KubeApi, type Pki } from "../support/controlPlane";
import { sleep } from "../support/wait";

/** kubelet's default port, for a Node that advertises none. */
export const DEFAULT_KUBELET_PORT = 10250;
/** Where the stand-in kubelet serves /healthz and /configz in the kubeadm layout. */
export const STANDIN_KUBELET_PORT = 10248;

const READY_ATTEMPTS = 100;
const READY_PAUSE_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;
const EXIT_WAIT_MS = 5_000;

export interface Forwarder {
  readonly address: string;
  readonly port: number;
  /** Kills the process group and waits (bounded) for socat to be gone. */
  stop(): Promise<void>;
}

/** address:port here -> 127.0.0.1:targetPort in the node whose container pid 1 is leaderPid. */
export async function forwardTcp(
  dir: string,
  leaderPid: number,
  listen: { address: string; port: number },
  targetPort = 22,
): Promise<Forwarder> {
  const { address, port } = listen;
  const forwarder = startSocat(
    dir,
    `forward-${address}-${port}`,
    leaderPid,
    targetPort,
    listen,
    `TCP4-LISTEN:${port},bind=${address},reuseaddr,fork`,
  );
  await waitReady(forwarder, () => canConnect(address, port));
  return forwarder;
}

/**
 * The kubelet endpoint of Node `nodeName` on address:port (verified HTTPS, see the header) ->
 * the stand-in kubelet's plain HTTP port in the node. The serving certificate is signed by the
 * control plane's CA for `address`. Ready once /healthz answers through it over verified TLS.
 */
export async function forwardKubeletEndpoint(
  dir: string,
  leaderPid: number,
  pki: Pki,
  nodeName: string,
  listen: { address: string; port: number },
): Promise<Forwarder> {
  const { address, port } = listen;
  const { cert, key } = signServingCert(pki, `kubelet-${nodeName}`, [address]);
  const tls = [`cert=${cert}`, `key=${key}`, `cafile=${pki.caCert}`, "verify=1"];
  const forwarder = startSocat(
    dir,
    `kubelet-${nodeName}`,
    leaderPid,
    STANDIN_KUBELET_PORT,
    listen,
    [`OPENSSL-LISTEN:${port}`, `bind=${address}`, ...tls, "reuseaddr", "fork"].join(","),
  );
  await waitReady(forwarder, () => healthzOverTls(pki, address, port));
  return forwarder;
}

/**
 * The port kube-apiserver dials for Node `name`: its status.daemonEndpoints.kubeletEndpoint as
 * kwok left it, else kubelet's default.
 */
export async function advertisedKubeletPort(api: KubeApi, name: string): Promise<number> {
  const node = await api.get<{
    status?: { daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } };
  }>(`/api/v1/nodes/${encodeURIComponent(name)}`);
  if (node.status !== 200) throw new Error(`get Node ${name}: HTTP ${node.status}`);
  return node.body.status?.daemonEndpoints?.kubeletEndpoint?.Port || DEFAULT_KUBELET_PORT;
}

interface RunningSocat extends Forwarder {
  readonly logPath: string;
  running(): boolean;
}

function startSocat(
  dir: string,
  name: string,
  leaderPid: number,
  targetPort: number,
  listen: { address: string; port: number },
  socatAddress: string,
): RunningSocat {
  // One connection: a socat in the node's network namespace, to the port on its loopback.
  const script = path.join(dir, `${name}.sh`);
  fs.writeFileSync(
    script,
    `#!/bin/bash\nexec nsenter -t ${leaderPid} -n -- socat STDIO TCP4:127.0.0.1:${targetPort}\n`,
    { mode: 0o700 },
  );
  const logPath = path.join(dir, `${name}.socat.log`);
  const child = spawn(
    "setpriv",
    ["--pdeathsig", "KILL", "--", "socat", "-lf", logPath, socatAddress, `EXEC:${script}`],
    { stdio: "ignore", detached: true },
  );
  if (child.pid === undefined) throw new Error(`${name}: could not start socat`);
  const pid = child.pid;
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  }).then(() => {
    exited = true;
  });
  child.unref();
  return {
    ...listen,
    logPath,
    running: () => !exited,
    async stop() {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
      await Promise.race([gone, sleep(EXIT_WAIT_MS)]);
    },
  };
}

async function waitReady(forwarder: RunningSocat, ready: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < READY_ATTEMPTS && forwarder.running(); i++) {
    if (await ready()) return;
    await sleep(READY_PAUSE_MS);
  }
  await forwarder.stop();
  let log = "";
  try {
    log = fs.readFileSync(forwarder.logPath, "utf8").trimEnd().split("\n").slice(-10).join("\n");
  } catch {
    log = "(no socat log)";
  }
  throw new Error(`socat does not forward ${forwarder.address}:${forwarder.port}:\n${log}`);
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

/** GET /healthz as the API server would ask: the cluster CA, the admin client certificate. */
function healthzOverTls(pki: Pki, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      {
        host,
        port,
        path: "/healthz",
        ca: fs.readFileSync(pki.caCert),
        cert: fs.readFileSync(pki.adminCert),
        key: fs.readFileSync(pki.adminKey),
        timeout: PROBE_TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode === 200));
        res.once("error", () => resolve(false));
      },
    );
    req.once("timeout", () => req.destroy());
    req.once("error", () => resolve(false));
  });
}
