// startNodeCache(): node-cache (the stand-in) on a systemd test node, run the way the DaemonSet's
// pod would run it, from what the API server holds: the ConfigMap's Corefile at the mount path
// (/etc/coredns/Corefile.base), the container's args verbatim, the kube-dns-upstream Service IP
// in the env var kubelet would inject, the node's /etc/resolv.conf (dnsPolicy: Default on the
// host network). Only -setupinterface=false -setupiptables=false are added: the local IP is on the
// node's lo already and the node has no iptables rules to set. The node's resolv.conf points at
// the in-node kube-dns stand-in, so nothing the cache forwards leaves the node's namespace.

import * as net from "node:net";
import { shellQuote } from "../../../../components/shell";
import type { SystemdNode } from "../../../support/systemdNode";
import {
  httpStatus,
  installBinary,
  journal,
  NODE_CACHE_BINARY,
  runIfAlive,
  runUnit,
  tcpOpen,
  unitName,
  waitUntilServing,
} from "./units";

const DEFAULT_BASE_COREFILE = "/etc/coredns/Corefile.base";
const DEFAULT_START_TIMEOUT_MS = 30_000;
const TEST_ONLY_FLAGS = ["-setupinterface=false", "-setupiptables=false"];

export interface NodeCacheOptions {
  /** The ConfigMap's `Corefile` (the template node-cache fills in). */
  corefile: string;
  /** The DaemonSet container's args, as read back from the API server. */
  args: string[];
  /** ClusterIP of the -upstreamsvc Service (kube-dns-upstream), as kubelet would inject it. */
  kubeDnsUpstreamIp: string;
  /** Host path of the stand-in (toolchain "node-cache"). */
  binaryPath: string;
  /** The only nameserver of the node's /etc/resolv.conf while the cache runs; default 10.96.0.10. */
  nameserver?: string;
  timeoutMs?: number;
}

export interface NodeCache {
  readonly unit: string;
  /** The first -localip address. */
  readonly localIp: string;
  /** Milliseconds from systemd-run to health and DNS port answering. */
  readonly startMs: number;
  /** The Corefile node-cache wrote (its -conf), as it is now. */
  writtenCorefile(): Promise<string>;
  logs(): Promise<string>;
  /** Stops the unit and restores the node's resolv.conf; idempotent. */
  stop(): Promise<void>;
}

/** The value of Go flag `name` in args (`-name v`, `-name=v`, `--name ...`), or undefined. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(args[i]!);
    if (m !== null && m[1] === name) {
      return m[2] ?? args[i + 1];
    }
  }
  return undefined;
}

/** `kube-dns-upstream` -> `KUBE_DNS_UPSTREAM_SERVICE_HOST`, as kubelet names it. */
export function serviceHostEnv(service: string): string {
  return `${service.toUpperCase().replace(/-/g, "_")}_SERVICE_HOST`;
}

export async function startNodeCache(
  node: SystemdNode,
  options: NodeCacheOptions,
): Promise<NodeCache> {
  const clash = options.args.find((a) => /^--?(setupinterface|setupiptables)(=|$)/.test(a));
  if (clash !== undefined) {
    throw new Error(
      `startNodeCache: the DaemonSet args already contain ${clash}; the harness adds ` +
        `${TEST_ONLY_FLAGS.join(" ")} itself and will not run args that set them`,
    );
  }
  const localIps = flagValue(options.args, "localip");
  if (localIps === undefined || localIps === "") {
    throw new Error(`startNodeCache: no -localip in the args ${JSON.stringify(options.args)}`);
  }
  const localIp = localIps.split(",")[0]!;
  const healthPort = Number(flagValue(options.args, "health-port") ?? "8080");
  const baseCorefile = flagValue(options.args, "basecorefile") ?? DEFAULT_BASE_COREFILE;
  const conf =
    flagValue(options.args, "conf") ?? flagValue(options.args, "corefile") ?? "/etc/Corefile";
  const upstreamSvc = flagValue(options.args, "upstreamsvc") ?? "kube-dns";
  const nameserver = options.nameserver ?? "10.96.0.10";

  const bad = localIps.split(",").find((ip) => net.isIP(ip) === 0);
  if (bad !== undefined) {
    throw new Error(`startNodeCache: -localip ${JSON.stringify(bad)} is not an IP address`);
  }
  const onLo = await node.run(`ip -o addr show dev lo`);
  for (const ip of localIps.split(",")) {
    if (!onLo.stdout.includes(` ${ip}/`)) {
      throw new Error(`startNodeCache: -localip ${ip} is not on the node's lo:\n${onLo.stdout}`);
    }
  }

  await installBinary(node, options.binaryPath);
  node.writeFile(baseCorefile, options.corefile);
  const resolvConf = `# nodelocaldns e2e: the in-node kube-dns stand-in\nnameserver ${nameserver}\n`;
  const originalResolvConf = node.readFile("/etc/resolv.conf");
  node.writeFile("/etc/resolv.conf", resolvConf);

  const unit = unitName("node-cache");
  const t0 = Date.now();
  try {
    await runUnit(node, unit, [NODE_CACHE_BINARY, ...options.args, ...TEST_ONLY_FLAGS], {
      [serviceHostEnv(upstreamSvc)]: options.kubeDnsUpstreamIp,
    });
    await waitUntilServing(
      node,
      unit,
      async () =>
        (await httpStatus(node, localIp, healthPort, "/health")).includes(" 200") &&
        (await tcpOpen(node, localIp, 53)),
      options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    );
  } catch (error) {
    await runIfAlive(node, `systemctl stop ${unit} 2>/dev/null || true`).catch(() => {});
    node.writeFile("/etc/resolv.conf", originalResolvConf);
    throw error;
  }
  const startMs = Date.now() - t0;

  let stopped: Promise<void> | undefined;
  return {
    unit,
    localIp,
    startMs,
    async writtenCorefile() {
      return (await node.run(`cat ${shellQuote(conf)}`)).stdout;
    },
    logs: () => journal(node, unit, 200),
    stop() {
      stopped ??= (async () => {
        await runIfAlive(node, `systemctl stop ${unit} 2>/dev/null || true`);
        // Put the original back only if it is still ours (a test may have changed it since).
        const current = Buffer.from(resolvConf);
        const original = originalResolvConf.toString("base64");
        await runIfAlive(
          node,
          `if [[ "$(base64 -w0 /etc/resolv.conf)" == ${shellQuote(current.toString("base64"))} ]]; ` +
            `then base64 -d <<<${shellQuote(original)} >/etc/resolv.conf; fi`,
        );
      })();
      return stopped;
    },
  };
}
