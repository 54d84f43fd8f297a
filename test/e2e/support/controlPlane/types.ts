// The public types of the end-to-end control plane (re-exported by ../controlPlane.ts): what
// startControlPlane() takes and what the handle it returns can do.

import type { KubernetesObject } from "../../../../components/kubernetesObjects";
import type { ToolPaths } from "../toolchain";
import type { KubeApi } from "./api";
import type { AuditEvent, AuditFilter } from "./audit";
import type { Pki } from "./pki";

export type ControlPlaneTool =
  "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kwok" | "kwok-stages";

export interface ControlPlaneOptions {
  /** Binary paths; default: requireTools(CONTROL_PLANE_TOOLS) from build.sh --paths. */
  tools?: ToolPaths<ControlPlaneTool>;
  /** --service-cluster-ip-range; default "10.96.0.0/16". */
  serviceClusterIpRange?: string;
  /** Audit policy YAML; default DEFAULT_AUDIT_POLICY (kube-system DaemonSets, ConfigMaps, ...). */
  auditPolicy?: string;
  /** Bound on the whole start, ready included; default 120 s. */
  startTimeoutMs?: number;
  /** kwok marks a pod Ready this long after it is scheduled (default: at once). */
  podReadyDelayMs?: number;
  /** Appended to kube-apiserver's flags (a later flag wins). */
  extraApiServerArgs?: string[];
}

export interface ServicePort {
  name?: string;
  port: number;
  protocol?: "UDP" | "TCP" | "SCTP";
  targetPort?: number;
}

export interface ServiceSpec {
  namespace: string;
  name: string;
  /** A fixed ClusterIP inside the service range, "None" for headless, absent: allocated. */
  clusterIP?: string;
  ports: ServicePort[];
  selector?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface ControlPlane {
  /** Host temp dir: PKI, kubeconfig, audit log, etcd data, a <component>.log per component. */
  readonly dir: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Admin kubeconfig (CA and client certificate inline), for kubectl-like clients and Pulumi. */
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  readonly pki: Pki;
  readonly api: KubeApi;
  /** Milliseconds from startControlPlane() to everything ready, and per step. */
  readonly timings: { totalMs: number; steps: Record<string, number> };
  /**
   * Creates a Node (labels kubernetes.io/os=linux, kubernetes.io/hostname=<name>; addresses
   * InternalIP and Hostname) for kwok to manage; it does not wait for Ready (waitForNodeReady).
   */
  createNode(name: string, internalIP: string): Promise<Record<string, unknown>>;
  waitForNodeReady(name: string, timeoutMs?: number): Promise<void>;
  deleteNode(name: string): Promise<void>;
  /**
   * Stops kube-controller-manager and starts it again, as a failover or a control-plane upgrade
   * would; resolves once it answers /healthz. Its controllers start over from fresh informers.
   */
  restartControllerManager(): Promise<void>;
  /** Creates a Service; answers the created object (spec.clusterIP filled in). */
  createService(spec: ServiceSpec): Promise<Record<string, unknown>>;
  /** Creates any namespaced object (e.g. one of nodeLocalDnsObjects().all) at its path. */
  createObject(object: KubernetesObject): Promise<Record<string, unknown>>;
  /** The audit log, parsed; with a filter only the matching events (answered ones by default). */
  auditEvents(filter?: AuditFilter): AuditEvent[];
  /** Pids of the components still running. */
  pids(): number[];
  /** The tails of every component's log. */
  logs(): string;
  /**
   * Stops every component by pid (SIGTERM, SIGKILL after a bound: kwok, scheduler and
   * controller-manager, then the API server, then etcd) and removes dir. Idempotent.
   */
  stop(): Promise<void>;
}
