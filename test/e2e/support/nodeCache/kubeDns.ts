// startKubeDns(): a kube-dns stand-in inside a systemd test node, so that node-cache has a real
// upstream without any packet leaving the node's network namespace: the kube-dns ClusterIP on the
// node's lo and a second instance of the node-cache stand-in (so: CoreDNS) bound to it alone,
// answering from `template` blocks: kubernetes.default.svc.<domain> and every
// <service>.<namespace>.svc.<domain> with an A record, a few non-cluster names (example.test by
// default) that stand for "the internet", NXDOMAIN for the rest. It logs every query it gets, so
// a test can see what node-cache forwarded. Its health and metrics ports are ones node-cache's
// Corefile and flags never use.

import * as net from "node:net";
import type { SystemdNode } from "../../../support/systemdNode";
import {
  httpStatus,
  installBinary,
  journal,
  KUBE_DNS_BINARY,
  runIfAlive,
  runUnit,
  tcpOpen,
  unitName,
  waitUntilServing,
} from "./units";

const DEFAULT_START_TIMEOUT_MS = 30_000;
/** Parent of each instance's config dir (the template and an empty kube-dns ConfigMap dir). */
const CONFIG_ROOT = "/etc/nodelocaldns-e2e";

export interface KubeDnsOptions {
  /** The kube-dns ClusterIP; default "10.96.0.10". */
  ip?: string;
  /** Host path of the node-cache stand-in (toolchain "node-cache"). */
  binaryPath: string;
  /** Default "cluster.local". */
  clusterDomain?: string;
  /** Answer of kubernetes.default.svc.<domain>; default "10.96.0.1". */
  apiServerIp?: string;
  /** Answer of every other <svc>.<ns>.svc.<domain>; default "10.96.0.100". */
  serviceIp?: string;
  /** Non-cluster names and their A records; default { "example.test": "192.0.2.10" }. */
  externalNames?: Record<string, string>;
  /** Default 18081 (node-cache's health is 8080 on its own IP). */
  healthPort?: number;
  /** node-cache's own metrics listener; default 19353 (the cache's is 0.0.0.0:9353). */
  metricsPort?: number;
  timeoutMs?: number;
}

export interface KubeDns {
  readonly unit: string;
  readonly ip: string;
  readonly startMs: number;
  /** The query log lines (CoreDNS `log` plugin) and anything else it printed. */
  logs(): Promise<string>;
  /** Stops the unit and takes the IP off lo again if it put it there; idempotent. */
  stop(): Promise<void>;
}

function nameRegex(name: string): string {
  return `^${name.replace(/\.$/, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.$`;
}

/** An A answer for names matching `regex` in `zone`; NOERROR without records for other types. */
function answerBlock(zone: string, regex: string, ip: string): string[] {
  return [
    `    template IN A ${zone} {`,
    `        match "${regex}"`,
    `        answer "{{ .Name }} 5 IN A ${ip}"`,
    "        fallthrough",
    "    }",
    `    template ANY ANY ${zone} {`,
    `        match "${regex}"`,
    "        rcode NOERROR",
    "        fallthrough",
    "    }",
  ];
}

export function kubeDnsCorefile(o: Required<Omit<KubeDnsOptions, "binaryPath" | "timeoutMs">>) {
  const domain = o.clusterDomain.replace(/\.$/, "");
  const lines = [
    ".:53 {",
    `    bind ${o.ip}`,
    "    errors",
    "    log",
    `    health ${o.ip.includes(":") ? `[${o.ip}]` : o.ip}:${o.healthPort}`,
    ...answerBlock(domain, nameRegex(`kubernetes.default.svc.${domain}`), o.apiServerIp),
    ...answerBlock(domain, `^[^.]+\\.[^.]+\\.svc\\.${nameRegex(domain).slice(1)}`, o.serviceIp),
    ...Object.entries(o.externalNames).flatMap(([name, ip]) =>
      answerBlock(name.replace(/\.$/, ""), nameRegex(name), ip),
    ),
    "    template ANY ANY {",
    "        rcode NXDOMAIN",
    "    }",
    "}",
  ];
  return lines.join("\n") + "\n";
}

export async function startKubeDns(node: SystemdNode, options: KubeDnsOptions): Promise<KubeDns> {
  const o = {
    ip: options.ip ?? "10.96.0.10",
    clusterDomain: options.clusterDomain ?? "cluster.local",
    apiServerIp: options.apiServerIp ?? "10.96.0.1",
    serviceIp: options.serviceIp ?? "10.96.0.100",
    externalNames: options.externalNames ?? { "example.test": "192.0.2.10" },
    healthPort: options.healthPort ?? 18081,
    metricsPort: options.metricsPort ?? 19353,
  };
  if (net.isIP(o.ip) === 0) {
    throw new Error(`startKubeDns: not an IP address: ${JSON.stringify(o.ip)}`);
  }
  const prefix = o.ip.includes(":") ? 128 : 32;
  const added = await node.run(
    `if ip -o addr show dev lo | grep -qF ' ${o.ip}/'; then echo present; ` +
      `else ip addr add ${o.ip}/${prefix} dev lo && echo added; fi`,
  );
  if (added.code !== 0) {
    throw new Error(`startKubeDns: cannot put ${o.ip} on lo: ${added.stderr}`);
  }
  const weAdded = added.stdout.trim() === "added";
  const unit = unitName("kube-dns");
  const configDir = `${CONFIG_ROOT}/${unit}`;
  // The Corefile it writes lives outside configDir, whose changes it polls for.
  const writtenCorefile = `/run/${unit}.Corefile`;
  const removeIp = weAdded ? `ip addr del ${o.ip}/${prefix} dev lo 2>/dev/null || true` : "true";

  const t0 = Date.now();
  try {
    await installBinary(node, options.binaryPath);
    const base = `${configDir}/Corefile.base`;
    node.writeFile(base, kubeDnsCorefile(o));
    // An empty kube-dns ConfigMap dir of its own: it must not pick up a test's /etc/kube-dns.
    await runIfAlive(node, `mkdir -p ${configDir}/empty-configmap`);
    await runUnit(
      node,
      unit,
      [
        KUBE_DNS_BINARY,
        ...["-localip", o.ip, "-basecorefile", base, "-conf", writtenCorefile],
        ...["-health-port", String(o.healthPort)],
        ...[
          "-metrics-listen-address",
          `${o.ip.includes(":") ? `[${o.ip}]` : o.ip}:${o.metricsPort}`,
        ],
        ...["-kubednscm", `${configDir}/empty-configmap`],
        ...["-setupinterface=false", "-setupiptables=false"],
      ],
      {},
    );
    await waitUntilServing(
      node,
      unit,
      async () =>
        (await httpStatus(node, o.ip, o.healthPort, "/health")).includes(" 200") &&
        (await tcpOpen(node, o.ip, 53)),
      options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    );
  } catch (error) {
    await runIfAlive(node, `systemctl stop ${unit} 2>/dev/null || true; ${removeIp}`).catch(
      () => {},
    );
    throw error;
  }
  const startMs = Date.now() - t0;

  let stopped: Promise<void> | undefined;
  return {
    unit,
    ip: o.ip,
    startMs,
    logs: () => journal(node, unit, 500),
    stop() {
      stopped ??= runIfAlive(
        node,
        `systemctl stop ${unit} 2>/dev/null || true; ${removeIp}; rm -rf ${configDir} ${writtenCorefile}`,
      );
      return stopped;
    },
  };
}
