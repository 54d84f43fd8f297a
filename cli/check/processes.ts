// Child processes of the check CLI (the Pulumi CLI, ssh and its bastion hop): each one runs in a
// process group of its own with a deadline, after which the whole group is killed, and
// stopAllProcesses() ends every group still running when the CLI is interrupted. Output is
// collected up to a bound, so a runaway remote cannot fill memory.
import { spawn } from "node:child_process";

export interface ProcessResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the deadline passed and the group was killed. */
  timedOut: boolean;
  /** Set when the program could not be started at all (ENOENT, EACCES, ...). */
  startError?: NodeJS.ErrnoException;
}

export interface ProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  stdin?: string;
  timeoutMs: number;
}

/** Most of each stream that is kept; the rest is dropped. */
const OUTPUT_LIMIT = 1024 * 1024;
/** After SIGTERM at the deadline, how long before SIGKILL. */
const KILL_GRACE_MS = 2_000;

const running = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Runs `file args` to its end or its deadline, in a process group of its own. */
export function runProcess(
  file: string,
  args: string[],
  options: ProcessOptions,
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    const deadline = setTimeout(() => {
      if (pid === undefined) return;
      timedOut = true;
      killGroup(pid, "SIGTERM");
      killTimer = setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS);
    }, options.timeoutMs);
    const keep = (text: string, chunk: Buffer) =>
      text.length >= OUTPUT_LIMIT ? text : text + chunk.toString("utf8");
    child.stdout?.on("data", (chunk: Buffer) => (stdout = keep(stdout, chunk)));
    child.stderr?.on("data", (chunk: Buffer) => (stderr = keep(stderr, chunk)));
    // A remote that exits before reading all of stdin closes the pipe: not an error of ours.
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.stdin);
    let finished = false;
    const finish = (result: Omit<ProcessResult, "stdout" | "stderr" | "timedOut">) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (pid !== undefined) running.delete(pid);
      resolve({ ...result, stdout, stderr, timedOut });
    };
    child.once("error", (error: NodeJS.ErrnoException) =>
      finish({ code: null, startError: error }),
    );
    child.once("close", (code) => finish({ code }));
  });
}

/** Kills every process group still running (on SIGINT/SIGTERM of the CLI). */
export function stopAllProcesses(): void {
  for (const pid of running) killGroup(pid, "SIGKILL");
  running.clear();
}
