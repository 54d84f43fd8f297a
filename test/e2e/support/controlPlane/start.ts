// startControlPlane(): PKI, then etcd, kube-apiserver, and kube-controller-manager,
// kube-scheduler and kwok together, each on free 127.0.0.1 ports picked now (a bind that loses a
// race to another test is retried on new ports), each waited for on its health endpoint. Every
// flag is here, with why it is set; a failed start stops what started and throws with the log
// tails.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { CONTROL_PLANE_TOOLS, requireTools } from "../toolchain";
import { KubeApi } from "./api";
import { DEFAULT_AUDIT_POLICY } from "./audit";
import { Cluster, installExitHandler } from "./cluster";
import { adminKubeconfig, makePki, type Pki } from "./pki";
import { probe, waitReady } from "./probe";
import { freePort, Processes, type Component } from "./processes";
import type { ControlPlane, ControlPlaneOptions } from "./types";

const DEFAULT_START_TIMEOUT_MS = 120_000;
const BIND_ATTEMPTS = 3;
const POD_READY_STAGE = "pod-ready.yaml";

/**
 * Starts a component on `ports` fresh free ports; when it dies of "address already in use"
 * (another test took a port between pick and bind), tries again on new ports.
 */
async function startOnFreePorts(
  procs: Processes,
  name: string,
  count: number,
  launch: (ports: number[]) => Component,
  ready: (ports: number[]) => Promise<boolean>,
  deadline: number,
): Promise<number[]> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      ports.push(await freePort());
    }
    const c = launch(ports);
    try {
      await waitReady(c, () => ready(ports), deadline);
      return ports;
    } catch (error) {
      const lostRace = !c.running() && /address already in use/.test(procs.tail(name, 60));
      if (!lostRace || attempt >= BIND_ATTEMPTS) {
        throw error;
      }
    }
  }
}

/**
 * kwok's -c arguments: every Stage file; with a pod-ready delay, pod-ready.yaml is replaced by a
 * copy in `dir` whose Stage waits that long, as a kubelet waits for a readiness probe's first run.
 */
