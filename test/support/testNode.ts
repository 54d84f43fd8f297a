// Throwaway "Kubernetes nodes" for tests: each one is a set of fresh kernel namespaces (mount,
// network, pid, UTS, IPC) on this machine, with a real sshd, a stand-in for the node-local DNS
// cache on [localDnsIp]:53 and a systemctl stub that only knows kubelet. Node scripts run for real
// (real bash, real OpenSSH) and change nothing outside the node:
//
// - every top-level directory of the host is seen through a copy-on-write overlay whose upper layer
//   lives on a tmpfs inside the node; /run, /tmp and /root are fresh tmpfs mounts; /proc and /sys
//   are the node's own (/sys read-only);
// - the node has its own network namespace: sshd listens on 127.0.0.1:22 there, the local DNS
//   address is put on the node's own lo, and the ssh client enters that namespace, so no packet
//   ever leaves loopback inside the node;
// - pid 1 of the node is init.sh below; it ends when the test process closes its stdin (also when
//   the test process dies), and the kernel then kills every other process of the node.
//
// Requires root, util-linux (unshare, nsenter), iproute2 and OpenSSH (server and client). Tests
// guard themselves with nodeTestOptions(): skipped where unsupported, failed in CI (CI=true).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

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

const DEFAULT_LOCAL_DNS_IP = "169.254.20.10";
const SSH_ADDRESS = "127.0.0.1";
const SSH_PORT = 22;
/** The node's state dir as seen inside the node (a bind mount of `<dir>/node`). */
const NODE_STATE = "/run/testnode";
const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SSHD = "/usr/sbin/sshd";
const COMMAND_TIMEOUT_MS = 60_000;
const FILE_OP_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** unshare flags of a node: its own namespaces, which die with its first process. */
const UNSHARE_FLAGS = [
  ...["--mount", "--net", "--pid", "--uts", "--ipc"],
  ...["--fork", "--kill-child", "--propagation", "private"],
];

/** The environment of everything started in a node: nothing from the test process leaks in. */
const NODE_ENV: NodeJS.ProcessEnv = {
  PATH: HOST_PATH,
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
};

// ---------------------------------------------------------------------------------------------
// Support detection

interface Tools {
  unshare: string;
  nsenter: string;
  ssh: string;
  sshKeygen: string;
}

let support: { reason: string | undefined; tools?: Tools } | undefined;

function findExecutable(name: string): string | undefined {
  for (const dir of HOST_PATH.split(":")) {
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) {
      return candidate;
    }
  }
  return undefined;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// Everything a node needs from the kernel, tried once in a throwaway set of namespaces.
const PROBE_SCRIPT = `set -e
d=$1
mount -t tmpfs tmpfs "$d"
mkdir "$d/upper" "$d/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/upper,workdir=$d/work" /etc
mount -t proc proc /proc
ip link set lo up
`;

function detectSupport(): { reason: string | undefined; tools?: Tools } {
  if (process.platform !== "linux") {
    return { reason: `needs Linux, this is ${process.platform}` };
  }
  if (process.getuid?.() !== 0) {
    return { reason: "needs root (kernel namespaces and mounts)" };
  }
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["mount", "mount"],
    ["setsid", "util-linux"],
    ["timeout", "coreutils"],
    ["bash", "bash"],
    ["ip", "iproute2"],
    ["ssh", "openssh-client"],
    ["ssh-keygen", "openssh-client"],
  ]) {
    const file = findExecutable(tool);
    if (file === undefined) {
      missing.push(`${tool} (${pkg})`);
    } else {
      found.set(tool, file);
    }
  }
  if (!isExecutableFile(SSHD)) {
    missing.push(`${SSHD} (openssh-server)`);
  }
  if (missing.length > 0) {
    return { reason: `missing ${missing.join(", ")}` };
  }
  const tools: Tools = {
    unshare: found.get("unshare")!,
    nsenter: found.get("nsenter")!,
    ssh: found.get("ssh")!,
    sshKeygen: found.get("ssh-keygen")!,
  };
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), "testnode-probe-"));
  try {
    const probe = spawnSync(
      tools.unshare,
      [...UNSHARE_FLAGS, "bash", "-c", PROBE_SCRIPT, "probe", probeDir],
      { env: { PATH: HOST_PATH }, encoding: "utf8", timeout: 15_000, killSignal: "SIGKILL" },
    );
    if (probe.error !== undefined) {
      return { reason: `namespace probe failed: ${probe.error.message}` };
    }
    if (probe.status !== 0) {
      const detail = probe.stderr.trim() || `exit ${probe.status ?? probe.signal}`;
      return { reason: `cannot create namespaces, overlay mounts or links: ${detail}` };
    }
  } finally {
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
  return { reason: undefined, tools };
}

