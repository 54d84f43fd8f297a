// SSH of a systemd test node: a fresh host key and client key per node (the root filesystem has
// none baked in), the files that put them into the node before boot, and the OpenSSH client's
// arguments (key only, host key pinned, nothing read from ~/.ssh or /etc/ssh).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { FILE_OP_TIMEOUT_MS, HOST_PATH, SSH_ADDRESS } from "./constants";

export interface NodeKeys {
  /** The node's host key, "ssh-ed25519 AAAA...". */
  hostKey: string;
  /** Host path of the client's private key. */
  privateKeyPath: string;
  /** Host path of the known_hosts that pins hostKey for 127.0.0.1:22 in the node. */
  knownHostsPath: string;
  hostPrivateKey: string;
  clientPublicKey: string;
}

/** Creates the node's host key and a client key in `dir`/keys. */
export async function makeNodeKeys(sshKeygen: string, dir: string): Promise<NodeKeys> {
  const keys = path.join(dir, "keys");
  fs.mkdirSync(keys, { mode: 0o700 });
  const hostKeyFile = path.join(keys, "ssh_host_ed25519_key");
  const privateKeyPath = path.join(keys, "id_ed25519");
  await Promise.all([keygen(sshKeygen, hostKeyFile), keygen(sshKeygen, privateKeyPath)]);
  const hostKey = publicKey(`${hostKeyFile}.pub`);
  const knownHostsPath = path.join(keys, "known_hosts");
  fs.writeFileSync(knownHostsPath, `${SSH_ADDRESS} ${hostKey}\n`);
  return {
    hostKey,
    privateKeyPath,
    knownHostsPath,
    hostPrivateKey: fs.readFileSync(hostKeyFile, "utf8"),
    clientPublicKey: publicKey(`${privateKeyPath}.pub`),
  };
}

/** The node files that install the keys: host key, authorized_keys of root and ops. */
export function keyFiles(
  keys: NodeKeys,
): { path: string; content: string; mode: number; owner?: string }[] {
  const authorized = `${keys.clientPublicKey}\n`;
  return [
    { path: "/etc/ssh/ssh_host_ed25519_key", content: keys.hostPrivateKey, mode: 0o600 },
    { path: "/etc/ssh/ssh_host_ed25519_key.pub", content: `${keys.hostKey}\n`, mode: 0o644 },
    { path: "/root/.ssh/authorized_keys", content: authorized, mode: 0o600 },
    {
      path: "/home/ops/.ssh/authorized_keys",
      content: authorized,
      mode: 0o600,
      owner: "ops:ops",
    },
  ];
}

function keygen(sshKeygen: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file], {
      env: { PATH: HOST_PATH },
      stdio: ["ignore", "ignore", "pipe"],
      timeout: FILE_OP_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`ssh-keygen failed (${code}): ${stderr}`)),
    );
  });
}

/** Reads an ssh public key file as "type base64" (no comment). */
function publicKey(file: string): string {
  const [type, key] = fs.readFileSync(file, "utf8").trim().split(/\s+/);
  if (type === undefined || key === undefined) {
    throw new Error(`not an ssh public key: ${file}`);
  }
  return `${type} ${key}`;
}

/** Arguments of the OpenSSH client (after the ssh binary) for `command` as `user` on the node. */
export function sshClientArgs(opts: {
  address: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHosts: string;
  command: string;
}): string[] {
  const options = {
    BatchMode: "yes",
    StrictHostKeyChecking: "yes",
    UserKnownHostsFile: opts.knownHosts,
    GlobalKnownHostsFile: "/dev/null",
    CheckHostIP: "no",
    UpdateHostKeys: "no",
    IdentitiesOnly: "yes",
    IdentityAgent: "none",
    PasswordAuthentication: "no",
    KbdInteractiveAuthentication: "no",
    ControlMaster: "no",
    ControlPath: "none",
    ConnectTimeout: "10",
    LogLevel: "ERROR",
  };
  return [
    ...["-F", "/dev/null", "-T", "-p", String(opts.port), "-i", opts.privateKeyPath],
    ...Object.entries(options).flatMap(([key, value]) => ["-o", `${key}=${value}`]),
    `${opts.user}@${opts.address}`,
    opts.command,
  ];
}