function kwokStageArgs(stagesDir: string, dir: string, podReadyDelayMs?: number): string[] {
  return fs
    .readdirSync(stagesDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((f) => {
      const file = path.join(stagesDir, f);
      if (f !== POD_READY_STAGE || podReadyDelayMs === undefined) return ["-c", file];
      const stage = parseDocument(fs.readFileSync(file, "utf8"));
      stage.setIn(["spec", "delay"], { durationMilliseconds: podReadyDelayMs });
      const delayed = path.join(dir, `delayed-${f}`);
      fs.writeFileSync(delayed, stage.toString());
      return ["-c", delayed];
    });
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const tools = options.tools ?? requireTools(CONTROL_PLANE_TOOLS);
  const started = Date.now();
  const deadline = started + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    const t0 = Date.now();
    const value = await fn();
    steps[name] = Date.now() - t0;
    return value;
  };

  installExitHandler();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "e2e-controlplane-"));
  const procs = new Processes(dir);
  let cluster: Cluster | undefined;
  try {
    procs.startReaper();
    const pki: Pki = await step("pki", () => makePki(dir));
    const kubeconfigPath = path.join(dir, "admin.kubeconfig");
    const auditLogPath = path.join(dir, "audit.log");
    const auditPolicyPath = path.join(dir, "audit-policy.yaml");
    fs.writeFileSync(auditPolicyPath, options.auditPolicy ?? DEFAULT_AUDIT_POLICY);
    const f = (name: string): string => path.join(dir, name);

    // etcd: client and peer URLs on loopback only; no fsync (throwaway data).
    const [etcdPort] = await step("etcd", () =>
      startOnFreePorts(
        procs,
        "etcd",
        2,
        ([client, peer]) =>
          procs.spawn("etcd", tools.etcd, [
            "--name=e2e",
            `--data-dir=${f("etcd")}`,
            "--unsafe-no-fsync",
            `--listen-client-urls=http://127.0.0.1:${client}`,
            `--advertise-client-urls=http://127.0.0.1:${client}`,
            `--listen-peer-urls=http://127.0.0.1:${peer}`,
            `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
            `--initial-cluster=e2e=http://127.0.0.1:${peer}`,
            "--log-level=warn",
          ]),
        async ([client]) => (await probe(`http://127.0.0.1:${client}/health`)) === 200,
        deadline,
      ),
    );

    let api: KubeApi | undefined;
    const [apiPort] = await step("kube-apiserver", () =>
      startOnFreePorts(
        procs,
        "kube-apiserver",
        1,
        ([port]) => {
          api = new KubeApi(port!, pki);
          return procs.spawn("kube-apiserver", tools["kube-apiserver"], [
            `--etcd-servers=http://127.0.0.1:${etcdPort}`,
            "--bind-address=127.0.0.1",
            `--secure-port=${port}`,
            // 127.0.0.1 may not be an Endpoints address, so the reconciler of the `kubernetes`
            // Service's endpoints is off (nothing here connects to that Service).
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            `--cert-dir=${f("apiserver-certs")}`,
            `--tls-cert-file=${pki.serverCert}`,
            `--tls-private-key-file=${pki.serverKey}`,
            `--client-ca-file=${pki.caCert}`,
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            `--service-account-key-file=${pki.saPub}`,
            `--service-account-signing-key-file=${pki.saKey}`,
            `--service-cluster-ip-range=${options.serviceClusterIpRange ?? "10.96.0.0/16"}`,
            "--allow-privileged=true",
            `--audit-policy-file=${auditPolicyPath}`,
            `--audit-log-path=${auditLogPath}`,
            "--audit-log-mode=blocking",
            // One client (the test) and three controllers: no request throttling.
            "--enable-priority-and-fairness=false",
            // The node proxy (configz) dials a Node's InternalIP only: never its Hostname, which
            // would be looked up through the machine's resolver. Like kubeadm, it presents a
            // client certificate to kubelets and verifies theirs with the cluster's CA.
            "--kubelet-preferred-address-types=InternalIP",
            `--kubelet-client-certificate=${pki.adminCert}`,
            `--kubelet-client-key=${pki.adminKey}`,
            `--kubelet-certificate-authority=${pki.caCert}`,
            "--max-requests-inflight=0",
            "--max-mutating-requests-inflight=0",
            ...(options.extraApiServerArgs ?? []),
          ]);
        },
        async () => (await api!.request("GET", "/readyz")).status === 200,
        deadline,
      ),
    );
    const server = `https://127.0.0.1:${apiPort}`;
    fs.writeFileSync(kubeconfigPath, adminKubeconfig(pki, server), { mode: 0o600 });

    await step("controllers", () =>
      Promise.all([
        startOnFreePorts(
          procs,
          "kube-controller-manager",
          1,
          ([port]) =>
            procs.spawn("kube-controller-manager", tools["kube-controller-manager"], [
              `--kubeconfig=${kubeconfigPath}`,
              "--leader-elect=false",
              "--bind-address=127.0.0.1",
              `--secure-port=${port}`,
              `--cert-dir=${f("controller-manager-certs")}`,
              `--service-account-private-key-file=${pki.saKey}`,
              `--root-ca-file=${pki.caCert}`,
              "--use-service-account-credentials=false",
              "--kube-api-qps=1000",
              "--kube-api-burst=1000",
            ]),
          async ([port]) => (await probe(`https://127.0.0.1:${port}/healthz`)) === 200,
          deadline,
        ),
        startOnFreePorts(
          procs,
          "kube-scheduler",
          1,
          ([port]) =>
            procs.spawn("kube-scheduler", tools["kube-scheduler"], [
              `--kubeconfig=${kubeconfigPath}`,
              "--leader-elect=false",
              "--bind-address=127.0.0.1",
              `--secure-port=${port}`,
              `--cert-dir=${f("scheduler-certs")}`,
            ]),
          async ([port]) => (await probe(`https://127.0.0.1:${port}/healthz`)) === 200,
          deadline,
        ),
        // kwok: Node and Pod lifecycles from the Stage files (pod-delete included, so that
        // deleted pods go away without a kubelet); node leases renewed, so the node lifecycle
        // controller keeps its Nodes Ready; its health server on loopback.
        startOnFreePorts(
          procs,
          "kwok",
          1,
          ([port]) =>
            procs.spawn("kwok", tools.kwok, [
              `--kubeconfig=${kubeconfigPath}`,
              "--manage-all-nodes=true",
              "--node-lease-duration-seconds=40",
              `--server-address=127.0.0.1:${port}`,
              ...kwokStageArgs(tools["kwok-stages"], dir, options.podReadyDelayMs),
            ]),
          async ([port]) => (await probe(`http://127.0.0.1:${port}/healthz`)) === 200,
          deadline,
        ),
      ]),
    );

    cluster = new Cluster({
      dir,
      server,
      kubeconfigPath,
      auditLogPath,
      pki,
      api: api!,
      procs,
      timings: { totalMs: Date.now() - started, steps },
    });
    return cluster;
  } catch (error) {
    const logs = procs.tails();
    await procs.stop([], 5_000).catch(() => []);
    procs.releaseReaper();
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    throw new Error(`control plane did not start: ${(error as Error).message}\n${logs}`);
  }
}