function requireTools(): Tools {
  support ??= detectSupport();
  if (support.reason !== undefined || support.tools === undefined) {
    throw new Error(`test nodes unavailable: ${support.reason ?? "unknown"}`);
  }
  return support.tools;
}

/** Why test nodes cannot run here, or undefined when they can. Checked once per process. */
export function testNodeSupport(): string | undefined {
  support ??= detectSupport();
  return support.reason;
}

/**
 * Options for `test(...)`/`describe(...)` of tests that need test nodes: `{}` when supported,
 * `{ skip }` when not; in CI (CI=true) an unsupported machine is an error, never a skip.
 */
export function nodeTestOptions(): { skip?: string } {
  const reason = testNodeSupport();
  if (reason === undefined) {
    return {};
  }
  if (process.env.CI === "true") {
    throw new Error(`test nodes are required in CI but unavailable: ${reason}`);
  }
  return { skip: `test nodes unavailable: ${reason}` };
}

/**
 * For use inside a test body: returns false when test nodes can run; otherwise skips `t` (if
 * given) and returns true, so the caller returns. Throws in CI (CI=true) instead of skipping.
 */
export function skipOrFail(t?: { skip(message?: string): void }): boolean {
  const { skip } = nodeTestOptions();
  if (skip === undefined) {
    return false;
  }
  t?.skip(skip);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Scripts that run inside a node

// pid 1 of the node. Arguments: host dir, node binary, local DNS IP (or ""), hostname, cache (0/1),
// ssh (0/1). Protocol on stdout: "mounted" (then waits for a "go" line on stdin), "started".
const INIT_SCRIPT = `# pid 1 of one test node (test/support/testNode.ts). Runs in fresh mount,
# network, pid, UTS and IPC namespaces; every mount below is private to the node.
set -euo pipefail
trap 'echo "init.sh: line $LINENO: \\"$BASH_COMMAND\\" failed" >&2' ERR
dir=$1 node_bin=$2 ip=$3 host_name=$4 cache=$5 ssh=$6
state=${NODE_STATE}

# The node's state dir (the host dir's node/), on a fresh /run; upper layers on a tmpfs.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p "$state"
mount --bind "$dir/node" "$state"
mount -t tmpfs -o mode=0700 tmpfs "$state/layers"
mount --bind "$node_bin" "$state/bin/node"

# Copy-on-write view of every top-level directory; read-only where overlayfs refuses.
for d in /*; do
  [[ -d $d && ! -L $d ]] || continue
  case $d in /proc | /sys | /dev | /run | /tmp | /root | /lost+found) continue ;; esac
  layer=$state/layers$d
  mkdir -p "$layer/upper" "$layer/work"
  options="lowerdir=$d,upperdir=$layer/upper,workdir=$layer/work"
  if ! mount -t overlay overlay -o "$options" "$d"; then
    case $d in /etc | /var | /usr) exit 1 ;; esac
    echo "init.sh: $d is read-only in the node" >&2
    mount --bind "$d" "$d"
    mount -o remount,bind,ro "$d"
  fi
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=0700 tmpfs /root
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys || mount -o remount,bind,ro /sys
mkdir -p -m 0755 /run/sshd
mkdir -p -m 1777 /run/lock

ip link set lo up
if [[ -n $ip ]]; then
  if [[ $ip == *:* ]]; then ip addr add "$ip/128" dev lo; else ip addr add "$ip/32" dev lo; fi
fi
echo "$host_name" >/proc/sys/kernel/hostname
echo "$host_name" >/etc/hostname

# In the node's own /etc: root logs in with bash (key only), systemctl is the stub.
if ! grep -q '^root:[^:]*:0:0:[^:]*:[^:]*:/bin/bash$' /etc/passwd; then
  sed -i -E 's#^(root:[^:]*:0:0:[^:]*:[^:]*:).*$#\\1/bin/bash#' /etc/passwd
fi
if grep -q '^root:!' /etc/shadow; then
  sed -i -E 's#^root:![^:]*:#root:*:#' /etc/shadow
fi
install -m 0755 "$state/systemctl-stub" /usr/bin/systemctl
if [[ ! -L /bin ]]; then install -m 0755 "$state/systemctl-stub" /bin/systemctl; fi

echo mounted
read -r go || exit 0
[[ $go == go ]] || exit 1

if [[ $cache == 1 ]]; then bash "$state/cache.sh" start; fi
if [[ $ssh == 1 ]]; then
  ${SSHD} -D -e -f "$state/sshd_config" </dev/null >>"$state/sshd.log" 2>&1 &
  sshd_pid=$!
  up=0
  for ((i = 0; i < 200; i++)); do
    if (exec 3<>/dev/tcp/${SSH_ADDRESS}/${SSH_PORT}) 2>/dev/null; then up=1; break; fi
    kill -0 "$sshd_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ((!up)); then
    echo "init.sh: sshd did not start, see $state/sshd.log:" >&2
    cat "$state/sshd.log" >&2
    exit 1
  fi
fi
echo started
# Until the test process closes stdin (stop(), or the test process is gone).
while read -r _; do :; done
`;

// Stand-in for the node-local DNS cache: accepts TCP connections on [ip]:53.
const CACHE_LISTENER_JS = `"use strict";
const net = require("net");
const server = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.end();
});
server.listen({ host: process.argv[2], port: 53 });
process.on("SIGTERM", () => process.exit(0));
`;

const CACHE_SCRIPT = `# Starts or stops the node's stand-in for the node-local DNS cache
# (test/support/testNode.ts).
set -euo pipefail
state=${NODE_STATE}
ip=$(cat "$state/local-dns-ip")
pidfile=$state/cache.pid
alive() { # present and not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ \${s%% *} != Z ]]
}
running() { [[ -s $pidfile ]] && alive "$(cat "$pidfile")"; }
listening() { timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/53"' _ "$ip" 2>/dev/null; }
case \${1-} in
start)
  [[ -n $ip ]] || { echo "cache.sh: the node has no local DNS address" >&2; exit 1; }
  running && exit 0
  setsid "$state/bin/node" "$state/cache-listener.cjs" "$ip" </dev/null >>"$state/cache.log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  for ((i = 0; i < 200; i++)); do
    listening && exit 0
    alive "$pid" || break
    sleep 0.05
  done
  echo "cache.sh: no listener on $ip:53, see $state/cache.log:" >&2
  cat "$state/cache.log" >&2
  exit 1
  ;;
stop)
  if running; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && { echo "cache.sh: listener $pid did not stop" >&2; exit 1; }
  fi
  rm -f "$pidfile"
  ;;
*)
  echo "usage: cache.sh start|stop" >&2
  exit 2
  ;;
esac
`;

// The node's /usr/bin/systemctl. State in $NODE_STATE/systemctl (the host dir's node/systemctl).
const SYSTEMCTL_STUB = `#!/bin/bash
# systemctl of a test node (test/support/testNode.ts): only kubelet exists.
set -u
state=${NODE_STATE}/systemctl
printf '%s\\n' "$*" >>"$state/calls.log"
quiet=0
args=()
for a in "$@"; do
  case $a in
  -q | --quiet) quiet=1 ;;
  --no-pager | --no-block | --no-ask-password | --system | -l | --full) ;;
  -*) echo "systemctl (test node stub): unsupported option $a" >&2; exit 1 ;;
  *) args+=("$a") ;;
  esac
done
unsupported() { echo "systemctl (test node stub): unsupported: systemctl $*" >&2; exit 1; }
if [[ \${#args[@]} -eq 1 && \${args[0]} == daemon-reload ]]; then exit 0; fi
[[ \${#args[@]} -eq 2 ]] || unsupported "$@"
[[ \${args[1]} == kubelet || \${args[1]} == kubelet.service ]] || unsupported "$@"
current=$(cat "$state/kubelet.state")
case \${args[0]} in
restart)
  printf '%s\\n' "$*" >>"$state/restarts.log"
  fail=$(cat "$state/fail-restarts")
  if ((fail > 0)); then
    echo $((fail - 1)) >"$state/fail-restarts"
    echo failed >"$state/kubelet.state"
  else
    echo active >"$state/kubelet.state"
  fi
  ;;
is-active)
  ((quiet)) || echo "$current"
  [[ $current == active ]] || exit 3
  ;;
status)
  if ((!quiet)); then
    echo "● kubelet.service - kubelet: The Kubernetes Node Agent"
    if [[ $current == active ]]; then
      echo "     Active: active (running)"
    else
      echo "     Active: failed (Result: exit-code)"
    fi
  fi
  [[ $current == active ]] || exit 3
  ;;
*) unsupported "$@" ;;
esac
exit 0
`;

function sshdConfig(): string {
  return `# sshd of a test node (test/support/testNode.ts), in the node's network namespace only.
Port ${SSH_PORT}
ListenAddress ${SSH_ADDRESS}
AddressFamily inet
HostKey ${NODE_STATE}/ssh_host_ed25519_key
AuthorizedKeysFile ${NODE_STATE}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp internal-sftp
`;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settles within `ms` (its timer does not outlive it). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** True while /proc/<pid> exists (zombies included). */
function processPresent(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

function killPid(pid: number | undefined): void {
  if (pid === undefined || pid <= 0) {
    return;
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Kills a process started with `detached: true` together with its process group. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined || pid <= 0) {
    return;
  }
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    killPid(pid);
  }
}

function signalExitCode(signal: NodeJS.Signals | null): number {
  const number = signal === null ? undefined : os.constants.signals[signal];
  return number === undefined ? 1 : 128 + number;
}

function checkNodePath(file: string): void {
  if (!path.posix.isAbsolute(file) || file.includes("\0")) {
    throw new Error(`test node paths must be absolute (inside the node): ${JSON.stringify(file)}`);
  }
}

function keygen(sshKeygen: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file], {
      env: { PATH: HOST_PATH },
      stdio: ["ignore", "ignore", "pipe"],
      timeout: FILE_OP_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`ssh-keygen failed (${code}): ${stderr}`)),
    );
  });
}

