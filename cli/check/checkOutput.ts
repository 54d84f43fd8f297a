// What a node's check run says, in one line: the node program's `check:` lines (what kubelet uses
// and from where, the cache probe, kubelet's health, and the verdict: what create would do or why
// it would refuse), or, when the program never ran, why SSH (or sudo) failed. Pure, so every
// wording the program prints and every ssh failure is tested without a node.

export type Verdict = "switch" | "adopt" | "already" | "fail" | "unchecked";

export interface NodeCheck {
  verdict: Verdict;
  /** What create would do, or why it would fail, or why the node could not be checked. */
  detail: string;
  /** Facts the program printed before its verdict, already worded for the line. */
  facts: string[];
}

/** How a check run ended: ssh's exit code and output, or that it was stopped at the deadline. */
export interface CheckRun {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOutAfterSeconds?: number;
  /** The bastion hop's own messages, when there is a bastion. */
  bastionStderr?: string;
}

/** One hop of the connection: the node, or its bastion. */
export interface SshHop {
  /** "127.0.0.5:2222" */
  endpoint: string;
  user: string;
  hostKeyPinned: boolean;
}

/** Who the connection went to, for ssh's failure messages. */
export interface SshTarget extends SshHop {
  /** The bastion, when there is one. */
  bastion?: SshHop;
}

/** ssh exits 255 for its own errors; the remote command's status otherwise. */
const SSH_FAILED = 255;

/** The text after `nodelocaldns[<node>]: ` of each line that names this node. */
function programLines(node: string, text: string): string[] {
  const prefix = `nodelocaldns[${node}]: `;
  return text
    .split("\n")
    .map((line) => line.replace(/\r$/, ""))
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length));
}

function lastLine(text: string): string | undefined {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .pop();
}

/** The facts of the check lines, in the order the line shows them. */
function facts(lines: string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^check: cluster DNS (\S+): (.*)$/))) {
      out.push(`cluster DNS ${m[1]} (${m[2]})`);
    } else if ((m = line.match(/^check: the cache answers on \S+ \(.*: ([A-Z]+)\)$/))) {
      out.push(`cache answers (${m[1]})`);
    } else if ((m = line.match(/^check: cache not ready: (.*)$/))) {
      out.push(`cache NOT ready: ${m[1]}`);
    } else if ((m = line.match(/^check: kubelet running \(pid \d+\),? ?(.*)$/))) {
      out.push(`kubelet ${m[1] === "" ? "running" : m[1]}`);
    } else if ((m = line.match(/^check: a (\w+) was interrupted; (.*)$/))) {
      out.push(`an interrupted ${m[1]}: ${m[2]}`);
    }
  }
  // Cluster DNS first (what is there), then the cache, then kubelet, as an operator reads it.
  const rank = (fact: string) =>
    ["cluster DNS", "cache", "kubelet", "an interrupted"].findIndex((p) => fact.startsWith(p));
  return out.sort((a, b) => rank(a) - rank(b));
}

/** The verdict line of a check that ended well, or undefined. */
function verdict(lines: string[]): Pick<NodeCheck, "verdict" | "detail"> | undefined {
  for (const line of lines) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^check: create would switch (.*)$/))) {
      return { verdict: "switch", detail: `would switch ${m[1]}` };
    }
    if (/^check: create would do nothing: already switched$/.test(line)) {
      return { verdict: "already", detail: "already switched: create would do nothing" };
    }
    if ((m = line.match(/^check: create would adopt (.*)$/))) {
      return { verdict: "adopt", detail: `would adopt ${m[1]}` };
    }
  }
  return undefined;
}

/** The reason of the program's `error:` line, without its fixed words. */
function refusal(stderrLines: string[]): string | undefined {
  const line = stderrLines.find((l) => l.startsWith("error: "));
  if (line === undefined) return undefined;
  return line
    .slice("error: ".length)
    .replace(/^check: create would refuse: /, "")
    .replace(/; nothing changed$/, "");
}

