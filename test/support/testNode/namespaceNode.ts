// The TestNode implementation: prepares a node's host dir (scripts, stub state, keys), starts its
// pid 1 under unshare and follows init's protocol, then runs commands, ssh and file operations in
// the node's namespaces through nsenter, and stops it so that no process or mount survives.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import type * as net from "node:net";
import * as path from "node:path";
import {
  COMMAND_TIMEOUT_MS,
  FILE_OP_TIMEOUT_MS,
  HOST_PATH,
  NODE_ENV,
  NODE_STATE,
  SSH_PORT,
  START_TIMEOUT_MS,
  STOP_TIMEOUT_MS,
  UNSHARE_FLAGS,
} from "./constants";
import { liveNodes } from "./liveNodes";
import { layOutNodeDir } from "./nodeDir";
import {
  exec,
  killGroup,
  killPid,
  LineReader,
  pidsInNamespace,
  processPresent,
  settlesWithin,
  sleep,
} from "./process";
import { setUpSshKeys, sshClientArgs } from "./ssh";
import type { Tools } from "./support";
import type { ExecResult, SshOptions, TestNode } from "./types";

/** One test node: its host dir, its init process, and the commands running in it. */
export class NamespaceNode implements TestNode {
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
    layOutNodeDir(dir, this.localDnsIp);
    this.setKubeletFailRestarts(opts.kubeletFailRestarts);

    if (this.sshEnabled) {
      this.hostKey = await setUpSshKeys(
        this.tools.sshKeygen,
        state,
        this.privateKeyPath,
        this.knownHostsPath,
      );
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

  async run(command: string, stdin?: string): Promise<ExecResult> {
    this.assertRunning();
    return exec(
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
      this.running,
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
      return await exec(
        [
          this.tools.nsenter,
          "-t",
          String(this.initPid),
          "-n",
          "--",
          this.tools.ssh,
          ...sshClientArgs(this.sshPort, this.privateKeyPath, knownHosts, command),
        ],
        stdin,
        COMMAND_TIMEOUT_MS,
        this.running,
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
      pidsInNamespace(this.pidNamespace).forEach((pid) => pids.add(pid));
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

/** Throws unless `file` is an absolute path (as seen inside the node). */
export function checkNodePath(file: string): void {
  if (!path.posix.isAbsolute(file) || file.includes("\0")) {
    throw new Error(`test node paths must be absolute (inside the node): ${JSON.stringify(file)}`);
  }
}