/** Reads an ssh public key file as "type base64" (no comment). */
function publicKey(file: string): string {
  const [type, key] = fs.readFileSync(file, "utf8").trim().split(/\s+/);
  if (type === undefined || key === undefined) {
    throw new Error(`not an ssh public key: ${file}`);
  }
  return `${type} ${key}`;
}

// Nodes not stopped yet; killed synchronously if the test process exits first.
const liveNodes = new Set<NamespaceNode>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on("exit", () => {
      for (const node of liveNodes) {
        node.killSync();
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The node

class NamespaceNode implements TestNode {
  readonly sshPort = SSH_PORT;
  readonly privateKeyPath: string;
  hostKey = "";
  initPid = 0;
  private init: ChildProcess | undefined;
  private initExited: Promise<void> | undefined;
  private pidNamespace = "";
  private logFd: number | undefined;
  private readonly running = new Set<ChildProcess>();
  private stopping: Promise<void> | undefined;
  private readonly state: string;
  private readonly knownHostsPath: string;

  constructor(
    readonly dir: string,
    readonly localDnsIp: string | null,
    private readonly sshEnabled: boolean,
    private readonly tools: Tools,
  ) {
    this.state = path.join(dir, "node");
    this.privateKeyPath = path.join(dir, "client", "id_ed25519");
    this.knownHostsPath = path.join(dir, "client", "known_hosts");
  }

  async start(opts: {
    cacheListening: boolean;
    kubeletFailRestarts: number;
    files: Record<string, string | Buffer>;
    hostname: string;
  }): Promise<void> {
    const { dir, state } = this;
    for (const sub of ["client", "node", "node/layers", "node/bin", "node/systemctl"]) {
      fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
    }
    fs.chmodSync(state, 0o755);
    fs.writeFileSync(path.join(state, "bin", "node"), "");
    fs.writeFileSync(path.join(dir, "init.sh"), INIT_SCRIPT);
    fs.writeFileSync(path.join(state, "cache.sh"), CACHE_SCRIPT);
    fs.writeFileSync(path.join(state, "cache-listener.cjs"), CACHE_LISTENER_JS);
    fs.writeFileSync(path.join(state, "systemctl-stub"), SYSTEMCTL_STUB, { mode: 0o755 });
    fs.writeFileSync(path.join(state, "local-dns-ip"), this.localDnsIp ?? "");
    fs.writeFileSync(path.join(state, "sshd_config"), sshdConfig());
    fs.writeFileSync(path.join(state, "systemctl", "kubelet.state"), "active\n");
    fs.writeFileSync(path.join(state, "systemctl", "restarts.log"), "");
    fs.writeFileSync(path.join(state, "systemctl", "calls.log"), "");
    this.setKubeletFailRestarts(opts.kubeletFailRestarts);

    if (this.sshEnabled) {
      const hostKeyFile = path.join(state, "ssh_host_ed25519_key");
      await Promise.all([
        keygen(this.tools.sshKeygen, hostKeyFile),
        keygen(this.tools.sshKeygen, this.privateKeyPath),
      ]);
      this.hostKey = publicKey(`${hostKeyFile}.pub`);
      fs.writeFileSync(
        path.join(state, "authorized_keys"),
        `${publicKey(`${this.privateKeyPath}.pub`)}\n`,
      );
      fs.writeFileSync(this.knownHostsPath, `${this.knownHostsHost()} ${this.hostKey}\n`);
    }

    this.logFd = fs.openSync(path.join(dir, "init.log"), "a");
    const init = spawn(
      this.tools.unshare,
      [
        ...UNSHARE_FLAGS,
        "bash",
        path.join(dir, "init.sh"),
        dir,
        process.execPath,
        this.localDnsIp ?? "",
        opts.hostname,
        opts.cacheListening ? "1" : "0",
        this.sshEnabled ? "1" : "0",
      ],
      { env: { PATH: HOST_PATH }, stdio: ["pipe", "pipe", this.logFd] },
    );
    this.init = init;
    const lines = new LineReader(init);
    this.initExited = new Promise((resolve) => {
      init.once("exit", () => resolve());
      init.once("error", () => resolve());
    });
    init.stdin?.on("error", () => {});

    const deadline = Date.now() + START_TIMEOUT_MS;
    await lines.expect("mounted", deadline, () => this.initLog());
    this.initPid = await this.findInitPid(deadline);
    this.pidNamespace = fs.readlinkSync(`/proc/${this.initPid}/ns/pid`);
    for (const [file, data] of Object.entries(opts.files)) {
      this.writeFile(file, data);
    }
    init.stdin?.write("go\n");
    await lines.expect("started", deadline, () => this.initLog());

    if (this.sshEnabled) {
      const check = await this.ssh("true");
      if (check.code !== 0) {
        throw new Error(`test node: ssh check failed (${check.code}): ${check.stderr}`);
      }
    }
    // A node that a test forgets to stop must not keep the test process alive; the exit handler
    // and the closed stdin pipe end it.
    init.unref();
    for (const stream of [init.stdin, init.stdout]) {
      (stream as unknown as net.Socket | null)?.unref();
    }
  }

  private knownHostsHost(): string {
    return this.sshPort === 22 ? SSH_ADDRESS : `[${SSH_ADDRESS}]:${this.sshPort}`;
  }

  private initLog(): string {
    try {
      return fs.readFileSync(path.join(this.dir, "init.log"), "utf8").trim();
    } catch {
      return "";
    }
  }

  private async findInitPid(deadline: number): Promise<number> {
    const unsharePid = this.init?.pid;
    while (unsharePid !== undefined) {
      try {
        const children = fs
          .readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter((pid) => pid !== "")
          .map(Number);
        if (children.length === 1 && children[0]! > 0) {
          return children[0]!;
        }
      } catch {
        // not there yet, or unshare is gone (then the deadline ends it)
      }
      if (Date.now() > deadline) {
        break;
      }
      await sleep(10);
    }
    throw new Error(`test node: cannot find the node's pid 1\n${this.initLog()}`);
  }

  private assertRunning(): void {
    if (this.stopping !== undefined || this.initPid === 0) {
      throw new Error("test node is not running");
    }
  }

  private exec(argv: string[], stdin: string | undefined, timeoutMs: number): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        env: NODE_ENV,
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
      });
      this.running.add(child);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      let done = false;
      const finish = (code: number, extra = ""): void => {
        if (done) {
          return;
        }
        done = true;
        clearTimeout(timer);
        this.running.delete(child);
        resolve({
          code,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8") + extra,
        });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
        // Something that left the process group may still hold the pipes: do not wait for it.
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, timeoutMs);
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.stdin?.on("error", () => {});
      child.on("error", (error) => finish(127, `\n[testNode] ${error.message}`));
      child.on("close", (code, signal) =>
        finish(
          timedOut ? 124 : (code ?? signalExitCode(signal)),
          timedOut ? `\n[testNode] timed out after ${timeoutMs} ms` : "",
        ),
      );
      child.stdin?.end(stdin ?? "");
    });
  }

  async run(command: string, stdin?: string): Promise<ExecResult> {
    this.assertRunning();
    return this.exec(
      [
        this.tools.nsenter,
        "-t",
        String(this.initPid),
        "-m",
        "-n",
        "-p",
        "-u",
        "-i",
        "--",
        "bash",
        "-c",
        command,
      ],
      stdin,
      COMMAND_TIMEOUT_MS,
    );
  }

  async ssh(command: string, stdin?: string, options: SshOptions = {}): Promise<ExecResult> {
    this.assertRunning();
    if (!this.sshEnabled) {
      throw new Error("this test node was started with ssh: false");
    }
    let knownHosts = this.knownHostsPath;
    if (options.knownHosts !== undefined) {
      knownHosts = path.join(
        this.dir,
        "client",
        `known_hosts.${process.hrtime.bigint().toString(36)}`,
      );
      fs.writeFileSync(knownHosts, options.knownHosts);
    }
    try {
      return await this.exec(
        [
          this.tools.nsenter,
          "-t",
          String(this.initPid),
          "-n",
          "--",
          this.tools.ssh,
          "-F",
          "/dev/null",
          "-T",
          "-p",
          String(this.sshPort),
          "-i",
          this.privateKeyPath,
          "-o",
          "BatchMode=yes",
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          `UserKnownHostsFile=${knownHosts}`,
          "-o",
          "GlobalKnownHostsFile=/dev/null",
          "-o",
          "CheckHostIP=no",
          "-o",
          "UpdateHostKeys=no",
          "-o",
          "IdentitiesOnly=yes",
          "-o",
          "IdentityAgent=none",
          "-o",
          "PasswordAuthentication=no",
          "-o",
          "KbdInteractiveAuthentication=no",
          "-o",
          "ControlMaster=no",
          "-o",
          "ControlPath=none",
          "-o",
          "ConnectTimeout=10",
          "-o",
          "LogLevel=ERROR",
          `root@${SSH_ADDRESS}`,
          command,
        ],
        stdin,
        COMMAND_TIMEOUT_MS,
      );
    } finally {
      if (knownHosts !== this.knownHostsPath) {
        fs.rmSync(knownHosts, { force: true });
      }
    }
  }

  /** Runs a small command in the node's mount namespace, synchronously. */
  private fileOp(script: string, file: string, input?: Buffer): Buffer {
    this.assertRunning();
    checkNodePath(file);
    const result = spawnSync(
      this.tools.nsenter,
      ["-t", String(this.initPid), "-m", "--", "bash", "-c", script, "file-op", file],
      {
        env: NODE_ENV,
        input,
        timeout: FILE_OP_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    if (result.error !== undefined) {
      throw new Error(`test node: ${file}: ${result.error.message}`);
    }
    if (result.status !== 0) {
      throw new Error(`test node: ${file}: ${result.stderr.toString("utf8").trim()}`);
    }
    return result.stdout;
  }

  readFile(file: string): Buffer {
    return this.fileOp('exec cat -- "$1"', file);
  }

  writeFile(file: string, data: string | Buffer, mode?: number): void {
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
      throw new Error(`test node: bad mode ${mode}`);
    }
    const chmod = mode === undefined ? "" : ` && chmod ${mode.toString(8)} -- "$1"`;
    this.fileOp(
      `umask 022 && mkdir -p -- "$(dirname -- "$1")" && cat >"$1"${chmod}`,
      file,
      typeof data === "string" ? Buffer.from(data, "utf8") : data,
    );
  }

  exists(file: string): boolean {
    return this.fileOp('if [ -e "$1" ]; then echo yes; else echo no; fi', file)
      .toString()
      .startsWith("yes");
  }

  stat(file: string): { mode: number; uid: number; gid: number } {
    const [mode, uid, gid] = this.fileOp('exec stat -L -c "%f %u %g" -- "$1"', file)
      .toString()
      .trim()
      .split(" ");
    return { mode: parseInt(mode!, 16), uid: Number(uid), gid: Number(gid) };
  }

  private stubState(name: string): string {
    return fs.readFileSync(path.join(this.state, "systemctl", name), "utf8");
  }

  restarts(): number {
    return this.stubState("restarts.log")
      .split("\n")
      .filter((line) => line !== "").length;
  }

  systemctlCalls(): string[] {
    return this.stubState("calls.log")
      .split("\n")
      .filter((line) => line !== "");
  }

  kubeletState(): string {
    return this.stubState("kubelet.state").trim();
  }

  setKubeletFailRestarts(n: number): void {
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`kubeletFailRestarts must be a non-negative integer, got ${n}`);
    }
    fs.writeFileSync(path.join(this.state, "systemctl", "fail-restarts"), `${n}\n`);
  }

  async setCacheListening(on: boolean): Promise<void> {
    const result = await this.run(`exec bash ${NODE_STATE}/cache.sh ${on ? "start" : "stop"}`);
    if (result.code !== 0) {
      throw new Error(`test node: cache ${on ? "start" : "stop"} failed: ${result.stderr}`);
    }
  }

  hostPids(): number[] {
    const pids = new Set<number>();
    if (
      this.init?.pid !== undefined &&
      this.init.exitCode === null &&
      this.init.signalCode === null
    ) {
      pids.add(this.init.pid);
    }
    for (const child of this.running) {
      if (child.pid !== undefined && processPresent(child.pid)) {
        pids.add(child.pid);
      }
    }
    if (this.pidNamespace !== "") {
      for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) {
          continue;
        }
        try {
          if (fs.readlinkSync(`/proc/${entry}/ns/pid`) === this.pidNamespace) {
            pids.add(Number(entry));
          }
        } catch {
          // exited meanwhile
        }
      }
    }
    return [...pids].sort((a, b) => a - b);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    liveNodes.delete(this);
    const pids = this.hostPids();
    for (const child of this.running) {
      killGroup(child.pid);
    }
    // pid 1 of the node: when it dies the kernel kills every other process in the node.
    killPid(this.initPid);
    const init = this.init;
    if (init !== undefined && this.initExited !== undefined) {
      init.stdin?.destroy();
      if (!(await settlesWithin(this.initExited, STOP_TIMEOUT_MS))) {
        killPid(init.pid);
        await settlesWithin(this.initExited, STOP_TIMEOUT_MS);
      }
      init.stdout?.destroy();
    }
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    let left = pids.filter(processPresent);
    while (left.length > 0 && Date.now() < deadline) {
      left.forEach(killPid);
      await sleep(20);
      left = left.filter(processPresent);
    }
    this.closeLog();
    fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    if (left.length > 0) {
      throw new Error(`test node: processes ${left.join(", ")} survived stop()`);
    }
  }

  private closeLog(): void {
    if (this.logFd !== undefined) {
      try {
        fs.closeSync(this.logFd);
      } catch {
        // already closed
      }
      this.logFd = undefined;
    }
  }

  /** Last resort when the test process exits with the node still running. */
  killSync(): void {
    for (const child of this.running) {
      killGroup(child.pid);
    }
    killPid(this.initPid);
    killPid(this.init?.pid);
    this.closeLog();
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
}

