// The SystemdNode implementation: starts launcher.sh (which makes the node's cgroups and runs
// node-ns.sh → systemd-nspawn in fresh mount and network namespaces), follows its protocol, waits
// for the booted system and sshd, then runs commands, ssh and file operations in the container's
// namespaces through nsenter, and stops it so that no process, cgroup or temp dir survives.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import type * as net from "node:net";
import * as path from "node:path";
import {
  BOOT_TIMEOUT_MS,
  COMMAND_TIMEOUT_MS,
  FILE_OP_TIMEOUT_MS,
  HOST_PATH,
  LAUNCHER,
  NODE_ENV,
  SSH_ADDRESS,
  SSH_PORT,
  STOP_TIMEOUT_MS,
} from "./constants";
import { startDnsServer } from "./dnsServer";
import { kubeletStatus, waitForUnit } from "./kubelet";
import { LineQueue } from "./lines";
import { checkMode, checkNodePath, layOutNodeDir, type StagedFile } from "./nodeDir";
import { sshClientArgs, type NodeKeys } from "./ssh";
import type { SystemdTools } from "./support";
import type {
  DnsServer,
  DnsServerMode,
  ExecResult,
  KubeletStatus,
  SshOptions,
  SystemdNode,
} from "./types";
import { liveNodes } from "../processes/liveNodes";
import {
  exec,
  killGroup,
  killPid,
  pidsInNamespace,
  processPresent,
  settlesWithin,
  sleep,
} from "../processes/process";

/** Namespaces a command enters: all of the container's but its user namespace (it has none). */
const NSENTER_ALL = ["-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w"];

