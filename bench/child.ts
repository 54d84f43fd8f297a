// Runs a bench worker in a fresh Node process (`node --import tsx bench/<script>`) and returns the
// JSON it prints after RESULT_PREFIX, with the whole process's wall time as seen by the parent.
import { spawn } from "node:child_process";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { RESULT_PREFIX } from "./programProtocol";

export const ROOT = path.join(__dirname, "..");

export function runWorker<T>(script: string, args: string[]): Promise<{ result: T; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join("bench", script), ...args],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => stdout.push(d));
    child.stderr.on("data", (d: Buffer) => stderr.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - start;
      const out = Buffer.concat(stdout).toString("utf8");
      const line = out.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || line === undefined) {
        const err = Buffer.concat(stderr).toString("utf8");
        reject(new Error(`${script} ${args.join(" ")} failed (exit ${code}):\n${err}${out}`));
        return;
      }
      resolve({ result: JSON.parse(line.slice(RESULT_PREFIX.length)) as T, ms });
    });
  });
}
