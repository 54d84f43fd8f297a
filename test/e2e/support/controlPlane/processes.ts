// The processes of one control plane: each component runs in its own process group with its
// output in <dir>/<name>.log, under `setpriv --pdeathsig KILL` (it dies with the test process);
// a reaper (reaper.sh) removes whatever is left, and the temp dir, if the test process dies
// without stopping them. Stopping is by pid: SIGTERM to the group, SIGKILL after a bound.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { sleep } from "../wait";

const REAPER = path.join(__dirname, "reaper.sh");
const ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const LOG_TAIL_LINES = 25;

export interface Component {
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit description ("code 1", "signal SIGKILL") when the process ends. */
  readonly exited: Promise<string>;
  running(): boolean;
}

/** A port on 127.0.0.1 that was free a moment ago (a component's bind can still race). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") {
          resolve(address.port);
        } else {
          reject(new Error("freePort: no address"));
        }
      });
    });
  });
}

function groupKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export class Processes {
  private readonly components: Component[] = [];
  private reaper: ChildProcess | undefined;

  constructor(private readonly dir: string) {}

  /** Starts the reaper; until stop() it cleans up after a test process that died. */
  startReaper(): void {
    const reaper = spawn("bash", [REAPER, this.dir], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env: { PATH: ENV_PATH },
    });
    reaper.stdin?.on("error", () => {});
    reaper.unref();
    (reaper.stdin as unknown as net.Socket | null)?.unref();
    this.reaper = reaper;
  }

  /** Starts `binary args` as component `name`; its output goes to <dir>/<name>.log. */
  spawn(name: string, binary: string, args: string[]): Component {
    const logPath = path.join(this.dir, `${name}.log`);
    const fd = fs.openSync(logPath, "a");
    let child: ChildProcess;
    try {
      child = spawn("setpriv", ["--pdeathsig", "KILL", "--", binary, ...args], {
        detached: true,
        stdio: ["ignore", fd, fd],
        env: { PATH: ENV_PATH, HOME: this.dir },
      });
    } finally {
      fs.closeSync(fd);
    }
    if (child.pid === undefined) {
      throw new Error(`${name}: could not start ${binary}`);
    }
    const pid = child.pid;
    let done = false;
    const exited = new Promise<string>((resolve) => {
      child.once("exit", (code, signal) => {
        done = true;
        resolve(signal !== null ? `signal ${signal}` : `code ${code}`);
      });
      child.once("error", (error) => {
        done = true;
        resolve(`error ${error.message}`);
      });
    });
    child.unref();
    this.reaper?.stdin?.write(`pid ${pid}\n`);
    const component: Component = {
      name,
      binary,
      args,
      pid,
      logPath,
      exited,
      running: () => !done,
    };
    this.components.push(component);
    return component;
  }

  /**
   * Stops the running component `name` (SIGTERM to its group, SIGKILL after `termWaitMs`) and
   * starts it again with the same binary and args; its log goes on in the same file.
   */
  async restart(name: string, termWaitMs: number): Promise<Component> {
    const running = this.components.find((c) => c.name === name && c.running());
    if (running === undefined) throw new Error(`restart: ${name} is not running`);
    const survivors = await this.stopComponents([running], termWaitMs);
    if (survivors.length > 0) throw new Error(`restart: ${name} survived SIGKILL`);
    return this.spawn(name, running.binary, [...running.args]);
  }

  pids(): number[] {
    return this.components.filter((c) => c.running()).map((c) => c.pid);
  }

  /** The last lines of a component's log. */
  tail(name: string, lines = LOG_TAIL_LINES): string {
    try {
      const text = fs.readFileSync(path.join(this.dir, `${name}.log`), "utf8").trimEnd();
      return text.split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** The tails of every component's log, for error messages. */
  tails(): string {
    const names = [...new Set(this.components.map((c) => c.name))];
    return names.map((name) => `--- ${name}.log\n${this.tail(name)}`).join("\n");
  }

  /**
   * Stops the components wave by wave (each wave: SIGTERM to every group, then SIGKILL to those
   * still running after `termWaitMs`); components not named in any wave go in a last wave.
   * Returns the pids that survived SIGKILL (none, normally).
   */
  async stop(waves: string[][], termWaitMs: number): Promise<number[]> {
    const named = new Set(waves.flat());
    const rest = this.components.filter((c) => !named.has(c.name)).map((c) => c.name);
    const survivors: number[] = [];
    for (const wave of [rest, ...waves]) {
      const members = this.components.filter((c) => wave.includes(c.name) && c.running());
      survivors.push(...(await this.stopComponents(members, termWaitMs)));
    }
    return survivors;
  }

  /** SIGTERM to each group, SIGKILL to those still running after `termWaitMs`; the survivors. */
  private async stopComponents(members: Component[], termWaitMs: number): Promise<number[]> {
    members.forEach((c) => groupKill(c.pid, "SIGTERM"));
    await this.settle(members, termWaitMs);
    members.filter((c) => c.running()).forEach((c) => groupKill(c.pid, "SIGKILL"));
    await this.settle(members, 5_000);
    return members.filter((c) => c.running()).map((c) => c.pid);
  }

  private async settle(members: Component[], ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (members.some((c) => c.running()) && Date.now() < deadline) {
      await sleep(50);
    }
  }

  /** Tells the reaper that everything is cleaned up, so that it exits doing nothing. */
  releaseReaper(): void {
    const reaper = this.reaper;
    this.reaper = undefined;
    if (reaper !== undefined) {
      reaper.stdin?.end("done\n");
    }
  }

  /** Exit-handler path: SIGKILL every component group at once. */
  killSync(): void {
    for (const c of this.components) {
      if (c.running()) {
        groupKill(c.pid, "SIGKILL");
      }
    }
  }
}