/** Lines of a child's stdout, awaited one expected line at a time. */
class LineReader {
  private buffer = "";
  private readonly lines: string[] = [];
  private exited = false;
  private wake: (() => void) | undefined;

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
      this.wake?.();
    });
    const ended = (): void => {
      this.exited = true;
      this.wake?.();
    };
    child.once("exit", ended);
    child.once("error", ended);
  }

  async expect(expected: string, deadline: number, log: () => string): Promise<void> {
    for (;;) {
      const line = this.lines.shift();
      if (line === expected) {
        return;
      }
      if (line !== undefined) {
        throw new Error(`test node: expected "${expected}" from init, got "${line}"\n${log()}`);
      }
      if (this.exited) {
        throw new Error(`test node: init exited before "${expected}"\n${log()}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`test node: no "${expected}" from init in time\n${log()}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 1000));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

/** Starts a test node; stop() it when done (an exit handler kills forgotten ones). */
export async function startTestNode(opts: TestNodeOptions = {}): Promise<TestNode> {
  const found = requireTools();
  const localDnsIp = opts.localDnsIp === undefined ? DEFAULT_LOCAL_DNS_IP : opts.localDnsIp;
  if (localDnsIp !== null && net.isIP(localDnsIp) === 0) {
    throw new Error(`localDnsIp is not an IP address: ${JSON.stringify(localDnsIp)}`);
  }
  const cacheListening = opts.cacheListening ?? localDnsIp !== null;
  if (cacheListening && localDnsIp === null) {
    throw new Error("cacheListening needs a localDnsIp");
  }
  const kubeletFailRestarts = opts.kubeletFailRestarts ?? 0;
  if (!Number.isInteger(kubeletFailRestarts) || kubeletFailRestarts < 0) {
    throw new Error(
      `kubeletFailRestarts must be a non-negative integer, got ${kubeletFailRestarts}`,
    );
  }
  const hostname = opts.hostname ?? "test-node";
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/i.test(hostname)) {
    throw new Error(`not a hostname: ${JSON.stringify(hostname)}`);
  }
  const files = opts.files ?? {};
  Object.keys(files).forEach(checkNodePath);

  installExitHandler();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "testnode-"));
  const node = new NamespaceNode(dir, localDnsIp, opts.ssh ?? true, found);
  liveNodes.add(node);
  try {
    await node.start({ cacheListening, kubeletFailRestarts, files, hostname });
  } catch (error) {
    await node.stop().catch(() => {});
    throw error;
  }
  return node;
}
