// Example kubelet layouts of real clusters, as data for startSystemdNode({ files, enable }): the
// unit drop-ins, environment files and KubeletConfiguration files that decide kubelet's
// clusterDNS, and what the stand-in kubelet should then report. Tests pass them (or their own
// variants) to a node; the harness writes nothing of its own.

import type { NodeFile } from "./types";

export interface KubeletLayout {
  description: string;
  /** Files to pass as SystemdNodeOptions.files. */
  files: Record<string, NodeFile>;
  /** Units to pass as SystemdNodeOptions.enable. */
  enable: string[];
  /** The clusterDNS the stand-in kubelet starts with in this layout. */
  clusterDNS: string[];
  /** Where that clusterDNS comes from, as the stand-in's effective.json "sources" reports it. */
  clusterDNSSource: string;
}

const KUBEADM_DROP_IN = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;

/** kubeadm's /var/lib/kubelet/config.yaml (abridged) with the given clusterDNS. */
function kubeadmConfig(clusterDNS: string[]): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDNS:
${clusterDNS.map((ip) => `- ${ip}\n`).join("")}clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
`;
}

const KUBEADM_FLAGS_ENV = `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9"
`;

const KUBEADM_DROP_IN_PATH = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
const KUBEADM_CONFIG_PATH = "/var/lib/kubelet/config.yaml";

const kubeadm: KubeletLayout = {
  description:
    "kubeadm: 10-kubeadm.conf drop-in, clusterDNS in /var/lib/kubelet/config.yaml (--config)",
  files: {
    [KUBEADM_DROP_IN_PATH]: KUBEADM_DROP_IN,
    [KUBEADM_CONFIG_PATH]: kubeadmConfig(["10.96.0.10"]),
    "/var/lib/kubelet/kubeadm-flags.env": KUBEADM_FLAGS_ENV,
    "/etc/default/kubelet": "KUBELET_EXTRA_ARGS=\n",
  },
  enable: ["kubelet.service"],
  clusterDNS: ["10.96.0.10"],
  clusterDNSSource: KUBEADM_CONFIG_PATH,
};

const kubeadmExtraArgs: KubeletLayout = {
  description: "kubeadm, with --cluster-dns in KUBELET_EXTRA_ARGS of /etc/default/kubelet",
  files: {
    ...kubeadm.files,
    "/etc/default/kubelet":
      'KUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --cluster-dns=10.96.0.10 --max-pods=110"\n',
    [KUBEADM_CONFIG_PATH]: kubeadmConfig(["10.96.0.99"]),
  },
  enable: ["kubelet.service"],
  clusterDNS: ["10.96.0.10"],
  clusterDNSSource: "flag --cluster-dns",
};

const TKE_UNIT = `[Unit]
Description=kubelet
After=network.target

[Service]
EnvironmentFile=-/etc/kubernetes/kubelet
ExecStart=/usr/bin/kubelet $KUBELET_ADDRESS $KUBELET_PORT $AUTHENTICATION_TOKEN_WEBHOOK \\
  $AUTHORIZATION_MODE $CLIENT_CA_FILE $CLUSTER_DNS $CLUSTER_DOMAIN $EVICTION_HARD \\
  $FAIL_SWAP_ON $HOSTNAME_OVERRIDE $KUBECONFIG $MAX_PODS $NETWORK_PLUGIN \\
  $POD_INFRA_CONTAINER_IMAGE $ROTATE_CERTIFICATES $V
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

const TKE_ENV = `# kubelet flags for this TKE node, sourced by kubelet.service (EnvironmentFile).
KUBELET_ADDRESS="--address=0.0.0.0"
KUBELET_PORT="--port=10250"
AUTHENTICATION_TOKEN_WEBHOOK="--authentication-token-webhook=true"
AUTHORIZATION_MODE="--authorization-mode=Webhook"
CLIENT_CA_FILE="--client-ca-file=/etc/kubernetes/cluster-ca.crt"
CLUSTER_DNS="--cluster-dns=10.96.0.10"
CLUSTER_DOMAIN="--cluster-domain=cluster.local"
EVICTION_HARD="--eviction-hard=nodefs.available<10%,nodefs.inodesFree<5%,memory.available<100Mi"
FAIL_SWAP_ON="--fail-swap-on=false"
HOSTNAME_OVERRIDE="--hostname-override=10.0.0.5"
KUBECONFIG="--kubeconfig=/etc/kubernetes/kubelet-kubeconfig"
MAX_PODS="--max-pods=61"
NETWORK_PLUGIN="--network-plugin=cni"
POD_INFRA_CONTAINER_IMAGE="--pod-infra-container-image=ccr.ccs.tencentyun.com/library/pause:latest"
ROTATE_CERTIFICATES="--rotate-certificates=true"
V="--v=2"
`;

const tke: KubeletLayout = {
  description: "TKE: its own kubelet.service, flags in EnvironmentFile /etc/kubernetes/kubelet",
  files: {
    "/etc/systemd/system/kubelet.service": TKE_UNIT,
    "/etc/kubernetes/kubelet": TKE_ENV,
  },
  enable: ["kubelet.service"],
  clusterDNS: ["10.96.0.10"],
  clusterDNSSource: "flag --cluster-dns",
};

const CONFIG_DIR = "/etc/kubernetes/kubelet.conf.d";
const CONFIG_DIR_DNS = `${CONFIG_DIR}/50-cluster-dns.conf`;

const configDir: KubeletLayout = {
  description:
    "--config plus --config-dir drop-ins: a drop-in's clusterDNS overrides config.yaml's",
  files: {
    [KUBEADM_DROP_IN_PATH]: KUBEADM_DROP_IN,
    [KUBEADM_CONFIG_PATH]: kubeadmConfig(["10.96.0.99"]),
    "/var/lib/kubelet/kubeadm-flags.env": KUBEADM_FLAGS_ENV,
    "/etc/default/kubelet": `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
    [`${CONFIG_DIR}/10-logging.conf`]:
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" +
      "logging:\n  verbosity: 2\n",
    [CONFIG_DIR_DNS]:
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" +
      "clusterDNS:\n- 10.96.0.10\n",
  },
  enable: ["kubelet.service"],
  clusterDNS: ["10.96.0.10"],
  clusterDNSSource: CONFIG_DIR_DNS,
};

/** Named example layouts. */
export const KUBELET_LAYOUTS = { kubeadm, kubeadmExtraArgs, tke, configDir } as const;
