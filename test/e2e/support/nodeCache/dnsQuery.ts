// dnsQuery(): one DNS query from inside a systemd test node's network namespace, by python3 in
// the node (dns-query.py, fed on stdin: nothing is installed on the host or in the node), so a
// test can ask node-cache on its link-local address exactly as a pod on that node would.

import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { SystemdNode } from "../../../support/systemdNode";

const SCRIPT = fs.readFileSync(path.join(__dirname, "dns-query.py"), "utf8");
const TYPES = ["A", "AAAA", "CNAME", "NS", "PTR", "SOA", "SRV", "TXT", "HINFO", "ANY"] as const;

export type DnsType = (typeof TYPES)[number];

export interface DnsRecord {
  /** Absolute, with the trailing dot. */
  name: string;
  type: string;
  ttl: number;
  /** Address for A/AAAA, name for CNAME/NS/PTR, hex otherwise. */
  data: string;
}

export interface DnsResult {
  /** "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", ...; "TIMEOUT"/"UNREACHABLE" without reply. */
  rcode: string;
  answers: DnsRecord[];
  flags?: { aa: boolean; tc: boolean; rd: boolean; ra: boolean };
  /** Why there was no reply. */
  error?: string;
}

export interface DnsQueryOptions {
  /** Over TCP instead of UDP. */
  tcp?: boolean;
  /** Default 3000. */
  timeoutMs?: number;
}

export async function dnsQuery(
  node: SystemdNode,
  server: string,
  name: string,
  type: DnsType = "A",
  options: DnsQueryOptions = {},
): Promise<DnsResult> {
  if (net.isIP(server) === 0) {
    throw new Error(`dnsQuery: not an IP address: ${JSON.stringify(server)}`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || !TYPES.includes(type)) {
    throw new Error(`dnsQuery: bad name or type: ${JSON.stringify(name)} ${type}`);
  }
  const seconds = ((options.timeoutMs ?? 3000) / 1000).toFixed(3);
  const proto = options.tcp === true ? "tcp" : "udp";
  const result = await node.run(
    `timeout 30 python3 - ${server} ${name} ${type} ${proto} ${seconds}`,
    SCRIPT,
  );
  if (result.code !== 0) {
    throw new Error(`dnsQuery: python3 failed (${result.code}): ${result.stderr}`);
  }
  const parsed = JSON.parse(result.stdout) as DnsResult;
  return { ...parsed, answers: parsed.answers ?? [] };
}
