// Throwaway "Kubernetes nodes" with a real systemd, for tests that must see what systemd really
// does with kubelet.service (drop-ins, daemon-reload, restarts, MainPID). Each node is
// systemd-nspawn booting Debian bookworm's systemd
// 252 from a cached root filesystem:
//
// - the root is built once by systemdNode/build-rootfs.sh (debootstrap, minutes) into a cache
//   outside the repository (${NODELOCALDNS_ROOTFS_CACHE:-/var/cache/nodelocaldns-rootfs}); every
//   node boots a copy-on-write overlay of it (upper layer on a tmpfs), so nodes never change it;
// - the node has its own mount namespace (every mount of the harness lives there only) and its
//   own network namespace with nothing but lo, which carries the local DNS address; sshd listens
//   there, the ssh client enters it, so no packet leaves loopback inside the node. Optionally a
//   socat forwarder exposes the node's sshd on a 127.0.0.0/8 address of the host;
// - inside: real sshd (root and the sudo user ops, key only), sudo, and a stand-in kubelet
//   (systemdNode/kubelet-standin.py, /usr/bin/kubelet) that parses kubelet's flags and config
//   files and records the effective clusterDNS and each start; kubelet.service is the packaged
//   unit, enabled only when a test says so (layouts.ts has example layouts);
// - stop() powers the node off (bounded), SIGKILLs what is left by pid, removes its cgroups and
//   temp dir; an exit handler and the launcher's closed stdin do the same if the test process
//   goes away first.
//
// Requires root, systemd-container, debootstrap (first build only, with the Debian mirror
// reachable), util-linux, iproute2, socat and OpenSSH. Tests guard themselves with
// systemdNodeTestOptions(): skipped where unsupported, failed in CI (CI=true).
//
// This file is the harness's public entry point; the parts live in systemdNode/:
// - types.ts: the public types; support.ts: whether nodes can run here, systemdNodeTestOptions();
// - start.ts: startSystemdNode(); node.ts: the SystemdNode implementation; nodeDir.ts: the
//   layout of a node's host dir; lines.ts: the launcher's protocol; rootfs.ts: the cached root;
// - build-rootfs.sh, launcher.sh, node-ns.sh: building the root, supervising and booting a node;
// - kubelet-standin.py, kubelet.service, dns-server.py: what is baked into the root;
// - kubelet.ts: waitForUnit() and kubelet(); dnsServer.ts: startDnsServer(); ssh.ts: keys and
//   client options; layouts.ts: example kubelet layouts; constants.ts: paths and timeouts.

export { KUBELET_LAYOUTS, type KubeletLayout } from "./systemdNode/layouts";
export { startSystemdNode } from "./systemdNode/start";
export { systemdNodeSupport, systemdNodeTestOptions } from "./systemdNode/support";
export type {
  DnsServer,
  DnsServerMode,
  ExecResult,
  KubeletEffective,
  KubeletStatus,
  NodeFile,
  SshOptions,
  SystemdNode,
  SystemdNodeOptions,
} from "./systemdNode/types";
