// Network namespaces of their own for end-to-end suites whose nodes need addresses that
// kube-apiserver will dial: it refuses to proxy to loopback (and link-local) addresses, so such
// nodes get ordinary ones (10.254.0.x), and these exist only on the lo of a network namespace the
// test made itself, so that every packet stays on this machine.
//
// - runSuiteInOwnNetns(): what an outer test file (test/e2e/*.test.ts) calls to run an inner
//   suite (test/e2e/netns/*.suite.ts, which the e2e glob does not pick up) as
//   `unshare --net --kill-child=SIGTERM -- node --import tsx --test --test-reporter=spec <suite>`,
//   and to pass only when that run says every one of its tests passed.
// - requireOwnNetworkNamespace(), loopbackUp(), addLoopbackAddress(): what a suite inside does.

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const SWEEPER = path.join(__dirname, "netns-sweeper.sh");
const IP_TIMEOUT_MS = 10_000;
/** After the inner run exits: how long its output pipes may take to close. */
const CLOSE_GRACE_MS = 5_000;
/** How long the sweeper may take to end what is left of a run. */
const SWEEP_WAIT_MS = 10_000;

/**
 * Whether this process is in another network namespace than the machine's: pid 1's, where that
 * can be read. Where it cannot (an init that is not dumpable, as in some sandboxes, answers
 * EACCES even to root), an ancestor in another network namespace than this process (the one that
 * ran `unshare --net`) shows the same.
 */
export function inOwnNetworkNamespace(): boolean {
  const own = fs.readlinkSync("/proc/self/ns/net");
  const machine = networkNamespaceOf(1);
  if (machine !== undefined) return own !== machine;
  for (let pid = parentOf(process.pid); pid > 1; pid = parentOf(pid)) {
    const ancestor = networkNamespaceOf(pid);
    if (ancestor === undefined) break;
    if (ancestor !== own) return true;
  }
  return false;
}

function networkNamespaceOf(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/** The parent's pid, or 0 when it cannot be read. */
function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) || 0;
  } catch {
    return 0;
  }
}

