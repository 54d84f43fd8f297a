// A throwaway Kubernetes control plane for end-to-end tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (which plays kubelet for the Nodes a test
// creates: it marks them Ready and runs their pods' lifecycle, deletion included), all built by
// test/e2e/toolchain/build.sh and run as plain processes on 127.0.0.1, on free ports picked at
// start (several control planes may run at once). Nothing listens beyond loopback and nothing
// connects anywhere else.
//
// - RBAC with a PKI made by openssl: the admin client certificate is in system:masters; the
//   kubeconfig (for the Pulumi kubernetes provider) has the CA and that certificate inline.
// - An audit log (default policy: every write to DaemonSets, ConfigMaps and Services in
//   kube-system with bodies), parsed by auditEvents(), so a test can tell when something was
//   deleted.
// - --service-cluster-ip-range=10.96.0.0/16 (kube-dns at 10.96.0.10), --allow-privileged=true.
// - stop() stops every component by pid (SIGTERM, then SIGKILL) and removes the temp dir; an
//   exit handler does the same for a control plane still running when the test process exits,
//   every component has SIGKILL as its parent-death signal, and a reaper process removes the temp
//   dir if the test process is killed outright.
//
// The parts live in controlPlane/: types.ts (public types), start.ts (flags, ports, readiness),
// cluster.ts (the handle), api.ts (JSON over node:https), pki.ts (openssl), audit.ts (policy and
// log), processes.ts and reaper.sh (processes and their cleanup).

export { startControlPlane } from "./controlPlane/start";
export {
  collectionPath,
  expectOk,
  KubeApi,
  type ApiList,
  type ApiResponse,
  type DeleteOptions,
  type PatchType,
  type WatchEvent,
} from "./controlPlane/api";
export {
  DEFAULT_AUDIT_POLICY,
  filterAuditEvents,
  type AuditEvent,
  type AuditFilter,
} from "./controlPlane/audit";
export { signServingCert, type Pki } from "./controlPlane/pki";
export type {
  ControlPlane,
  ControlPlaneOptions,
  ControlPlaneTool,
  ServicePort,
  ServiceSpec,
} from "./controlPlane/types";
import type { ServiceSpec } from "./controlPlane/types";

/** kube-system/kube-dns as a cluster has it: a fixed ClusterIP, DNS over UDP and TCP. */
export function kubeDnsServiceSpec(clusterIP = "10.96.0.10"): ServiceSpec {
  return {
    namespace: "kube-system",
    name: "kube-dns",
    clusterIP,
    labels: { "k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS" },
    selector: { "k8s-app": "kube-dns" },
    ports: [
      { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
      { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
    ],
  };
}
