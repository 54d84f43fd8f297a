// The public types of the systemd test-node harness (re-exported by test/support/systemdNode.ts):
// what startSystemdNode() takes and what the node it returns can do.

import type { ExecResult } from "../processes/types";

export type { ExecResult };

/** A file written into the node's root before boot: its content, or content and mode. */
export type NodeFile = string | Buffer | { content: string | Buffer; mode?: number };

export interface SystemdNodeOptions {
  /**
   * Files written into the node's root before it boots: absolute paths inside the node (symlinks
   * resolve inside the node); parents are created (root-owned, 0755); a new file gets 0644 unless
   * a mode is given, an existing one keeps its mode.
   */
  files?: Record<string, NodeFile>;
  /** Units enabled before boot (`systemctl enable`), e.g. "kubelet.service". Default none. */
  enable?: string[];
  /** Address put on the node's lo (/32 or /128); default "169.254.20.10"; null: none. */
  localDnsIp?: string | null;
  /** The node's hostname (/etc/hostname and /etc/hosts); default "systemd-node". */
  hostname?: string;
  /**
   * Also expose the node's sshd on this address:port of the host's network namespace (a socat
   * forwarder, stopped with the node). Only 127.0.0.0/8 addresses.
   */
  sshForward?: { address: string; port: number };
}

export interface SshOptions {
  /** "root" (default) or "ops" (passwordless sudo). */
  user?: string;
  /** known_hosts contents to use instead of the node's pinned host key (e.g. a wrong key). */
  knownHosts?: string;
}

/** The stand-in kubelet as systemd and the stand-in itself see it. */
export interface KubeletStatus {
  /** `systemctl is-active kubelet`: "active", "activating", "failed", "inactive", ... */
  active: string;
  /** MainPID of kubelet.service, in the node's pid namespace; 0 when not running. */
  mainPid: number;
  /** Command line of the main process: ["/usr/bin/kubelet", ...flags]; [] when not running. */
  cmdline: string[];
  /** How many times the stand-in has started (and written its effective config) since boot. */
  starts: number;
  /** /run/kubelet/effective.json of the latest start, or null before the first. */
  effective: KubeletEffective | null;
}

/** What the stand-in kubelet ended up with (/run/kubelet/effective.json). */
export interface KubeletEffective {
  clusterDNS: string[];
  clusterDomain: string;
  healthzPort: number;
  healthzBindAddress: string;
  /** Per field: the file that set it, "flag --<name>", or "default". */
  sources: Record<string, string>;
  pid: number;
  startedAt: string;
}

export type DnsServerMode = "dns" | "silent" | "garbage";

export interface DnsServer {
  readonly ip: string;
  readonly mode: DnsServerMode;
  /** The transient unit running it inside the node. */
  readonly unit: string;
  /** Stops it (`systemctl stop`); idempotent. */
  stop(): Promise<void>;
}

export interface SystemdNode {
  /** Unique name of the node (its nspawn machine name and cgroup). */
  readonly name: string;
  /** Host temp dir of the node (keys, logs, console.log). */
  readonly dir: string;
  /** Host pid of the container's pid 1 (systemd), for `nsenter -t <leaderPid>`. */
  readonly leaderPid: number;
  /** The address on the node's lo, or null. */
  readonly localDnsIp: string | null;
  /** The node's sshd host key in authorized_keys form: "ssh-ed25519 AAAA...". */
  readonly hostKey: string;
  /** Client private key (host path) that sshd accepts for root and ops. */
  readonly privateKeyPath: string;
  /** The host-side forward of the node's sshd, if asked for. */
  readonly sshForward: { address: string; port: number } | null;
  /** `bash -c command` as root inside all of the node's namespaces, with a minimal environment. */
  run(command: string, stdin?: string): Promise<ExecResult>;
  /** The real OpenSSH client in the node's network namespace, to 127.0.0.1:22, host key pinned. */
  ssh(command: string, stdin?: string, options?: SshOptions): Promise<ExecResult>;
  /** Paths as seen inside the node (symlinks resolve inside the node). */
  readFile(path: string): Buffer;
  /** Creates parents; sets `mode` if given, else a new file gets 0644 and an old one keeps its. */
  writeFile(path: string, data: string | Buffer, mode?: number): void;
  exists(path: string): boolean;
  /** Like fs.statSync (follows symlinks): mode includes the file-type bits (`mode & 0o7777`). */
  stat(path: string): { mode: number; uid: number; gid: number };
  /**
   * Waits until `systemctl show` reports `state` as the unit's ActiveState or SubState (e.g.
   * "active", "failed", "auto-restart"); throws with the unit's status after `timeoutMs`.
   */
  waitForUnit(unit: string, state: string, timeoutMs: number): Promise<void>;
  kubelet(): Promise<KubeletStatus>;
  /** A DNS server (test infrastructure) on ip:53 TCP and UDP inside the node. */
  startDnsServer(ip: string, mode: DnsServerMode): Promise<DnsServer>;
  /** Host pids of this node: launcher, nspawn, the forwarder, everything in the container. */
  hostPids(): number[];
  /**
   * CPU time everything in the node has used since it started, seconds (its cgroup v2
   * `cpu.stat`, which counts exited processes too); undefined without a cgroup v2 hierarchy.
   */
  cpuSeconds(): number | undefined;
  /**
   * Orderly poweroff with a bounded wait, then SIGKILL by pid; removes every process, cgroup,
   * forwarder and the temp dir (mounts only ever exist in the node's own mount namespace).
   * Idempotent.
   */
  stop(): Promise<void>;
}
