// The OpenSSH client command that runs one node's check: the same user, port, key, pinned host key,
// bastion and `sudo -n` as the stack's remote.Command connection. Pure: it names the files the
// command needs (private keys, known_hosts) and their contents; nodeRun.ts writes them to a temp
// dir and removes them. Nothing from ~/.ssh/config or /etc/ssh applies (-F /dev/null): the stack's
// settings alone decide where the check goes, as they do for `pulumi up`.
import { createHash } from "node:crypto";
import * as path from "node:path";
import { nodeCommandText } from "../../components/nodeCommand";
import type { NodeSettings, SshProxy } from "../../components/settings";
import { shellQuote } from "../../components/shell";

/** A file the ssh command reads: written 0600 before it runs, removed afterwards. */
export interface SshFile {
  path: string;
  content: string;
}

export interface NodeSshCommand {
  /** Arguments after the ssh binary. */
  args: string[];
  /** Files to write first; private keys are among them (secret). */
  files: SshFile[];
  /** The throwaway known_hosts of an unpinned node or bastion, read afterwards for what it got. */
  acceptedHostKeys: { node?: string; bastion?: string };
  /** Where the bastion's ssh writes its messages (so that they are told apart from the node's). */
  bastionStderr?: string;
}

export interface SshCommandOptions {
  /** The OpenSSH client, also for the bastion hop. */
  ssh: string;
  connectTimeoutSeconds: number;
}

/** How known_hosts names a host: `host`, or `[host]:port` off port 22 (lower case, as ssh looks). */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** `host:port` for messages (IPv6 in brackets). */
export function endpoint(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** OpenSSH reads a key only when it ends with a newline; `pulumi config set` strips the last one. */
function keyFileContent(key: string): string {
  return key.endsWith("\n") ? key : `${key}\n`;
}

interface Hop {
  host: string;
  port: number;
  user: string;
  privateKey?: string;
  hostKey?: string;
}

/** The options of one hop (node or bastion), its files written under `dir` with `prefix`. */
function hopOptions(
  hop: Hop,
  dir: string,
  prefix: string,
  options: SshCommandOptions,
): { args: string[]; files: SshFile[]; accepted?: string } {
  const knownHosts = path.join(dir, `${prefix}known_hosts`);
  const files: SshFile[] = [
    {
      path: knownHosts,
      content:
        hop.hostKey === undefined ? "" : `${knownHostsName(hop.host, hop.port)} ${hop.hostKey}\n`,
    },
  ];
  const settings: [string, string][] = [
    ["BatchMode", "yes"],
    ["StrictHostKeyChecking", hop.hostKey === undefined ? "accept-new" : "yes"],
    ["UserKnownHostsFile", knownHosts],
    ["GlobalKnownHostsFile", "/dev/null"],
    ["HashKnownHosts", "no"],
    ["CheckHostIP", "no"],
    ["UpdateHostKeys", "no"],
    ["PasswordAuthentication", "no"],
    ["KbdInteractiveAuthentication", "no"],
    ["ControlMaster", "no"],
    ["ControlPath", "none"],
    ["ForwardAgent", "no"],
    ["ForwardX11", "no"],
    ["ClearAllForwardings", "yes"],
    ["ConnectTimeout", String(options.connectTimeoutSeconds)],
    ["ServerAliveInterval", "5"],
    ["ServerAliveCountMax", "3"],
    ["LogLevel", "ERROR"],
  ];
  const args = ["-F", "/dev/null", "-T", "-p", String(hop.port), "-l", hop.user];
  if (hop.privateKey !== undefined) {
    const keyFile = path.join(dir, `${prefix}id`);
    files.push({ path: keyFile, content: keyFileContent(hop.privateKey) });
    args.push("-i", keyFile);
    settings.push(["IdentitiesOnly", "yes"], ["IdentityAgent", "none"]);
  }
  args.push(...settings.flatMap(([key, value]) => ["-o", `${key}=${value}`]));
  return { args, files, accepted: hop.hostKey === undefined ? knownHosts : undefined };
}

/** ssh's ProxyCommand runs through the shell and expands %-tokens: quote, then escape %. */
function proxyWord(word: string): string {
  return shellQuote(word).replace(/%/g, "%%");
}

function proxyCommand(
  proxy: SshProxy,
  dir: string,
  options: SshCommandOptions,
): { command: string; files: SshFile[]; accepted?: string; stderr: string } {
  const hop = hopOptions(proxy, dir, "bastion_", options);
  const stderr = path.join(dir, "bastion_stderr");
  const words = [options.ssh, ...hop.args, "-W", "%h:%p", proxy.host].map((w) =>
    w === "%h:%p" ? w : proxyWord(w),
  );
  return {
    command: `${words.join(" ")} 2>${proxyWord(stderr)}`,
    files: hop.files,
    accepted: hop.accepted,
    stderr,
  };
}

/**
 * The ssh command of `node`'s check: `bash -s check` (or `sudo -n bash -s check`) with the node
 * program on stdin, every file it needs under `dir`.
 */
export function nodeSshCommand(
  node: NodeSettings,
  dir: string,
  options: SshCommandOptions,
): NodeSshCommand {
  const hop = hopOptions(node, dir, "node_", options);
  const args = [...hop.args];
  const files = [...hop.files];
  const command: NodeSshCommand = {
    args,
    files,
    acceptedHostKeys: hop.accepted === undefined ? {} : { node: hop.accepted },
  };
  if (node.proxy !== undefined) {
    const proxy = proxyCommand(node.proxy, dir, options);
    args.push("-o", `ProxyCommand=${proxy.command}`);
    files.push(...proxy.files);
    if (proxy.accepted !== undefined) command.acceptedHostKeys.bastion = proxy.accepted;
    command.bastionStderr = proxy.stderr;
  }
  args.push(node.host, nodeCommandText(node, "check"));
  return command;
}

/**
 * What an accept-new known_hosts got: "ssh-ed25519 SHA256:..." (the form `ssh-keygen -lf` and
 * ssh's own prompts show), or undefined when it is empty (no connection got that far).
 */
export function acceptedHostKey(knownHosts: string): string | undefined {
  for (const line of knownHosts.split("\n")) {
    const [, type, blob] = line.trim().split(/\s+/);
    if (type === undefined || blob === undefined || !/^[A-Za-z0-9+/]+={0,3}$/.test(blob)) continue;
    const digest = createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64");
    return `${type} SHA256:${digest.replace(/=+$/, "")}`;
  }
  return undefined;
}
