// The public types of the test-node harness (re-exported by test/support/testNode.ts): what
// startTestNode() takes and what the node it returns can do.

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestNodeOptions {
  /** Address put on the node's lo (/32 or /128); default "169.254.20.10"; null: no address. */
  localDnsIp?: string | null;
  /** A TCP listener on [localDnsIp]:53 in the node; default true (false if localDnsIp is null). */
  cacheListening?: boolean;
  /** The first N `systemctl restart kubelet` leave kubelet failed, later ones active. Default 0. */
  kubeletFailRestarts?: number;
  /**
   * Files created before the node's services start: absolute paths inside the node; parents are
   * created too (root-owned, files 0644, directories 0755).
   */
  files?: Record<string, string | Buffer>;
  /** Start sshd on 127.0.0.1:22 inside the node; default true. */
  ssh?: boolean;
  /** The node's hostname (its own UTS namespace); default "test-node". */
  hostname?: string;
}

export interface SshOptions {
  /** known_hosts contents to use instead of the node's pinned host key (e.g. a wrong key). */
  knownHosts?: string;
}

export interface TestNode {
  /** Host temp dir holding everything of this node (keys, logs, the node's state dir). */
  readonly dir: string;
  /** The address on the node's lo, or null. */
  readonly localDnsIp: string | null;
  /** Host pid of the node's pid 1 (for `nsenter -t <initPid>`). */
  readonly initPid: number;
  /** Port of the node's sshd on 127.0.0.1 inside the node's network namespace. */
  readonly sshPort: number;
  /** The node's host key in authorized_keys form: "ssh-ed25519 AAAA...". */
  readonly hostKey: string;
  /** Client private key (host path) that sshd accepts for root. */
  readonly privateKeyPath: string;
  /** `bash -c command` inside all of the node's namespaces, as root, with a minimal environment. */
  run(command: string, stdin?: string): Promise<ExecResult>;
  /** `ssh root@127.0.0.1 command`: the real OpenSSH client, in the node's network namespace. */
  ssh(command: string, stdin?: string, options?: SshOptions): Promise<ExecResult>;
  /** Paths as seen inside the node (symlinks resolve inside the node). */
  readFile(path: string): Buffer;
  /** Creates parents; sets `mode` if given, else a new file gets 0644 and an old one keeps its. */
  writeFile(path: string, data: string | Buffer, mode?: number): void;
  exists(path: string): boolean;
  /** Like fs.statSync (follows symlinks): mode includes the file-type bits (`mode & 0o7777`). */
  stat(path: string): { mode: number; uid: number; gid: number };
  /** How many `systemctl restart kubelet` the stub recorded. */
  restarts(): number;
  /** Every systemctl invocation inside the node, arguments joined by spaces. */
  systemctlCalls(): string[];
  /** "active" or "failed", as the stub's `is-active kubelet` would print. */
  kubeletState(): string;
  setCacheListening(on: boolean): Promise<void>;
  setKubeletFailRestarts(n: number): void;
  /** Host pids of this node's processes: unshare, everything inside, running run()/ssh(). */
  hostPids(): number[];
  /**
   * Kills every process of the node by pid, which also drops its mounts (they only exist in the
   * node's mount namespace), and removes dir. Idempotent.
   */
  stop(): Promise<void>;
}
