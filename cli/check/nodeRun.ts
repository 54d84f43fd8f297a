// Runs one node's check for real: writes the ssh command's files (private keys 0600, known_hosts)
// into a directory of their own, sends the node program to `bash -s check` over the OpenSSH client
// with a deadline, removes the files again (also when anything fails), and turns what came back
// into the node's line.
import * as fs from "node:fs";
import * as path from "node:path";
import { nodeScriptParams } from "../../components/nodeCommand";
import { renderNodeProgram } from "../../components/nodeScript";
import type { NodeSettings, ResolvedSettings } from "../../components/settings";
import { formatNodeLine, type NodeCheck, type SshTarget, summariseCheckRun } from "./checkOutput";
import { runProcess } from "./processes";
import { acceptedHostKey, endpoint, nodeSshCommand } from "./sshCommand";

export interface NodeRunOptions {
  /** The OpenSSH client. */
  ssh: string;
  connectTimeoutSeconds: number;
  /** The whole run of one node, connection included. */
  timeoutSeconds: number;
  /** An empty directory of this node's own (0700), removed by the caller too. */
  dir: string;
}

export interface NodeReport {
  check: NodeCheck;
  line: string;
}

function readIfThere(file: string | undefined): string {
  if (file === undefined) return "";
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** The CLI's environment (SSH_AUTH_SOCK for the agent) without what only Pulumi needs. */
function sshEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.PULUMI_CONFIG_PASSPHRASE;
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  return env;
}

function sshTarget(node: NodeSettings): SshTarget {
  const target: SshTarget = {
    endpoint: endpoint(node.host, node.port),
    user: node.user,
    hostKeyPinned: node.hostKey !== undefined,
  };
  if (node.proxy !== undefined) {
    target.bastion = {
      endpoint: endpoint(node.proxy.host, node.proxy.port),
      user: node.proxy.user,
      hostKeyPinned: node.proxy.hostKey !== undefined,
    };
  }
  return target;
}

/** What the line says about a host key that was not pinned. */
function unpinnedNote(who: string, knownHostsFile: string | undefined): string[] {
  if (knownHostsFile === undefined) return [];
  const accepted = acceptedHostKey(readIfThere(knownHostsFile));
  return [
    accepted === undefined
      ? `${who} host key not pinned`
      : `${who} host key not pinned: accepted ${accepted}`,
  ];
}

/** Checks one node over SSH; never throws for what happens on the node or in ssh. */
export async function checkNodeOverSsh(
  settings: ResolvedSettings,
  node: NodeSettings,
  options: NodeRunOptions,
): Promise<NodeReport> {
  const command = nodeSshCommand(node, options.dir, {
    ssh: options.ssh,
    connectTimeoutSeconds: options.connectTimeoutSeconds,
  });
  try {
    for (const file of command.files) {
      fs.writeFileSync(file.path, file.content, { mode: 0o600, flag: "wx" });
    }
    const result = await runProcess(options.ssh, command.args, {
      env: sshEnvironment(),
      stdin: renderNodeProgram(nodeScriptParams(settings, node)),
      timeoutMs: options.timeoutSeconds * 1000,
    });
    if (result.startError !== undefined) {
      throw new Error(
        `cannot run ${options.ssh} (${result.startError.code ?? result.startError.message}): ` +
          "install the OpenSSH client (openssh-client) or pass --ssh <path>",
      );
    }
    const check = summariseCheckRun(
      node.name,
      {
        code: result.code,
        stdout: result.stdout,
        stderr: result.stderr,
        timedOutAfterSeconds: result.timedOut ? options.timeoutSeconds : undefined,
        bastionStderr: readIfThere(command.bastionStderr),
      },
      sshTarget(node),
    );
    const notes = [
      ...unpinnedNote("node", command.acceptedHostKeys.node),
      ...unpinnedNote("bastion", command.acceptedHostKeys.bastion),
    ];
    return { check, line: formatNodeLine(node.name, check, notes) };
  } finally {
    fs.rmSync(options.dir, { recursive: true, force: true });
  }
}

/** A fresh 0700 directory for node `index` under the run's directory. */
export function nodeDir(runDir: string, index: number): string {
  const dir = path.join(runDir, `node-${index}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return dir;
}
