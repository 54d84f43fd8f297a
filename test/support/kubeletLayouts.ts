// Kubelet layouts of real clusters, as the node program tests use them: the unit files, drop-ins,
// EnvironmentFiles and KubeletConfiguration files that decide kubelet's cluster DNS, and what the
// program must do with each (the file it edits or writes, and that file's bytes afterwards), or
// why it must refuse. The stand-in kubelet of the systemd test nodes resolves them as kubelet does.

import { replaceOnce } from "./programNode";

export interface SupportedLayout {
  name: string;
  files: Record<string, string>;
  /** Shell commands run before kubelet is restarted on the layout (systemctl set-environment). */
  setup?: string;
  /** Values of the program that differ from the tests' defaults. */
  params?: {
    kubelet?: { format: "auto" | "env-file" | "config-file" | "unit-file"; path?: string };
    fallbackToKubeDns?: boolean;
  };
  /** The file the program edits, or writes (its own drop-in). */
  source: string;
  /** How the program names it: env-file, unit-file, config-file or dropin. */
  kind: string;
  /** kubelet's cluster DNS before, and after the switch. */
  before: string[];
  after: string[];
  /** The source's bytes after the switch. */
  switched: string;
}

export interface RefusedLayout {
  name: string;
  files: Record<string, string>;
  setup?: string;
  params?: SupportedLayout["params"];
  /** The reason the program gives. */
  refusal: RegExp;
}

const KUBEADM_DROP_IN_PATH = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
const KUBEADM_DROP_IN = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;
const CONFIG = "/var/lib/kubelet/config.yaml";
const FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env";
const DEFAULT = "/etc/default/kubelet";
const FLAGS_ENV_TEXT =
  'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"\n';
const CONFIG_DIR = "/etc/kubernetes/kubelet.conf.d";
const OUR_DROPIN = `${CONFIG_DIR}/99-nodelocaldns.conf`;

/** kubeadm's /var/lib/kubelet/config.yaml (abridged) with the given clusterDNS lines. */
function kubeadmConfig(clusterDns = "clusterDNS:\n- 10.96.0.10\n"): string {
  return `# Written by kubeadm from the kube-system/kubelet-config ConfigMap.
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
cgroupDriver: systemd
# The resolver pods get (kube-dns ClusterIP).
${clusterDns}clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
rotateCertificates: true
`;
}

/** A kubeadm node: the package's drop-in, kubeadm's flags file and config, and extras. */
function kubeadm(extra: Record<string, string> = {}, config = kubeadmConfig()) {
  return {
    [KUBEADM_DROP_IN_PATH]: KUBEADM_DROP_IN,
    [FLAGS_ENV]: FLAGS_ENV_TEXT,
    [CONFIG]: config,
    ...extra,
  };
}

function dropIn(
  clusterDns: string,
  head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
) {
  return `${head}${clusterDns}`;
}

const TKE_UNIT = `[Unit]
Description=kubelet
After=network.target

[Service]
EnvironmentFile=-/etc/kubernetes/kubelet
ExecStart=/usr/bin/kubelet $KUBELET_ADDRESS $KUBELET_PORT $CLIENT_CA_FILE $CLUSTER_DNS \\
  $CLUSTER_DOMAIN $FAIL_SWAP_ON $HOSTNAME_OVERRIDE $KUBECONFIG $MAX_PODS $V
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`;
const TKE_ENV = `# kubelet flags for this TKE node, sourced by kubelet.service (EnvironmentFile).
#
# To try NodeLocal DNSCache by hand:
# CLUSTER_DNS="--cluster-dns=169.254.20.10"
KUBELET_ADDRESS="--address=0.0.0.0"
KUBELET_PORT="--port=10250"
CLIENT_CA_FILE="--client-ca-file=/etc/kubernetes/cluster-ca.crt"
CLUSTER_DNS="--cluster-dns=10.96.0.10"
CLUSTER_DOMAIN="--cluster-domain=cluster.local"
FAIL_SWAP_ON="--fail-swap-on=false"
HOSTNAME_OVERRIDE="--hostname-override=10.0.0.5"
KUBECONFIG="--kubeconfig=/etc/kubernetes/kubelet-kubeconfig"
MAX_PODS="--max-pods=61"
V="--v=2"
`;

