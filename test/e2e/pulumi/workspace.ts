// The Pulumi side of the end-to-end tests: the CLI and plugins built from Go modules
// (test/e2e/toolchain), an isolated PULUMI_HOME and local state backend, a project directory that
// holds this repository's Pulumi.yaml and program (so stack files never land in the repository),
// and helpers that run the real CLI there and one operation at a time through runner.ts.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..", "..", "..");

export interface PulumiTools {
  pulumi: string;
  "pulumi-resource-kubernetes": string;
  "pulumi-resource-command": string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Stopped at its time limit (see run). */
  timedOut?: boolean;
}

/** How long a stopped process group gets after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;

export interface OperationResult {
  ok: boolean;
  error?: string;
  summary?: { result: string; resourceChanges?: Record<string, number> };
  changeSummary?: Record<string, number>;
  outputs?: Record<string, unknown>;
  /** Everything the engine printed. */
  log: string;
}

export class PulumiWorkspace {
  private operations = 0;

  private constructor(
    readonly dir: string,
    readonly projectDir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * A fresh PULUMI_HOME with the two provider plugins installed from their built binaries, and a
   * local backend, under one temp dir. kubeconfig: what the kubernetes provider connects with.
   */
  static async create(tools: PulumiTools, kubeconfig: string): Promise<PulumiWorkspace> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-e2e-pulumi-"));
    const projectDir = path.join(dir, "project");
    fs.mkdirSync(projectDir);
    fs.mkdirSync(path.join(dir, "state"));
    for (const name of ["Pulumi.yaml", "package.json", "tsconfig.json", "node_modules"]) {
      fs.symlinkSync(path.join(ROOT, name), path.join(projectDir, name));
    }
    // The program itself is copied: the SDK stores each resource's source position relative to the
    // project directory, so the state then holds what an operator's does (a symlink would resolve
    // to paths outside the project, longer in every Command's state).
    for (const name of ["index.ts", "components"]) {
      fs.cpSync(path.join(ROOT, name), path.join(projectDir, name), { recursive: true });
    }
    const env: NodeJS.ProcessEnv = {
      PATH: `${path.dirname(tools.pulumi)}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: process.env.HOME,
      PULUMI_HOME: path.join(dir, "home"),
      PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      // A missing plugin fails at once instead of a download attempt (there is no network).
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      KUBECONFIG: kubeconfig,
    };
    const ws = new PulumiWorkspace(dir, projectDir, env);
    for (const [name, version, binary] of [
      ["command", "1.2.1", tools["pulumi-resource-command"]],
      ["kubernetes", "4.25.0", tools["pulumi-resource-kubernetes"]],
    ] as const) {
      const r = await ws.cli(["plugin", "install", "resource", name, version, "--file", binary]);
      if (r.code !== 0) throw new Error(`pulumi plugin install ${name}: ${r.stderr}`);
    }
    return ws;
  }

  /** The real CLI in the project directory. */
  cli(args: string[], stdin?: string): Promise<ExecResult> {
    return run(this.env.PATH!.split(":")[0] + "/pulumi", args, this.projectDir, this.env, stdin);
  }

  /** `npm run check` on a stack of this workspace, with its CLI and secrets passphrase. */
  check(stack: string, args: string[] = []): Promise<ExecResult> {
    const pulumi = this.env.PATH!.split(":")[0] + "/pulumi";
    const cli = path.join(ROOT, "cli", "check.ts");
    const options = ["--stack", stack, "--project-dir", this.projectDir, "--pulumi", pulumi];
    return run(process.execPath, ["--import", "tsx", cli, ...options, ...args], ROOT, this.env);
  }

  /**
   * One operation through the Automation API (runner.ts), in its own process; `program`: another
   * program module than the project's index.ts (an absolute path). With `timeoutMs`, an operation
   * still running then is stopped (the runner, the CLI and its plugins, as one process group) and
   * reported as failed.
   */
  async operation(
    op: "up" | "preview" | "destroy" | "refresh",
    stack: string,
    args: Record<string, unknown> = {},
    program?: string,
    timeoutMs?: number,
  ): Promise<OperationResult> {
    const request = JSON.stringify({ op, stack, workDir: this.projectDir, args, program });
    const r = await run(
      process.execPath,
      ["--import", "tsx", path.join(__dirname, "runner.ts"), request],
      ROOT,
      this.env,
      undefined,
      timeoutMs,
    );
    let result: Omit<OperationResult, "log">;
    let log: string;
    if (r.timedOut) {
      result = { ok: false, error: `${op} still ran after ${timeoutMs! / 1000} s: stopped` };
      log = r.stdout;
    } else {
      const at = r.stdout.lastIndexOf("\nRESULT ");
      if (at < 0) throw new Error(`runner printed no result (${r.code}): ${r.stderr}\n${r.stdout}`);
      result = JSON.parse(r.stdout.slice(at + "\nRESULT ".length)) as OperationResult;
      log = r.stdout.slice(0, at);
    }
    // NODELOCALDNS_E2E_LOG_DIR keeps every operation's engine output, for a failure's post-mortem.
    const keep = process.env.NODELOCALDNS_E2E_LOG_DIR;
    if (keep !== undefined) {
      fs.mkdirSync(keep, { recursive: true });
      this.operations += 1;
      fs.writeFileSync(
        path.join(keep, `${this.operations}-${stack}-${op}.log`),
        `${log}\n${result.error ?? ""}`,
      );
    }
    return { ...result, log };
  }

  /** The stack's checkpoint (the local backend's state file). */
  checkpoint(stack: string): unknown {
    const file = path.join(this.dir, "state", ".pulumi", "stacks", "nodelocaldns", `${stack}.json`);
    return JSON.parse(fs.readFileSync(file, "utf8"));
  }

  /** The outputs the stack's state holds for the resource named `name` (its URN's last part). */
  outputsOf(stack: string, name: string): Record<string, unknown> {
    const state = this.checkpoint(stack) as {
      checkpoint: { latest: { resources?: { urn: string; outputs?: Record<string, unknown> }[] } };
    };
    const found = state.checkpoint.latest.resources?.find((r) => r.urn.endsWith(`::${name}`));
    if (found === undefined) throw new Error(`${name}: not in the state of stack ${stack}`);
    return found.outputs ?? {};
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Runs `file`; with `timeoutMs`, in a process group of its own, which is sent SIGTERM at the limit
 * and SIGKILL STOP_GRACE_MS later, so that nothing it started outlives it.
 */
function run(
  file: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  stdin?: string,
  timeoutMs?: number,
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const detached = timeoutMs !== undefined;
    const child = spawn(file, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // The group is gone already.
      }
    };
    if (detached) {
      timers.push(
        setTimeout(() => {
          timedOut = true;
          signalGroup("SIGTERM");
          timers.push(setTimeout(() => signalGroup("SIGKILL"), STOP_GRACE_MS));
        }, timeoutMs),
      );
    }
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      timers.forEach(clearTimeout);
      // The runner is gone; whatever else of its group is left goes with it.
      if (timedOut) signalGroup("SIGKILL");
      resolve({ code: code ?? 1, stdout, stderr, timedOut });
    });
    child.stdin.end(stdin ?? "");
  });
}
