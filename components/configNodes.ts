// The node half of the config: SSH defaults, bastion, kubelet file and the node list. Pure, like
// config.ts, and every value that later reaches a shell script or a connection is checked here.
import { isDnsName, isHost } from "./addresses";
import { Checker, join, Raw, RawConfig } from "./configCheck";
import {
  ADDRESS_TYPES,
  parseLabelSelector,
  unpinnedWarning,
  type DiscoverSettings,
} from "./discovery";
import { parseKnownHosts, pinnedKey, type KnownHosts } from "./knownHosts";
import { DEFAULTS, KubeletFile, KubeletFormat, NodeSettings, SshProxy } from "./settings";

export const PORT = [1, 65535] as const;
const KUBELET_FORMATS: readonly KubeletFormat[] = ["auto", "env-file", "config-file", "unit-file"];
const UNIX_USER = /^[a-z_][a-z0-9_.-]{0,31}$/;
/** Absolute, every segment a plain name: no ".", "..", hidden segments, doubled or trailing "/". */
const SAFE_PATH = /^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/;
/**
 * Where stateDir may be: a directory of its own under one of these. State must survive reboots
 * (not /run or /tmp), and only root may be able to write on its path (not /tmp or /var/tmp, whose
 * sticky world-writable directories let anyone plant state), nor may it be a system directory
 * whose permissions the node program would tighten (/etc, /var/lib itself).
 */
export const STATE_DIR_PARENTS = ["/var/lib", "/var/opt", "/opt", "/srv"] as const;
const HOST_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

export function isSafePath(value: string): boolean {
  return SAFE_PATH.test(value);
}

export function isStateDir(value: string): boolean {
  return isSafePath(value) && STATE_DIR_PARENTS.some((parent) => value.startsWith(`${parent}/`));
}

export function parseKubeletFile(
  c: Checker,
  path: string,
  value: unknown,
  fallback: KubeletFile,
): KubeletFile {
  const obj = c.object(path, value) ?? {};
  c.unknownKeys(path, obj, ["format", "path"]);
  const format = c.oneOf(join(path, "format"), obj.format, KUBELET_FORMATS) ?? fallback.format;
  const file = c.string(
    join(path, "path"),
    obj.path,
    isSafePath,
    "an absolute path of plain [A-Za-z0-9._-] names",
  );
  const p = file ?? fallback.path;
  return p === undefined ? { format } : { format, path: p };
}

export interface SshDefaults {
  user: string;
  port: number;
  privateKey?: string;
  hostKey?: string;
  /** ssh.knownHosts, parsed: host keys looked up by host and port. */
  knownHosts?: KnownHosts;
  proxy?: SshProxy;
  sudo: boolean;
}

export function parseSsh(c: Checker, value: unknown): SshDefaults {
  const d = DEFAULTS.ssh;
  const obj = c.object("ssh", value) ?? {};
  c.unknownKeys("ssh", obj, [
    "user",
    "port",
    "privateKey",
    "hostKey",
    "knownHosts",
    "proxy",
    "sudo",
  ]);
  const knownHosts = parseKnownHostsKey(c, obj.knownHosts);
  return {
    user: c.string("ssh.user", obj.user, (s) => UNIX_USER.test(s), "a user name") ?? d.user,
    port: c.integer("ssh.port", obj.port, ...PORT) ?? d.port,
    privateKey: privateKey(c, "ssh.privateKey", obj.privateKey),
    hostKey: hostKey(c, "ssh.hostKey", obj.hostKey),
    knownHosts,
    proxy: parseProxy(c, "ssh.proxy", obj.proxy, knownHosts),
    sudo: c.boolean("ssh.sudo", obj.sudo) ?? d.sudo,
  };
}

/** ssh.knownHosts: every bad line named at once, by number (a line may hold a long key). */
function parseKnownHostsKey(c: Checker, value: unknown): KnownHosts | undefined {
  const text = c.string("ssh.knownHosts", value);
  if (text === undefined) return undefined;
  const { knownHosts, problems } = parseKnownHosts(text);
  problems.forEach((p) => c.problem("ssh.knownHosts", p));
  return knownHosts;
}

function parseProxy(
  c: Checker,
  path: string,
  value: unknown,
  knownHosts: KnownHosts | undefined,
): SshProxy | undefined {
  const obj = c.object(path, value);
  if (obj === undefined) return undefined;
  c.unknownKeys(path, obj, ["host", "port", "user", "privateKey", "hostKey"]);
  const host = c.string(join(path, "host"), obj.host, isHost, "a hostname or IP address");
  if (obj.host === undefined) c.problem(join(path, "host"), "is required");
  const proxy: SshProxy = {
    host: host ?? "",
    port: c.integer(join(path, "port"), obj.port, ...PORT) ?? DEFAULTS.ssh.port,
    user:
      c.string(join(path, "user"), obj.user, (s) => UNIX_USER.test(s), "a user name") ??
      DEFAULTS.ssh.user,
  };
  const key = privateKey(c, join(path, "privateKey"), obj.privateKey);
  const hk = pinnedKey(
    hostKey(c, join(path, "hostKey"), obj.hostKey),
    knownHosts,
    host,
    proxy.port,
    undefined,
  );
  if (key !== undefined) proxy.privateKey = key;
  if (hk !== undefined) proxy.hostKey = hk;
  return proxy;
}

function privateKey(c: Checker, path: string, value: unknown): string | undefined {
  // Never echo the value: it is a secret.
  if (value !== undefined && (typeof value !== "string" || value.trim() === "")) {
    c.problem(path, "must be a non-empty string (the private key itself, set with --secret)");
    return undefined;
  }
  return value as string | undefined;
}

