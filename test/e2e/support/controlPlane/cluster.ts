// The running control plane handed to tests: Node, Service and object helpers over the admin API
// client, the parsed audit log, and stop(), which stops every component by pid and removes the
// temp dir. Control planes not stopped yet are killed by an exit handler if the test process
// exits first (the reaper covers a test process that is killed outright).

import * as fs from "node:fs";
import type { KubernetesObject } from "../../../../components/kubernetesObjects";
import { waitFor } from "../wait";
import { collectionPath, expectOk, type KubeApi } from "./api";
import { filterAuditEvents, readAuditLog, type AuditEvent, type AuditFilter } from "./audit";
import type { Pki } from "./pki";
import { probe, waitReady } from "./probe";
import type { Processes } from "./processes";
import type { ControlPlane, ServiceSpec } from "./types";

const STOP_TERM_WAIT_MS = 15_000;
const NODE_READY_TIMEOUT_MS = 60_000;
const CONTROLLER_MANAGER_RESTART_TIMEOUT_MS = 60_000;

const live = new Set<Cluster>();
let exitHandlerInstalled = false;

export function installExitHandler(): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on("exit", () => {
      for (const cluster of live) {
        cluster.killSync();
      }
    });
  }
}

interface ClusterParts {
  dir: string;
  server: string;
  kubeconfigPath: string;
  auditLogPath: string;
  pki: Pki;
  api: KubeApi;
  procs: Processes;
  timings: { totalMs: number; steps: Record<string, number> };
}

export class Cluster implements ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  readonly pki: Pki;
  readonly api: KubeApi;
  readonly timings: { totalMs: number; steps: Record<string, number> };
  private readonly procs: Processes;
  private stopping: Promise<void> | undefined;

  constructor(parts: ClusterParts) {
    this.dir = parts.dir;
    this.server = parts.server;
    this.kubeconfigPath = parts.kubeconfigPath;
    this.auditLogPath = parts.auditLogPath;
    this.pki = parts.pki;
    this.api = parts.api;
    this.procs = parts.procs;
    this.timings = parts.timings;
    live.add(this);
  }

  async createNode(name: string, internalIP: string): Promise<Record<string, unknown>> {
    // With both addresses present, kwok's node-initialize stage leaves status.addresses alone
    // (with only one it rewrites the list).
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: { "kubernetes.io/os": "linux", "kubernetes.io/hostname": name },
      },
      status: {
        addresses: [
          { type: "InternalIP", address: internalIP },
          { type: "Hostname", address: name },
        ],
      },
    };
    return expectOk(await this.api.create("/api/v1/nodes", node), `create Node ${name}`);
  }

  async waitForNodeReady(name: string, timeoutMs = NODE_READY_TIMEOUT_MS): Promise<void> {
    await waitFor(
      `Node ${name} Ready`,
      async () => {
        const { status, body } = await this.api.get<{
          status?: { conditions?: { type: string; status: string }[] };
        }>(`/api/v1/nodes/${encodeURIComponent(name)}`);
        const ready = body.status?.conditions?.find((c) => c.type === "Ready");
        return status === 200 && ready?.status === "True" ? true : undefined;
      },
      timeoutMs,
    );
  }

  async restartControllerManager(): Promise<void> {
    const component = await this.procs.restart("kube-controller-manager", STOP_TERM_WAIT_MS);
    const port = component.args.find((a) => a.startsWith("--secure-port="))!.split("=")[1];
    await waitReady(
      component,
      async () => (await probe(`https://127.0.0.1:${port}/healthz`)) === 200,
      Date.now() + CONTROLLER_MANAGER_RESTART_TIMEOUT_MS,
    );
  }

  async deleteNode(name: string): Promise<void> {
    const response = await this.api.delete(`/api/v1/nodes/${encodeURIComponent(name)}`);
    if (response.status !== 404) {
      expectOk(response, `delete Node ${name}`);
    }
  }

  async createService(spec: ServiceSpec): Promise<Record<string, unknown>> {
    const service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        ...(spec.labels === undefined ? {} : { labels: spec.labels }),
      },
      spec: {
        ...(spec.clusterIP === undefined ? {} : { clusterIP: spec.clusterIP }),
        ...(spec.selector === undefined ? {} : { selector: spec.selector }),
        ports: spec.ports,
      },
    };
    return expectOk(
      await this.api.create(collectionPath("v1", "Service", spec.namespace), service),
      `create Service ${spec.namespace}/${spec.name}`,
    );
  }

  async createObject(object: KubernetesObject): Promise<Record<string, unknown>> {
    const { apiVersion, kind, metadata } = object;
    return expectOk(
      await this.api.create(collectionPath(apiVersion, kind, metadata.namespace), object),
      `create ${kind} ${metadata.namespace}/${metadata.name}`,
    );
  }

  auditEvents(filter?: AuditFilter): AuditEvent[] {
    const events = readAuditLog(this.auditLogPath);
    return filter === undefined ? events : filterAuditEvents(events, filter);
  }

  pids(): number[] {
    return this.procs.pids();
  }

  logs(): string {
    return this.procs.tails();
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const survivors = await this.procs.stop(
      [["kwok", "kube-scheduler", "kube-controller-manager"], ["kube-apiserver"], ["etcd"]],
      STOP_TERM_WAIT_MS,
    );
    fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    this.procs.releaseReaper();
    live.delete(this);
    if (survivors.length > 0) {
      throw new Error(`control plane: processes survived SIGKILL: ${survivors.join(", ")}`);
    }
  }

  /** Exit-handler path: SIGKILL everything, remove the dir, synchronously. */
  killSync(): void {
    this.procs.killSync();
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
}
