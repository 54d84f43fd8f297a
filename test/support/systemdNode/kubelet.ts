// What a test asks a systemd node about its units and the stand-in kubelet: waitForUnit() polls
// `systemctl show`; kubeletStatus() reads systemd's view (is-active, MainPID, the main process's
// command line) and the stand-in's own records (starts.log, effective.json) in one command.

import { KUBELET_EFFECTIVE, KUBELET_STARTS_LOG } from "./constants";
import { checkUnitName } from "./nodeDir";
import type { ExecResult, KubeletEffective, KubeletStatus } from "./types";
import { sleep } from "../processes/process";

/** What these helpers need of a node. */
export interface Runner {
  run(command: string, stdin?: string): Promise<ExecResult>;
}

const POLL_MS = 200;

export async function waitForUnit(
  node: Runner,
  unit: string,
  state: string,
  timeoutMs: number,
): Promise<void> {
  checkUnitName(unit);
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const result = await node.run(`systemctl show -p ActiveState -p SubState --value -- ${unit}`);
    const states = result.stdout.trim().split("\n");
    if (result.code === 0 && states.includes(state)) {
      return;
    }
    last = states.join("/") || result.stderr.trim();
    if (Date.now() + POLL_MS > deadline) {
      break;
    }
    await sleep(POLL_MS);
  }
  const status = await node.run(
    `systemctl status --no-pager -- ${unit}; journalctl --no-pager -n 20 -u ${unit}`,
  );
  throw new Error(
    `systemd node: ${unit} not ${state} after ${timeoutMs} ms (last ${last})\n${status.stdout}`,
  );
}

// One line per field: active, main pid, then base64 of the command line and of effective.json.
const STATUS_SCRIPT = `u=kubelet.service
echo "active=$(systemctl is-active $u 2>/dev/null)"
pid=$(systemctl show -p MainPID --value $u)
echo "pid=$pid"
if [[ $pid != 0 ]]; then echo "cmdline=$(base64 -w0 /proc/$pid/cmdline 2>/dev/null)"; fi
if [[ -f ${KUBELET_STARTS_LOG} ]]; then echo "starts=$(wc -l <${KUBELET_STARTS_LOG})"; fi
if [[ -f ${KUBELET_EFFECTIVE} ]]; then echo "effective=$(base64 -w0 ${KUBELET_EFFECTIVE})"; fi
`;

export async function kubeletStatus(node: Runner): Promise<KubeletStatus> {
  const result = await node.run(STATUS_SCRIPT);
  if (result.code !== 0) {
    throw new Error(`systemd node: kubelet status failed (${result.code}): ${result.stderr}`);
  }
  const fields = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) {
      fields.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  const decode = (key: string): string =>
    Buffer.from(fields.get(key) ?? "", "base64").toString("utf8");
  const mainPid = Number(fields.get("pid") ?? "0");
  const effective = fields.has("effective")
    ? (JSON.parse(decode("effective")) as KubeletEffective)
    : null;
  return {
    active: fields.get("active") ?? "",
    mainPid,
    cmdline: mainPid === 0 ? [] : kubeletArgv(decode("cmdline")),
    starts: Number(fields.get("starts") ?? "0"),
    effective,
  };
}

/**
 * The NUL-separated command line as kubelet's argv. The stand-in rewrites its own command line to
 * kubelet's (see look_like_kubelet in kubelet-standin.py); the interpreter's bytes it frees become
 * one `--v=000...` argument at the end, which is not part of the unit's command line: dropped
 * here. (Before the rewrite, a just-forked stand-in still shows python3 first: dropped too.)
 */
function kubeletArgv(cmdline: string): string[] {
  const argv = cmdline.split("\0");
  if (argv.at(-1) === "") {
    argv.pop();
  }
  if (/^--v=0{2,}$/.test(argv.at(-1) ?? "")) {
    argv.pop();
  }
  if (/(^|\/)python3(\.\d+)?$/.test(argv[0] ?? "") && argv.length > 1) {
    argv.shift();
  }
  return argv;
}
