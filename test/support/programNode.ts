// A systemd test node (test/support/systemdNode.ts) set up to run the node program: kubelet in a
// chosen layout, a DNS server on the cache's address inside the node, and helpers that run the
// program the way its Command does (on stdin over real OpenSSH, as root or as ops through
// `sudo -n`) and read back what changed. Several layouts can run one after another on one node:
// setLayout() wipes every file a layout may use and restarts kubelet on the new ones.

import assert from "node:assert/strict";
import {
  renderGuardProgram,
  renderNodeProgram,
  renderSwitchLauncher,
  type NodeAction,
  type NodeScriptParams,
} from "../../components/nodeScript";
import {
  startSystemdNode,
  type DnsServer,
  type ExecResult,
  type KubeletStatus,
  type SystemdNode,
  type SystemdNodeOptions,
} from "./systemdNode";

export const LOCAL_DNS_IP = "169.254.20.10";
export const KUBE_DNS_IP = "10.96.0.10";
export const STATE_DIR = "/var/lib/nodelocaldns";
export const KUBELET_UNIT = "kubelet.service";

/** Short waits: the stand-in kubelet starts in well under a second. */
export const PARAMS: NodeScriptParams = {
  nodeName: "node-1",
  localDnsIp: LOCAL_DNS_IP,
  clusterDnsIp: KUBE_DNS_IP,
  fallbackToKubeDns: false,
  clusterDomain: "cluster.local",
  kubelet: { format: "auto" },
  stateDir: STATE_DIR,
  readyTimeoutSeconds: 3,
  kubeletTimeoutSeconds: 15,
};

/** Every path a layout in these tests may write: setLayout() removes them all first. */
const LAYOUT_PATHS = [
  "/etc/systemd/system/kubelet.service",
  "/etc/systemd/system/kubelet.service.d",
  "/usr/lib/systemd/system/kubelet.service.d",
  "/etc/default/kubelet",
  "/etc/sysconfig/kubelet",
  "/etc/kubernetes",
  "/var/lib/kubelet",
  "/etc/kubelet-standin",
  STATE_DIR,
  "/var/lib/nodelocaldns-alt",
];

export interface RunOptions {
  /** Values that differ from PARAMS. */
  params?: Partial<NodeScriptParams>;
  /** "root" (default): `bash -s <action>`; "ops": `sudo -n bash -s <action>`. */
  user?: "root" | "ops";
  /** The program text to send instead of the rendered one. */
  program?: string;
  /** A second word after the action (a drift repair's `repair-<n>`, or a bad one). */
  word?: string;
}

export class ProgramNode {
  private dns: DnsServer | undefined;

  constructor(readonly node: SystemdNode) {}

  /** Runs the node program over real OpenSSH, as the switch Command does. */
  async run(action: NodeAction, options: RunOptions = {}): Promise<ExecResult> {
    const program = options.program ?? renderNodeProgram({ ...PARAMS, ...options.params });
    const words = options.word === undefined ? action : `${action} ${options.word}`;
    return this.send(words, program, options.user);
  }

  /**
   * Runs the switch launcher over real OpenSSH, as the switch Command does: it loads the program
   * kubelet delivered (see kubeletVolume.ts) and runs it.
   */
  async launch(action: NodeAction, options: RunOptions = {}): Promise<ExecResult> {
    return this.send(action, renderSwitchLauncher({ ...PARAMS, ...options.params }), options.user);
  }

  /** Runs the revert guard over real OpenSSH, as the guard Command does. */
  async guard(action: NodeAction, options: RunOptions = {}): Promise<ExecResult> {
    return this.send(action, renderGuardProgram({ ...PARAMS, ...options.params }), options.user);
  }

  private async send(action: string, program: string, user: "root" | "ops" = "root") {
    const command = user === "root" ? `bash -s ${action}` : `sudo -n bash -s ${action}`;
    const result = await this.node.ssh(command, program, { user });
    assertEveryLineNamesTheNode(result);
    return result;
  }

  text(path: string): string {
    return this.node.readFile(path).toString("utf8");
  }

  /** path -> content, or null where there is no file. */
  snapshot(paths: string[]): Record<string, string | null> {
    return Object.fromEntries(paths.map((p) => [p, this.node.exists(p) ? this.text(p) : null]));
  }

  /** Names in the state directory, or undefined when it does not exist. */
  async state(): Promise<string[] | undefined> {
    const r = await this.node.run(`cd ${STATE_DIR} 2>/dev/null && ls -A`);
    return r.code === 0 ? r.stdout.split("\n").filter((n) => n !== "") : undefined;
  }

  async kubelet(): Promise<KubeletStatus> {
    return this.node.kubelet();
  }

