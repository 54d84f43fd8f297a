// Fixed facts of every systemd test node, shared by the host side that starts and drives it:
// where its scripts are, addresses, paths inside the node, and timeouts.

import * as path from "node:path";

export { DEFAULT_LOCAL_DNS_IP, HOST_PATH, NODE_ENV } from "../processes/constants";

/** This directory: build-rootfs.sh, launcher.sh, node-ns.sh, the baked sources. */
export const SCRIPTS_DIR = __dirname;
export const BUILD_ROOTFS = path.join(SCRIPTS_DIR, "build-rootfs.sh");
export const LAUNCHER = path.join(SCRIPTS_DIR, "launcher.sh");

export const DEFAULT_HOSTNAME = "systemd-node";
export const SSH_ADDRESS = "127.0.0.1";
export const SSH_PORT = 22;
/** The test DNS server baked into the root (dns-server.py). */
export const DNS_SERVER = "/usr/local/lib/nodelocaldns-test/dns-server.py";
export const KUBELET_EFFECTIVE = "/run/kubelet/effective.json";
export const KUBELET_STARTS_LOG = "/var/lib/kubelet-standin/starts.log";
/** One line per /healthz request the stand-in kubelet answered. */
export const KUBELET_HEALTHZ_LOG = "/var/lib/kubelet-standin/healthz.log";

/** The first rootfs build runs debootstrap: minutes. */
export const ROOTFS_TIMEOUT_MS = 30 * 60_000;
/** From launching nspawn to a booted system with sshd answering. */
export const BOOT_TIMEOUT_MS = 120_000;
export const COMMAND_TIMEOUT_MS = 60_000;
export const FILE_OP_TIMEOUT_MS = 20_000;
/** launcher.sh: 20 s for the poweroff, 10 s after SIGKILL; a little more for the host side. */
export const STOP_TIMEOUT_MS = 40_000;