export class NspawnNode implements SystemdNode {
  leaderPid = 0;
  private nspawnPid = 0;
  private forwarderPid = 0;
  private pidNamespace = "";
  private readonly cgroups: string[] = [];
  private launcher: ChildProcess | undefined;
  private launcherExited: Promise<void> | undefined;
  private logFd: number | undefined;
  private readonly running = new Set<ChildProcess>();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly localDnsIp: string | null,
    readonly sshForward: { address: string; port: number } | null,
    private readonly keys: NodeKeys,
    private readonly tools: SystemdTools,
  ) {}

  get hostKey(): string {
    return this.keys.hostKey;
  }

  get privateKeyPath(): string {
    return this.keys.privateKeyPath;
  }

  async start(rootfs: string, files: StagedFile[], enable: string[]): Promise<void> {
    layOutNodeDir(this.dir, files, enable);
    this.logFd = fs.openSync(path.join(this.dir, "launcher.log"), "a");
    const forward = this.sshForward;
    const launcher = spawn(
      "bash",
      [
        LAUNCHER,
        this.dir,
        rootfs,
        this.name,
        this.localDnsIp ?? "",
        forward?.address ?? "",
        forward === null ? "" : String(forward.port),
      ],
      { env: { PATH: HOST_PATH }, stdio: ["pipe", "pipe", this.logFd], detached: true },
    );
    this.launcher = launcher;
    launcher.stdin?.on("error", () => {});
    const lines = new LineQueue(launcher);
    this.launcherExited = new Promise((resolve) => {
      launcher.once("exit", () => resolve());
      launcher.once("error", () => resolve());
    });

    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    const log = (): string => this.logs();
    let line: string | undefined;
    while ((line = await lines.next(deadline))?.startsWith("cgroup ")) {
      this.cgroups.push(line.slice("cgroup ".length));
    }
    if (line === undefined || !line.startsWith("nspawn ")) {
      throw new Error(`systemd node: launcher failed (${line ?? "no output"})\n${log()}`);
    }
    this.nspawnPid = Number(line.slice("nspawn ".length));
    this.leaderPid = Number(await lines.expect("leader", deadline, log));
    this.pidNamespace = fs.readlinkSync(`/proc/${this.leaderPid}/ns/pid`);
    if (forward !== null) {
      this.forwarderPid = Number(await lines.expect("forwarding", deadline, log));
    }
    await this.waitForBoot(deadline);
    const check = await this.ssh("true");
    if (check.code !== 0) {
      throw new Error(`systemd node: ssh check failed (${check.code}): ${check.stderr}\n${log()}`);
    }
    // A node that a test forgets to stop must not keep the test process alive; the exit handler
    // and the closed stdin pipe end it.
    launcher.unref();
    for (const stream of [launcher.stdin, launcher.stdout]) {
      (stream as unknown as net.Socket | null)?.unref();
    }
  }

  /** Waits until the container's systemd has finished booting ("running" or "degraded"). */
  private async waitForBoot(deadline: number): Promise<void> {
    let last = "";
    while (Date.now() < deadline) {
      if (!processPresent(this.leaderPid)) {
        break;
      }
      const seconds = Math.max(1, Math.floor((deadline - Date.now()) / 1000));
      const result = await this.run(`timeout ${seconds} systemctl is-system-running --wait`);
      const state = result.stdout.trim();
      if (state === "running" || state === "degraded") {
        return;
      }
      last = `${state} ${result.stderr.trim()}`.trim();
      await sleep(200);
    }
    throw new Error(`systemd node: did not boot (${last || "gone"})\n${this.logs()}`);
  }

  /** The tails of the launcher's log and of the container's console, for error messages. */
  logs(): string {
    const tail = (file: string): string => {
      try {
        const lines = fs.readFileSync(path.join(this.dir, file), "utf8").trim().split("\n");
        return lines.slice(-30).join("\n");
      } catch {
        return "";
      }
    };
    return `--- launcher.log\n${tail("launcher.log")}\n--- console.log\n${tail("console.log")}`;
  }

  isRunning(): boolean {
    return this.stopping === undefined && this.leaderPid !== 0;
  }

  private assertRunning(): void {
    if (!this.isRunning()) {
      throw new Error("systemd node is not running");
    }
  }

  async run(command: string, stdin?: string): Promise<ExecResult> {
    this.assertRunning();
    return exec(
      [
        this.tools.nsenter,
        "-t",
        String(this.leaderPid),
        ...NSENTER_ALL,
        "--",
        "/bin/bash",
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
    let knownHosts = this.keys.knownHostsPath;
    if (options.knownHosts !== undefined) {
      knownHosts = path.join(
        this.dir,
        "keys",
        `known_hosts.${process.hrtime.bigint().toString(36)}`,
      );
      fs.writeFileSync(knownHosts, options.knownHosts);
    }
    try {
      return await exec(
        [
          this.tools.nsenter,
          "-t",
          String(this.leaderPid),
          "-n",
          "--",
          this.tools.ssh,
          ...sshClientArgs({
            address: SSH_ADDRESS,
            port: SSH_PORT,
            user: options.user ?? "root",
            privateKeyPath: this.keys.privateKeyPath,
            knownHosts,
            command,
          }),
        ],
        stdin,
        COMMAND_TIMEOUT_MS,
        this.running,
      );
    } finally {
      if (knownHosts !== this.keys.knownHostsPath) {
        fs.rmSync(knownHosts, { force: true });
      }
    }
  }

  /** Runs a small command in the container's mount namespace and root, synchronously. */
  private fileOp(script: string, file: string, input?: Buffer): Buffer {
    this.assertRunning();
    checkNodePath(file);
    const result = spawnSync(
      this.tools.nsenter,
      ["-t", String(this.leaderPid), "-m", "-r", "-w", "--", "/bin/bash", "-c", script, "op", file],
      {
        env: NODE_ENV,
        input,
        timeout: FILE_OP_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    if (result.error !== undefined) {
      throw new Error(`systemd node: ${file}: ${result.error.message}`);
    }
    if (result.status !== 0) {
      throw new Error(`systemd node: ${file}: ${result.stderr.toString("utf8").trim()}`);
    }
    return result.stdout;
  }

  readFile(file: string): Buffer {
    return this.fileOp('exec cat -- "$1"', file);
  }

  writeFile(file: string, data: string | Buffer, mode?: number): void {
    checkMode(mode);
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

  waitForUnit(unit: string, state: string, timeoutMs: number): Promise<void> {
    return waitForUnit(this, unit, state, timeoutMs);
  }

  kubelet(): Promise<KubeletStatus> {
    return kubeletStatus(this);
  }

  startDnsServer(ip: string, mode: DnsServerMode): Promise<DnsServer> {
    return startDnsServer(this, ip, mode);
  }

  cpuSeconds(): number | undefined {
    for (const cgroup of this.cgroups) {
      let stat: string;
      try {
        stat = fs.readFileSync(path.join(cgroup, "cpu.stat"), "utf8");
      } catch {
        continue; // a cgroup v1 hierarchy: no cpu.stat
      }
      const usage = /^usage_usec (\d+)$/m.exec(stat);
      if (usage !== null) return Number(usage[1]) / 1e6;
    }
    return undefined;
  }

  hostPids(): number[] {
    const pids = new Set<number>();
    const launcherPid = this.launcher?.pid;
    if (launcherPid !== undefined && processPresent(launcherPid)) {
      descendants(launcherPid).forEach((pid) => pids.add(pid));
    }
    for (const child of this.running) {
      if (child.pid !== undefined && processPresent(child.pid)) {
        descendants(child.pid).forEach((pid) => pids.add(pid));
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
    // Closing the launcher's stdin makes it power the node off (bounded), SIGKILL what is left
    // and remove the cgroups.
    const launcher = this.launcher;
    if (launcher !== undefined && this.launcherExited !== undefined) {
      launcher.stdin?.end();
      if (!(await settlesWithin(this.launcherExited, STOP_TIMEOUT_MS))) {
        killGroup(launcher.pid);
        await settlesWithin(this.launcherExited, STOP_TIMEOUT_MS);
      }
      launcher.stdout?.destroy();
    }
    killPid(this.leaderPid);
    killPid(this.nspawnPid);
    killGroup(this.forwarderPid || undefined);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    let left = pids.filter(processPresent);
    while (left.length > 0 && Date.now() < deadline) {
      left.forEach(killPid);
      await sleep(50);
      left = left.filter(processPresent);
    }
    const cgroupsLeft = await removeCgroups(this.cgroups, deadline);
    this.closeLog();
    fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    if (left.length > 0 || cgroupsLeft.length > 0) {
      throw new Error(
        `systemd node: survived stop(): processes ${left.join(", ") || "none"}, ` +
          `cgroups ${cgroupsLeft.join(", ") || "none"}`,
      );
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

  /**
   * Last resort when the test process exits with the node still running: SIGKILL the container
   * and the forwarder; the launcher sees its stdin close with the process and removes the
   * cgroups.
   */
  killSync(): void {
    for (const child of this.running) {
      killGroup(child.pid);
    }
    killPid(this.leaderPid);
    killPid(this.nspawnPid);
    killGroup(this.forwarderPid || undefined);
    this.closeLog();
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
}

/** `pid` and every process below it (through /proc/<pid>/task/<tid>/children). */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && found.length < 10_000) {
    const next = queue.shift()!;
    found.push(next);
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${next}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const children = fs.readFileSync(`/proc/${next}/task/${tid}/children`, "utf8");
        queue.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
      } catch {
        // exited meanwhile
      }
    }
  }
  return found;
}

/** Removes cgroup dirs deepest first, retrying until `deadline`; returns those left. */
async function removeCgroups(cgroups: string[], deadline: number): Promise<string[]> {
  const remove = (dir: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) {
        remove(path.join(dir, entry.name));
      }
    }
    try {
      fs.rmdirSync(dir);
    } catch {
      // still has processes, or gone
    }
  };
  let left = cgroups.filter((dir) => fs.existsSync(dir));
  while (left.length > 0) {
    left.forEach(remove);
    left = left.filter((dir) => fs.existsSync(dir));
    if (left.length === 0 || Date.now() > deadline) {
      break;
    }
    await sleep(100);
  }
  return left;
}