/** The ssh client and sudo messages this reads, as patterns and what they mean. */
const SSH_FAILURES: [RegExp, (m: RegExpMatchArray, t: SshHop) => string][] = [
  [
    /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key is known/,
    (_, t) =>
      t.hostKeyPinned
        ? `the host key of ${t.endpoint} did not match the pinned hostKey`
        : `the host key of ${t.endpoint} could not be verified`,
  ],
  [/Load key "[^"]*": (.*)/, (m) => `the private key could not be loaded (${m[1]!.trim()})`],
  [
    /Permission denied \(([^)]*)\)/,
    (m, t) => `${t.user}@${t.endpoint} refused the login (${m[1]})`,
  ],
  [
    /connect to host \S+ port \d+: (.*)/,
    (m, t) => `cannot connect to ${t.endpoint}: ${m[1]!.trim()}`,
  ],
  [
    /Could not resolve hostname [^:]*: (.*)/,
    (m, t) => `cannot resolve the host of ${t.endpoint}: ${m[1]!.trim()}`,
  ],
  [
    /Connection timed out during banner exchange/,
    (_, t) => `${t.endpoint} did not speak SSH in time`,
  ],
  [/^sudo: (.*)$/m, (m, t) => `sudo -n failed for ${t.user}: ${m[1]!.trim()}`],
];

/**
 * Why the command did not run, from ssh's (or sudo's) messages; `code` is the exit status (ssh's
 * own failures are 255, anything else came from the remote side).
 */
export function describeSshFailure(
  stderr: string,
  target: SshHop,
  code: number | null = 255,
): string {
  for (const [pattern, meaning] of SSH_FAILURES) {
    const m = stderr.match(pattern);
    if (m) return meaning(m, target);
  }
  const last = lastLine(stderr);
  if (code !== SSH_FAILED) {
    return `the command failed (exit ${code ?? "by signal"})${last === undefined ? "" : `: ${last}`}`;
  }
  return last === undefined ? "ssh failed without a message" : `ssh: ${last}`;
}

function unchecked(run: CheckRun, target: SshTarget): NodeCheck {
  if (run.timedOutAfterSeconds !== undefined) {
    return {
      verdict: "unchecked",
      detail: `no result within ${run.timedOutAfterSeconds}s (ssh stopped)`,
      facts: [],
    };
  }
  const bastionProblem =
    target.bastion !== undefined && lastLine(run.bastionStderr ?? "") !== undefined;
  const detail = bastionProblem
    ? `bastion: ${describeSshFailure(run.bastionStderr!, target.bastion!)}`
    : describeSshFailure(run.stderr, target, run.code);
  return { verdict: "unchecked", detail, facts: [] };
}

/** What one node's check run says. */
export function summariseCheckRun(node: string, run: CheckRun, target: SshTarget): NodeCheck {
  const stdoutLines = programLines(node, run.stdout);
  const stderrLines = programLines(node, run.stderr);
  const ran = stdoutLines.length + stderrLines.length > 0;
  if (run.timedOutAfterSeconds !== undefined || (!ran && run.code !== 0)) {
    return unchecked(run, target);
  }
  if (run.code === SSH_FAILED && refusal(stderrLines) === undefined) {
    return unchecked(run, target);
  }
  const known = facts(stdoutLines);
  const reason = refusal(stderrLines);
  if (reason !== undefined)
    return { verdict: "fail", detail: `would FAIL: ${reason}`, facts: known };
  const found = verdict(stdoutLines);
  if (run.code === 0 && found !== undefined) return { ...found, facts: known };
  const why = lastLine(run.stderr);
  return {
    verdict: "fail",
    detail:
      `would FAIL: the check ended (exit ${run.code ?? "by signal"}) without a verdict` +
      (why === undefined ? "" : `: ${why}`),
    facts: known,
  };
}

/** One node's line: `<node>: <what create would do>; <facts>; <notes>`. */
export function formatNodeLine(node: string, check: NodeCheck, notes: string[] = []): string {
  return [`${node}: ${check.detail}`, ...check.facts, ...notes].join("; ");
}

const VERDICT_WORDS: Record<Verdict, string> = {
  switch: "would switch",
  adopt: "would adopt",
  already: "already switched",
  fail: "would fail",
  unchecked: "could not be checked",
};

/** `checked 12 nodes: 10 would switch, 1 already switched, 1 would fail` */
export function formatSummary(verdicts: Verdict[]): string {
  const counts = (Object.keys(VERDICT_WORDS) as Verdict[])
    .map((v) => [v, verdicts.filter((x) => x === v).length] as const)
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${n} ${VERDICT_WORDS[v]}`);
  const nodes = `${verdicts.length} node${verdicts.length === 1 ? "" : "s"}`;
  return counts.length === 0 ? `checked ${nodes}` : `checked ${nodes}: ${counts.join(", ")}`;
}

/** Whether create would go through on every node. */
export function allWouldSucceed(verdicts: Verdict[]): boolean {
  return verdicts.every((v) => v !== "fail" && v !== "unchecked");
}