/** Throws unless this process has a network namespace of its own: `what` would use the host's. */
export function requireOwnNetworkNamespace(what: string): void {
  if (!inOwnNetworkNamespace()) {
    throw new Error(
      `${what} puts addresses on lo and must run in a network namespace of its own ` +
        "(runSuiteInOwnNetns in test/e2e/support/netns.ts), not in the machine's",
    );
  }
}

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, {
    encoding: "utf8",
    timeout: IP_TIMEOUT_MS,
    killSignal: "SIGKILL",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

/** A new network namespace's lo is down: nothing, 127.0.0.1 included, answers until it is up. */
export function loopbackUp(): void {
  ip("link", "set", "lo", "up");
}

/** `address`/32 on lo (again: `replace` leaves an address already there as it is). */
export function addLoopbackAddress(address: string): void {
  ip("addr", "replace", `${address}/32`, "dev", "lo");
}

/** The spec reporter's closing counts. */
export type SpecCounts = Record<"pass" | "fail" | "cancelled" | "skipped" | "todo", number>;

const COUNT_NAMES = ["pass", "fail", "cancelled", "skipped", "todo"] as const;

/**
 * The counts of the spec reporter's summary (`ℹ pass 3` ...; the last of each, as the summary
 * comes last), or undefined when one of them is missing (the run ended before its summary).
 */
export function specCounts(output: string): SpecCounts | undefined {
  // eslint-disable-next-line no-control-regex -- colours, should a reporter add them
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const counts: Partial<SpecCounts> = {};
  for (const name of COUNT_NAMES) {
    const all = [...plain.matchAll(new RegExp(`^ℹ ${name} (\\d+)$`, "gm"))];
    const last = all.at(-1);
    if (last === undefined) return undefined;
    counts[name] = Number(last[1]);
  }
  return counts as SpecCounts;
}

/**
 * Why an inner run does not count as passed, or undefined when it does: it exited 0, and its
 * summary has a pass and nothing failed, cancelled, skipped or todo (a suite that skipped itself
 * proved nothing).
 */
export function suiteFailure(exit: string, output: string): string | undefined {
  const counts = specCounts(output);
  if (counts === undefined) return `the run ended (${exit}) without the spec reporter's summary`;
  const bad = (["fail", "cancelled", "skipped", "todo"] as const).filter((n) => counts[n] > 0);
  const tally = COUNT_NAMES.map((n) => `${n} ${counts[n]}`).join(", ");
  if (exit !== "code 0") return `the run ended with ${exit} (${tally})`;
  if (bad.length > 0) return `not every test passed (${tally})`;
  if (counts.pass === 0) return `no test passed (${tally})`;
  return undefined;
}

export interface SuiteRun {
  /** stdout and stderr of the inner run, interleaved as they came. */
  output: string;
  counts: SpecCounts;
  durationMs: number;
}

/**
 * Runs the node:test file `suite` in a new network namespace, in its own process group, its
 * output forwarded to this process's stderr as it comes. Throws (with the output's tail) unless
 * it passes as suiteFailure() says; SIGKILL to the whole group after `timeoutMs`.
 *
 * What ends the inner run's processes: on timeout, SIGKILL to its process group (unshare, the
 * test runner, the suite's process and what that spawned without a group of its own). After the
 * run, or should this process die first, netns-sweeper.sh kills whatever is left in the group and
 * in the namespace (Pulumi's plugins have groups of their own). The suite's own detached processes
 * (control plane, systemd nodes, socat) die with the suite's process anyway: parent-death
 * signals, or a closed stdin. `--kill-child` ends the test runner should unshare be killed alone.
 */
export function runSuiteInOwnNetns(suite: string, timeoutMs: number): Promise<SuiteRun> {
  // CI (and the rest of the environment) goes through, so that the inner suite fails rather than
  // skips under CI=true. NODE_TEST_CONTEXT must not: it is node's runner telling this process it
  // is a test file, and the inner `node --test` would report in its V8 wire format instead of spec.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      "unshare",
      [
        ...["--net", "--kill-child", "--"],
        ...[process.execPath, "--import", "tsx", "--test", "--test-reporter=spec", suite],
      ],
      { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    const sweeper = child.pid === undefined ? undefined : startSweeper(child.pid);
    let output = "";
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      process.stderr.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    let settled = false;
    const finish = async (exit: string): Promise<void> => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      await sweeper?.sweep();
      const durationMs = Date.now() - started;
      const failure = timedOut
        ? `timed out after ${timeoutMs} ms (SIGKILL to its process group)`
        : suiteFailure(exit, output);
      if (failure === undefined) {
        resolve({ output, counts: specCounts(output)!, durationMs });
      } else {
        const name = path.relative(REPO_ROOT, suite);
        reject(
          new Error(`${name} in its own network namespace: ${failure}\n${output.slice(-6000)}`),
        );
      }
    };
    child.once("error", (err) => void finish(`error ${err.message}`));
    child.once("exit", (code, signal) => {
      const exit = signal !== null ? `signal ${signal}` : `code ${code}`;
      // Its output may still be in the pipes; a process that kept them open must not hold us.
      child.once("close", () => void finish(exit));
      setTimeout(() => void finish(exit), CLOSE_GRACE_MS).unref();
    });
  });
}

/**
 * netns-sweeper.sh for the run whose unshare (and process group) is `pid`: it sweeps when its
 * stdin ends, so also when this process dies. In a session of its own, so that a signal to this
 * process's group does not take it along.
 */
function startSweeper(pid: number): { sweep(): Promise<void> } {
  const sweeper = spawn("bash", [SWEEPER, String(pid)], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
  });
  const ended = new Promise<void>((resolve) => {
    sweeper.once("exit", () => resolve());
    sweeper.once("error", () => resolve());
  });
  sweeper.stdin.on("error", () => {});
  sweeper.unref();
  (sweeper.stdin as unknown as { unref(): void }).unref();
  return {
    async sweep() {
      sweeper.ref(); // until it is done, this process must not run out of things to wait for
      sweeper.stdin.end();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, SWEEP_WAIT_MS)));
      await Promise.race([ended, bound]);
      clearTimeout(timer);
    },
  };
}