const RHEL_UNIT = `[Service]
EnvironmentFile=-/etc/sysconfig/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_EXTRA_ARGS
`;

const EKS_JSON = `{
  "kind": "KubeletConfiguration",
  "apiVersion": "kubelet.config.k8s.io/v1beta1",
  "address": "0.0.0.0",
  "clusterDomain": "cluster.local",
  "clusterDNS": [
    "10.96.0.10"
  ],
  "healthzBindAddress": "127.0.0.1",
  "healthzPort": 10248,
  "maxPods": 58
}
`;
const EKS_CONFIG = "/etc/kubernetes/kubelet/kubelet-config.json";

const KUBESPRAY_CONFIG = "/etc/kubernetes/kubelet-config.yaml";
const KUBESPRAY_UNIT = `[Service]
EnvironmentFile=-/etc/kubernetes/kubelet.env
ExecStart=
ExecStart=/usr/bin/kubelet $KUBE_LOGTOSTDERR $KUBE_LOG_LEVEL $KUBELET_API_SERVER $KUBELET_ADDRESS $KUBELET_PORT $KUBELET_HOSTNAME $KUBELET_ARGS
`;
const KUBESPRAY_ENV = `KUBE_LOGTOSTDERR="--logtostderr=true"
KUBE_LOG_LEVEL="--v=2"
KUBELET_ADDRESS="--node-ip=10.0.0.5"
KUBELET_HOSTNAME="--hostname-override=node1"
KUBELET_ARGS="--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\
--config=/etc/kubernetes/kubelet-config.yaml \\
--kubeconfig=/etc/kubernetes/kubelet.conf"
`;
const KUBESPRAY_YAML = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeStatusUpdateFrequency: "10s"
clusterDomain: cluster.local
clusterDNS:
- 10.96.0.10
maxPods: 110
`;

const SWITCHED_CONFIG = kubeadmConfig("clusterDNS:\n- 169.254.20.10\n");

export const SUPPORTED_LAYOUTS: SupportedLayout[] = [
  {
    name: "kubeadm: clusterDNS in /var/lib/kubelet/config.yaml (--config)",
    files: kubeadm(),
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: SWITCHED_CONFIG,
  },
  {
    name: "kubeadm, --cluster-dns in KUBELET_EXTRA_ARGS of /etc/default/kubelet: the flag beats config.yaml",
    files: kubeadm(
      {
        [DEFAULT]:
          'KUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --cluster-dns=10.96.0.10 --max-pods=110"\n',
      },
      kubeadmConfig("clusterDNS:\n- 10.96.0.99\n"),
    ),
    source: DEFAULT,
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched:
      'KUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --cluster-dns=169.254.20.10 --max-pods=110"\n',
  },
  {
    name: "kubeadm, --cluster-dns in kubeadm-flags.env (KUBELET_KUBEADM_ARGS)",
    files: kubeadm({
      [FLAGS_ENV]: FLAGS_ENV_TEXT.replace('"\n', ' --cluster-dns=10.96.0.10"\n'),
    }),
    source: FLAGS_ENV,
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: FLAGS_ENV_TEXT.replace('"\n', ' --cluster-dns=169.254.20.10"\n'),
  },
  {
    name: "kubeadm, --cluster-dns in a systemd drop-in's Environment= (daemon-reload needed)",
    files: kubeadm({
      "/etc/systemd/system/kubelet.service.d/20-dns.conf":
        '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=--cluster-dns=10.96.0.10"\n',
    }),
    source: "/etc/systemd/system/kubelet.service.d/20-dns.conf",
    kind: "unit-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=--cluster-dns=169.254.20.10"\n',
  },
  {
    name: "--cluster-dns written into ExecStart of a drop-in",
    files: kubeadm({
      "/etc/systemd/system/kubelet.service.d/90-exec.conf":
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --cluster-dns=10.96.0.10 $KUBELET_EXTRA_ARGS\n",
    }),
    source: "/etc/systemd/system/kubelet.service.d/90-exec.conf",
    kind: "unit-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched:
      "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --cluster-dns=169.254.20.10 $KUBELET_EXTRA_ARGS\n",
  },
  {
    name: "TKE: its own kubelet.service, CLUSTER_DNS in EnvironmentFile /etc/kubernetes/kubelet (a commented hint stays)",
    files: { "/etc/systemd/system/kubelet.service": TKE_UNIT, "/etc/kubernetes/kubelet": TKE_ENV },
    source: "/etc/kubernetes/kubelet",
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: replaceOnce(
      TKE_ENV,
      'CLUSTER_DNS="--cluster-dns=10.96.0.10"',
      'CLUSTER_DNS="--cluster-dns=169.254.20.10"',
    ),
  },
  {
    name: "RHEL packages: KUBELET_EXTRA_ARGS in /etc/sysconfig/kubelet, single quotes, export",
    files: {
      "/etc/systemd/system/kubelet.service.d/10-sysconfig.conf": RHEL_UNIT,
      "/etc/sysconfig/kubelet":
        "KUBELET_EXTRA_ARGS='--node-labels=role=worker --cluster-dns=10.96.0.10'\n",
    },
    source: "/etc/sysconfig/kubelet",
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: "KUBELET_EXTRA_ARGS='--node-labels=role=worker --cluster-dns=169.254.20.10'\n",
  },
  {
    name: "--cluster-dns and its value as two words (--cluster-dns 10.96.0.10)",
    files: kubeadm({ [DEFAULT]: "KUBELET_EXTRA_ARGS=--cluster-dns 10.96.0.10 --max-pods=90\n" }),
    source: DEFAULT,
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: "KUBELET_EXTRA_ARGS=--cluster-dns 169.254.20.10 --max-pods=90\n",
  },
  {
    name: "a --cluster-dns on a # or ; comment line of an EnvironmentFile or a drop-in is not a setting",
    files: kubeadm({
      [FLAGS_ENV]: FLAGS_ENV_TEXT.replace('"\n', ' --cluster-dns=10.96.0.10"\n'),
      [DEFAULT]:
        '# KUBELET_EXTRA_ARGS="--cluster-dns=169.254.20.10" to try the cache\nKUBELET_EXTRA_ARGS=\n',
      "/etc/systemd/system/kubelet.service.d/30-note.conf":
        "; Environment=KUBELET_EXTRA_ARGS=--cluster-dns=169.254.20.10\n[Service]\n",
    }),
    source: FLAGS_ENV,
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: FLAGS_ENV_TEXT.replace('"\n', ' --cluster-dns=169.254.20.10"\n'),
  },
  {
    name: "--config-dir, a drop-in sets clusterDNS: the program writes its own drop-in, sorting last",
    files: kubeadm(
      {
        [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
        [`${CONFIG_DIR}/10-logging.conf`]: dropIn("logging:\n  verbosity: 2\n"),
        [`${CONFIG_DIR}/50-cluster-dns.conf`]: dropIn("clusterDNS:\n- 10.96.0.10\n"),
      },
      kubeadmConfig("clusterDNS:\n- 10.96.0.99\n"),
    ),
    source: OUR_DROPIN,
    kind: "dropin",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched:
      "# Written by nodelocaldns for node node-1: kubelet's cluster DNS is the\n" +
      "# node-local DNS cache. Removed by its revert (pulumi destroy). Do not edit.\n" +
      dropIn("clusterDNS:\n- 169.254.20.10\n"),
  },
  {
    name: "--config-dir without a clusterDNS drop-in: the program's drop-in overrides config.yaml",
    files: kubeadm({
      [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
      [`${CONFIG_DIR}/10-logging.conf`]: dropIn("logging:\n  verbosity: 2\n"),
    }),
    source: OUR_DROPIN,
    kind: "dropin",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched:
      "# Written by nodelocaldns for node node-1: kubelet's cluster DNS is the\n" +
      "# node-local DNS cache. Removed by its revert (pulumi destroy). Do not edit.\n" +
      dropIn("clusterDNS:\n- 169.254.20.10\n"),
  },
  {
    name: "--config-dir, a drop-in that sorts after the program's sets clusterDNS: that one is edited",
    files: kubeadm({
      [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
      [`${CONFIG_DIR}/zz-site.conf`]: dropIn("clusterDNS: [10.96.0.10]\nmaxPods: 90\n"),
    }),
    source: `${CONFIG_DIR}/zz-site.conf`,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: dropIn("clusterDNS: [169.254.20.10]\nmaxPods: 90\n"),
  },
  {
    name: "--config-dir, kubelet.path pins config.yaml: config.yaml is edited, no drop-in written",
    files: kubeadm({
      [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
      [`${CONFIG_DIR}/10-logging.conf`]: dropIn("logging:\n  verbosity: 2\n"),
    }),
    params: { kubelet: { format: "config-file", path: CONFIG } },
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: SWITCHED_CONFIG,
  },
  {
    name: "EKS: JSON KubeletConfiguration /etc/kubernetes/kubelet/kubelet-config.json, one IP per line",
    files: {
      "/etc/systemd/system/kubelet.service.d/10-eks.conf": `[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config ${EKS_CONFIG} --node-ip=10.0.0.5\n`,
      [EKS_CONFIG]: EKS_JSON,
    },
    source: EKS_CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: EKS_JSON.replace('"10.96.0.10"', '"169.254.20.10"'),
  },
  {
    name: "kubespray: --config /etc/kubernetes/kubelet-config.yaml in KUBELET_ARGS of kubelet.env",
    files: {
      "/etc/systemd/system/kubelet.service.d/10-kubespray.conf": KUBESPRAY_UNIT,
      "/etc/kubernetes/kubelet.env": KUBESPRAY_ENV,
      [KUBESPRAY_CONFIG]: KUBESPRAY_YAML,
    },
    source: KUBESPRAY_CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched: KUBESPRAY_YAML.replace("- 10.96.0.10", "- 169.254.20.10"),
  },
  {
    name: "dual-stack [10.96.0.10, fd00::10]: only the IPv4 entry changes",
    files: kubeadm({}, kubeadmConfig("clusterDNS:\n- 10.96.0.10\n- FD00::0010\n")),
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10", "FD00::0010"],
    after: ["169.254.20.10", "FD00::0010"],
    switched: kubeadmConfig("clusterDNS:\n- 169.254.20.10\n- FD00::0010\n"),
  },
  {
    name: "YAML flow list with quotes, CRLF line ends, no final newline",
    files: kubeadm(
      {},
      'apiVersion: kubelet.config.k8s.io/v1beta1\r\nkind: KubeletConfiguration\r\nclusterDNS: [ "10.96.0.10" ] # kube-dns\r\nclusterDomain: cluster.local',
    ),
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10"],
    switched:
      'apiVersion: kubelet.config.k8s.io/v1beta1\r\nkind: KubeletConfiguration\r\nclusterDNS: [ "169.254.20.10" ] # kube-dns\r\nclusterDomain: cluster.local',
  },
  {
    name: "fallbackToKubeDns, kubeadm config.yaml: one block entry becomes two",
    files: kubeadm(),
    params: { fallbackToKubeDns: true },
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10", "10.96.0.10"],
    switched: kubeadmConfig("clusterDNS:\n- 169.254.20.10\n- 10.96.0.10\n"),
  },
  {
    name: "fallbackToKubeDns, --cluster-dns in /etc/default/kubelet: a comma list",
    files: kubeadm({ [DEFAULT]: 'KUBELET_EXTRA_ARGS="--cluster-dns=10.96.0.10 --max-pods=110"\n' }),
    params: { fallbackToKubeDns: true },
    source: DEFAULT,
    kind: "env-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10", "10.96.0.10"],
    switched: 'KUBELET_EXTRA_ARGS="--cluster-dns=169.254.20.10,10.96.0.10 --max-pods=110"\n',
  },
  {
    name: "fallbackToKubeDns, EKS JSON with one IP per line: the new entry on a line of its own",
    files: {
      "/etc/systemd/system/kubelet.service.d/10-eks.conf": `[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config ${EKS_CONFIG} --node-ip=10.0.0.5\n`,
      [EKS_CONFIG]: EKS_JSON,
    },
    params: { fallbackToKubeDns: true },
    source: EKS_CONFIG,
    kind: "config-file",
    before: ["10.96.0.10"],
    after: ["169.254.20.10", "10.96.0.10"],
    switched: EKS_JSON.replace('"10.96.0.10"', '"169.254.20.10",\n    "10.96.0.10"'),
  },
  {
    name: "fallbackToKubeDns, dual-stack [10.96.0.10, fd00::10]: three entries, kubelet's limit",
    files: kubeadm({}, kubeadmConfig("clusterDNS:\n- 10.96.0.10\n- fd00::10\n")),
    params: { fallbackToKubeDns: true },
    source: CONFIG,
    kind: "config-file",
    before: ["10.96.0.10", "fd00::10"],
    after: ["169.254.20.10", "10.96.0.10", "fd00::10"],
    switched: kubeadmConfig("clusterDNS:\n- 169.254.20.10\n- 10.96.0.10\n- fd00::10\n"),
  },
  {
    name: "fallbackToKubeDns, --config-dir: the program's drop-in lists both",
    files: kubeadm({
      [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
      [`${CONFIG_DIR}/10-logging.conf`]: dropIn("logging:\n  verbosity: 2\n"),
    }),
    params: { fallbackToKubeDns: true },
    source: OUR_DROPIN,
    kind: "dropin",
    before: ["10.96.0.10"],
    after: ["169.254.20.10", "10.96.0.10"],
    switched:
      "# Written by nodelocaldns for node node-1: kubelet's cluster DNS is the\n" +
      "# node-local DNS cache. Removed by its revert (pulumi destroy). Do not edit.\n" +
      dropIn("clusterDNS:\n- 169.254.20.10\n- 10.96.0.10\n"),
  },
];

export const REFUSED_LAYOUTS: RefusedLayout[] = [
  {
    name: "--cluster-dns set both in /etc/default/kubelet and in a drop-in's Environment=",
    files: kubeadm({
      [DEFAULT]: "KUBELET_EXTRA_ARGS=--cluster-dns=10.96.0.10\n",
      "/etc/systemd/system/kubelet.service.d/20-dns.conf":
        '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=--cluster-dns=10.96.0.11"\n',
    }),
    refusal:
      /--cluster-dns is set in: \/etc\/systemd\/system\/kubelet\.service\.d\/20-dns\.conf \/etc\/default\/kubelet; cannot tell which one to edit \(set kubelet\.path\); nothing changed$/m,
  },
  {
    // systemd reads no comment after a value: what follows a "#" there is part of the value.
    name: "a --cluster-dns after a # on an EnvironmentFile line counts: systemd has no trailing comments",
    files: kubeadm({
      [FLAGS_ENV]: FLAGS_ENV_TEXT.replace('"\n', ' --cluster-dns=10.96.0.10"\n'),
      [DEFAULT]: "KUBELET_EXTRA_ARGS=\nNOTE=tried # --cluster-dns=169.254.20.10\n",
    }),
    refusal:
      /--cluster-dns is set in: \/var\/lib\/kubelet\/kubeadm-flags\.env \/etc\/default\/kubelet; cannot tell which one to edit \(set kubelet\.path\); nothing changed$/m,
  },
  {
    name: "--cluster-dns twice on kubelet's command line",
    files: kubeadm({
      [DEFAULT]: "KUBELET_EXTRA_ARGS=--cluster-dns=10.96.0.10 --cluster-dns=10.96.0.11\n",
    }),
    refusal: /kubelet has --cluster-dns 2 times; nothing changed$/m,
  },
  {
    name: "--cluster-dns from systemd's own environment, set in no file",
    files: {
      "/etc/systemd/system/kubelet.service.d/20-dns.conf":
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet $DNS_FLAGS\n",
    },
    setup: "systemctl set-environment DNS_FLAGS=--cluster-dns=10.96.0.10",
    refusal: /but no unit file or EnvironmentFile of kubelet\.service sets it; nothing changed$/m,
  },
  {
    name: "kubelet's cluster DNS is another resolver than clusterDnsIp",
    files: kubeadm({}, kubeadmConfig("clusterDNS:\n- 10.43.0.10\n")),
    refusal:
      /kubelet's cluster DNS 10\.43\.0\.10 does not hold clusterDnsIp 10\.96\.0\.10, which the cache forwards to; nothing changed$/m,
  },
  {
    name: "kubelet has no cluster DNS at all",
    files: kubeadm({}, kubeadmConfig("")),
    refusal:
      /kubelet has no cluster DNS: no --cluster-dns flag and no clusterDNS in --config \/var\/lib\/kubelet\/config\.yaml or --config-dir \(none\); nothing changed$/m,
  },
  {
    name: "a wrapper script is the unit's main process, not kubelet",
    files: {
      "/etc/systemd/system/kubelet.service.d/20-wrap.conf":
        "[Service]\nExecStart=\nExecStart=/bin/bash -c '/usr/bin/kubelet --cluster-dns=10.96.0.10; exit $?'\n",
    },
    refusal:
      /kubelet\.service runs \/bin\/bash \(pid \d+\), not kubelet itself: its flags cannot be read; nothing changed$/m,
  },
  {
    name: "clusterDNS written as a YAML alias",
    files: kubeadm({}, kubeadmConfig("dns: &dns [10.96.0.10]\nclusterDNS: *dns\n")),
    refusal:
      /\/var\/lib\/kubelet\/config\.yaml \(YAML KubeletConfiguration\): cannot read its clusterDNS setting; nothing changed$/m,
  },
  {
    name: "kubelet.path names another file than the one kubelet takes its cluster DNS from",
    files: kubeadm({ [DEFAULT]: "KUBELET_EXTRA_ARGS=--cluster-dns=10.96.0.10\n" }),
    params: { kubelet: { format: "auto", path: CONFIG } },
    refusal:
      /kubelet takes its cluster DNS from \/etc\/default\/kubelet \(--cluster-dns flag from \/etc\/default\/kubelet \(env-file\)\), not from kubelet\.path \/var\/lib\/kubelet\/config\.yaml; nothing changed$/m,
  },
  {
    name: "kubelet.format says env-file, kubelet reads a KubeletConfiguration",
    files: kubeadm(),
    params: { kubelet: { format: "env-file" } },
    refusal:
      /kubelet's cluster DNS is in \/var\/lib\/kubelet\/config\.yaml \(config-file\), not a env-file as kubelet\.format says; nothing changed$/m,
  },
  {
    name: "the file that sets it is a symlink",
    files: kubeadm({ "/etc/kubernetes/real-kubelet-config.yaml": kubeadmConfig() }),
    setup: "ln -sf /etc/kubernetes/real-kubelet-config.yaml /var/lib/kubelet/config.yaml",
    refusal: /\/var\/lib\/kubelet\/config\.yaml: not a regular file; nothing changed$/m,
  },
  {
    name: "a 99-nodelocaldns.conf that the program did not write and that sets no clusterDNS",
    files: kubeadm({
      [DEFAULT]: `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`,
      [OUR_DROPIN]: dropIn("maxPods: 90\n"),
    }),
    refusal:
      /99-nodelocaldns\.conf exists but does not set clusterDNS; remove it or set kubelet\.path; nothing changed$/m,
  },
  {
    name: "fallbackToKubeDns on a list of three: a fourth address would be dropped by kubelet",
    files: kubeadm({}, kubeadmConfig("clusterDNS:\n- 10.96.0.10\n- fd00::10\n- 10.96.0.11\n")),
    params: { fallbackToKubeDns: true },
    refusal:
      /the switched cluster DNS 169\.254\.20\.10,10\.96\.0\.10,fd00::10,10\.96\.0\.11 would hold 4 addresses; kubelet gives pods only the first 3; nothing changed$/m,
  },
];