function hostKey(c: Checker, path: string, value: unknown): string | undefined {
  return c.string(
    path,
    value,
    (s) => HOST_KEY.test(s),
    'an SSH public host key ("ssh-ed25519 AAAA...")',
  );
}

/** Private keys only as secrets: the top-level key that holds one must be stored encrypted. */
export function checkSecret(c: Checker, raw: RawConfig, path: string, value: unknown): void {
  const key = path.split(/[.[]/)[0];
  if (value !== undefined && !raw.isSecret(key)) {
    c.problem(
      path,
      `is not stored as a secret: set it with \`pulumi config set --secret --path '${path}'\``,
    );
  }
}

export function parseNodes(
  c: Checker,
  raw: RawConfig,
  value: unknown,
  ssh: SshDefaults,
  kubelet: KubeletFile,
  discovering: boolean,
): NodeSettings[] {
  const list = c.array("nodes", value) ?? [];
  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  const nodes: NodeSettings[] = [];
  list.forEach((item, i) => {
    const path = join("nodes", i);
    const obj = c.object(path, item);
    if (obj === undefined) return;
    c.unknownKeys(path, obj, [
      "name",
      "host",
      "port",
      "user",
      "privateKey",
      "hostKey",
      "proxy",
      "kubelet",
    ]);
    // With discovery an entry may only override a discovered node: its host comes from the Node.
    for (const required of discovering ? ["name"] : ["name", "host"]) {
      if (obj[required] === undefined) c.problem(join(path, required), "is required");
    }
    const name = c.string(
      join(path, "name"),
      obj.name,
      isDnsName,
      "a node name (lower-case DNS name)",
    );
    const host = c.string(join(path, "host"), obj.host, isHost, "a hostname or IP address");
    const node: NodeSettings = {
      name: name ?? "",
      host: host ?? "",
      port: c.integer(join(path, "port"), obj.port, ...PORT) ?? ssh.port,
      user:
        c.string(join(path, "user"), obj.user, (s) => UNIX_USER.test(s), "a user name") ?? ssh.user,
      sudo: ssh.sudo,
      kubelet: parseKubeletFile(c, join(path, "kubelet"), obj.kubelet, kubelet),
    };
    const key = privateKey(c, join(path, "privateKey"), obj.privateKey) ?? ssh.privateKey;
    const hk = pinnedKey(
      hostKey(c, join(path, "hostKey"), obj.hostKey),
      ssh.knownHosts,
      host,
      node.port,
      // Without a host (an override of a discovered node) fleetPlan pins it once the host is known.
      host === undefined ? undefined : ssh.hostKey,
    );
    const proxy = parseProxy(c, join(path, "proxy"), obj.proxy, ssh.knownHosts) ?? ssh.proxy;
    if (key !== undefined) node.privateKey = key;
    if (hk !== undefined) node.hostKey = hk;
    if (proxy !== undefined) node.proxy = proxy;
    checkSecret(c, raw, join(path, "privateKey"), obj.privateKey);
    checkSecret(c, raw, join(path, "proxy.privateKey"), (obj.proxy as Raw | undefined)?.privateKey);

    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined)
        c.problem(
          join(path, "name"),
          `duplicate node name ${c.show("nodes", name)} (also nodes[${first}])`,
        );
      else names.set(name, i);
    }
    if (host !== undefined) {
      const endpoint = `${host.toLowerCase()}:${node.port}`;
      const first = endpoints.get(endpoint);
      if (first !== undefined)
        c.problem(join(path, "host"), `${endpoint} is also nodes[${first}]: one node, one entry`);
      else endpoints.set(endpoint, i);
    }
    nodes.push(node);
  });
  // With discovery the fleet is known only once the Nodes are listed: fleetPlan warns then.
  if (discovering) return nodes;
  const unpinned = unpinnedWarning(nodes);
  if (unpinned !== undefined) c.warn("nodes[*].hostKey", unpinned);
  if (list.length === 0) {
    c.warn("nodes", "no nodes: the cache is deployed, but no kubelet is switched to it");
  }
  return nodes;
}

/** `discover`: absent, no discovery; an object (even empty), the cluster's Nodes are the fleet. */
export function parseDiscover(
  c: Checker,
  value: unknown,
  ssh: SshDefaults,
  kubelet: KubeletFile,
): DiscoverSettings | undefined {
  const obj = c.object("discover", value);
  if (obj === undefined) return undefined;
  c.unknownKeys("discover", obj, ["selector", "exclude", "addressType"]);
  const selectorText = c.string("discover.selector", obj.selector) ?? "";
  const selector = parseLabelSelector(selectorText);
  if (typeof selector === "string") c.problem("discover.selector", selector);
  const exclude = (c.array("discover.exclude", obj.exclude) ?? []).flatMap((item, i) => {
    const name = c.string(join("discover.exclude", i), item, isDnsName, "a node name");
    return name === undefined ? [] : [name];
  });
  const template: DiscoverSettings["template"] = {
    port: ssh.port,
    user: ssh.user,
    sudo: ssh.sudo,
    kubelet,
  };
  if (ssh.privateKey !== undefined) template.privateKey = ssh.privateKey;
  if (ssh.proxy !== undefined) template.proxy = ssh.proxy;
  const discover: DiscoverSettings = {
    selectorText,
    selector: typeof selector === "string" ? [] : selector,
    exclude,
    addressType: c.oneOf("discover.addressType", obj.addressType, ADDRESS_TYPES) ?? "InternalIP",
    template,
  };
  if (ssh.knownHosts !== undefined) discover.knownHosts = ssh.knownHosts;
  if (ssh.hostKey !== undefined) discover.defaultHostKey = ssh.hostKey;
  return discover;
}
