// sshd and key setup of a test node: the sshd_config it runs with, the host and client ed25519
// keys with authorized_keys and a pinned known_hosts, and the OpenSSH client arguments that
// TestNode.ssh() connects with (strict host key checking, this key only, no agent or config).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { FILE_OP_TIMEOUT_MS, HOST_PATH, NODE_STATE, SSH_ADDRESS, SSH_PORT } from "./constants";

export function sshdConfig(): string {
  return `# sshd of a test node (test/support/testNode.ts), in the node's network namespace only.
Port ${SSH_PORT}
ListenAddress ${SSH_ADDRESS}
AddressFamily inet
HostKey ${NODE_STATE}/ssh_host_ed25519_key
AuthorizedKeysFile ${NODE_STATE}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
PrintMotd no
PrintLastLog no
UseDNS no
Subsystem sftp internal-sftp
`;
}

/**
 * Creates the node's host key and the client key (`privateKeyPath`), authorizes the client key
 * for root and pins the host key in `knownHostsPath`. Returns the host key ("type base64").
 */
export async function setUpSshKeys(
  sshKeygen: string,
  state: string,
  privateKeyPath: string,
  knownHostsPath: string,
): Promise<string> {
  const hostKeyFile = path.join(state, "ssh_host_ed25519_key");
  await Promise.all([keygen(sshKeygen, hostKeyFile), keygen(sshKeygen, privateKeyPath)]);
  const hostKey = publicKey(`${hostKeyFile}.pub`);
  fs.writeFileSync(path.join(state, "authorized_keys"), `${publicKey(`${privateKeyPath}.pub`)}\n`);
  fs.writeFileSync(knownHostsPath, `${knownHostsHost(SSH_PORT)} ${hostKey}\n`);
  return hostKey;
}

function knownHostsHost(port: number): string {
  return port === 22 ? SSH_ADDRESS : `[${SSH_ADDRESS}]:${port}`;
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

/** Arguments of the OpenSSH client (after the ssh binary) for `command` as root on the node. */
export function sshClientArgs(
  port: number,
  privateKeyPath: string,
  knownHosts: string,
  command: string,
): string[] {
  return [
    "-F",
    "/dev/null",
    "-T",
    "-p",
    String(port),
    "-i",
    privateKeyPath,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "CheckHostIP=no",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "PasswordAuthentication=no",
    "-o",
    "KbdInteractiveAuthentication=no",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
    `root@${SSH_ADDRESS}`,
    command,
  ];
}
