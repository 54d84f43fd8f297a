// startDnsServer(): the node's test DNS server (dns-server.py, baked into the root) as a transient
// systemd unit inside the node, so that it lives in the node's network namespace, is listed and
// stopped by the node's own systemd, and dies with the node.

import * as net from "node:net";
import { DNS_SERVER } from "./constants";
import type { Runner } from "./kubelet";
import type { DnsServer, DnsServerMode } from "./types";
import { sleep } from "../processes/process";

const READY_DIR = "/run/nodelocaldns-test";
const READY_TIMEOUT_MS = 20_000;
let serial = 0;

export async function startDnsServer(
  node: Runner & { isRunning(): boolean },
  ip: string,
  mode: DnsServerMode,
): Promise<DnsServer> {
  if (net.isIP(ip) === 0) {
    throw new Error(`startDnsServer: not an IP address: ${JSON.stringify(ip)}`);
  }
  if (!["dns", "silent", "garbage"].includes(mode)) {
    throw new Error(`startDnsServer: unknown mode ${JSON.stringify(mode)}`);
  }
  serial += 1;
  const unit = `nodelocaldns-test-dns-${process.pid}-${serial}.service`;
  const ready = `${READY_DIR}/${unit}.ready`;
  const started = await node.run(
    `mkdir -p ${READY_DIR} && rm -f ${ready} && ` +
      `systemd-run --quiet --collect --unit=${unit} -- /usr/bin/python3 ${DNS_SERVER} ` +
      `${ip} ${mode} ${ready}`,
  );
  if (started.code !== 0) {
    throw new Error(`startDnsServer: systemd-run failed (${started.code}): ${started.stderr}`);
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const check = await node.run(
      `if [[ -e ${ready} ]]; then echo ready; else systemctl is-active ${unit}; fi`,
    );
    const state = check.stdout.trim();
    if (state === "ready") {
      break;
    }
    if (state !== "active" && state !== "activating") {
      const log = await node.run(`journalctl --no-pager -n 20 -u ${unit}`);
      throw new Error(`startDnsServer: ${unit} ${state}\n${log.stdout}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`startDnsServer: ${unit} not listening after ${READY_TIMEOUT_MS} ms`);
    }
    await sleep(100);
  }
  let stopped: Promise<void> | undefined;
  return {
    ip,
    mode,
    unit,
    stop(): Promise<void> {
      stopped ??= (async () => {
        if (!node.isRunning()) {
          return; // it went with the node
        }
        const result = await node.run(`systemctl stop ${unit}; rm -f ${ready}`);
        if (result.code !== 0) {
          throw new Error(`DnsServer.stop: ${result.stderr}`);
        }
      })();
      return stopped;
    },
  };
}