  /** Waits until kubelet runs and its effective config is the running process's. */
  async kubeletRunning(timeoutMs = 20_000): Promise<KubeletStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.node.kubelet();
      if (status.active === "active" && status.effective?.pid === status.mainPid) return status;
      if (Date.now() > deadline) assert.fail(`kubelet not running: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Replaces the kubelet layout: files (unit files included), then `setup` (shell), daemon-reload
   * and a kubelet restart.
   */
  async setLayout(files: Record<string, string>, setup = ""): Promise<KubeletStatus> {
    const wipe = await this.node.run(
      `rm -rf ${LAYOUT_PATHS.join(" ")} && systemctl unset-environment DNS_FLAGS`,
    );
    assert.equal(wipe.code, 0, wipe.stderr);
    for (const [path, content] of Object.entries(files)) this.node.writeFile(path, content);
    if (setup !== "") {
      const r = await this.node.run(setup);
      assert.equal(r.code, 0, r.stderr);
    }
    const before = await this.node.kubelet();
    const restart = await this.node.run(
      `systemctl daemon-reload && systemctl reset-failed ${KUBELET_UNIT} 2>/dev/null; ` +
        `systemctl enable -q ${KUBELET_UNIT} && systemctl restart ${KUBELET_UNIT}`,
    );
    assert.equal(restart.code, 0, restart.stderr);
    return this.kubeletStarted(before.starts);
  }

  /** Waits until kubelet has started more than `starts` times and is active. */
  async kubeletStarted(starts: number, timeoutMs = 20_000): Promise<KubeletStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.node.kubelet();
      if (status.active === "active" && status.starts > starts && status.effective !== null) {
        return status;
      }
      if (Date.now() > deadline) assert.fail(`kubelet did not start: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** A DNS server on the cache's address ("dns": it answers; other modes do not speak DNS). */
  async setCache(mode: "dns" | "silent" | "garbage" | null): Promise<void> {
    await this.dns?.stop();
    this.dns = mode === null ? undefined : await this.node.startDnsServer(LOCAL_DNS_IP, mode);
  }

  async stop(): Promise<void> {
    await this.node.stop();
  }
}

/**
 * Starts a node with kubelet in `files`' layout and, unless `options.cache` is false, a DNS
 * server answering on the cache's address (the end-to-end tests run the real cache instead).
 */
export async function startProgramNode(
  files: Record<string, string>,
  options: Pick<SystemdNodeOptions, "hostname" | "sshForward"> & { cache?: boolean } = {},
): Promise<ProgramNode> {
  const { cache = true, ...nodeOptions } = options;
  const node = new ProgramNode(
    await startSystemdNode({
      files,
      enable: [KUBELET_UNIT],
      localDnsIp: LOCAL_DNS_IP,
      ...nodeOptions,
    }),
  );
  try {
    await node.kubeletRunning();
    if (cache) await node.setCache("dns");
    return node;
  } catch (err) {
    await node.stop();
    throw err;
  }
}

/** Every line the programs print, on stdout and stderr, names the node. */
function assertEveryLineNamesTheNode(result: ExecResult): void {
  for (const line of `${result.stdout}${result.stderr}`.split("\n")) {
    if (line === "") continue;
    assert.match(line, /^nodelocaldns(-guard)?\[[a-z0-9.-]+\]: /, `unprefixed line: ${line}`);
  }
}

/** `text` with `from` (which must occur exactly once) replaced by `to`. */
export function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  assert.ok(at >= 0 && text.indexOf(from, at + 1) < 0, `expected exactly one ${from}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/**
 * A fixed number of program nodes shared by the tests of one file: use() waits for a free one.
 * Each test sets its own layout first (setLayout), so nodes carry nothing from test to test.
 */
export class ProgramNodePool {
  private readonly nodes: ProgramNode[] = [];
  private readonly idle: ProgramNode[] = [];
  private readonly waiting: ((node: ProgramNode) => void)[] = [];

  async start(count: number, files: Record<string, string>): Promise<void> {
    const started = await Promise.allSettled(
      Array.from({ length: count }, () => startProgramNode(files)),
    );
    for (const s of started) if (s.status === "fulfilled") this.nodes.push(s.value);
    this.idle.push(...this.nodes);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Every node of the pool (for set-up that each node needs). */
  get all(): readonly ProgramNode[] {
    return this.nodes;
  }

  async use<T>(body: (node: ProgramNode) => Promise<T>): Promise<T> {
    const node =
      this.idle.pop() ?? (await new Promise<ProgramNode>((resolve) => this.waiting.push(resolve)));
    try {
      return await body(node);
    } finally {
      const next = this.waiting.shift();
      if (next) next(node);
      else this.idle.push(node);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
