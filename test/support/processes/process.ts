// Process helpers of the test-node harnesses: running a command in its own process group with a
// timeout and collected output, killing by pid or group, and waiting with a bound.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { NODE_ENV } from "./constants";
import type { ExecResult } from "./types";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` settles within `ms` (its timer does not outlive it). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
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
export function processPresent(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

/** Host pids of every process in the pid namespace `ns` (a readlink of /proc/<pid>/ns/pid). */
export function pidsInNamespace(ns: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/pid`) === ns) {
        pids.push(Number(entry));
      }
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

export function killPid(pid: number | undefined): void {
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
export function killGroup(pid: number | undefined): void {
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

/**
 * Runs argv detached (its own process group) with NODE_ENV, feeding it `stdin` and collecting its
 * output; after `timeoutMs` kills the group and answers code 124. The child is in `running` while
 * it runs, so that the node can list and kill it.
 */
export function exec(
  argv: string[],
  stdin: string | undefined,
  timeoutMs: number,
  running: Set<ChildProcess>,
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: NODE_ENV,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    running.add(child);
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
      running.delete(child);
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
