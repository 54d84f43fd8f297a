// What the node-cache and kube-dns stand-ins share on a systemd test node: the binary copied into
// the node once, a transient systemd unit (systemd-run) inside the node's own namespaces, a
// bounded wait until it serves, its journal for error messages, and a stop that tolerates a node
// that is already gone.

import * as fs from "node:fs";
import { shellQuote } from "../../../../components/shell";
import type { SystemdNode } from "../../../support/systemdNode";
import { sleep } from "../wait";

/** Where the stand-in binary lives inside the node. */
export const NODE_CACHE_BINARY = "/usr/local/bin/node-cache";
/**
 * The same binary under another name, for the kube-dns stand-in: a process named node-cache is
 * what the cleanup (cleanup.bash) takes for a cache still running, and kube-dns is not one.
 */
export const KUBE_DNS_BINARY = "/usr/local/bin/kube-dns";
const UNIT_STOP_TIMEOUT_S = 15;

let serial = 0;

/** A unit name unique to this test process: nodelocaldns-e2e-<what>-<pid>-<n>.service. */
export function unitName(what: string): string {
  serial += 1;
  return `nodelocaldns-e2e-${what}-${process.pid}-${serial}.service`;
}

/**
 * Copies the binary into the node unless the same-sized file is there already, and links it as
 * KUBE_DNS_BINARY.
 */
export async function installBinary(node: SystemdNode, binaryPath: string): Promise<void> {
  const size = fs.statSync(binaryPath).size;
  const there = await node.run(`stat -c %s ${NODE_CACHE_BINARY} 2>/dev/null || true`);
  if (there.stdout.trim() !== String(size)) {
    node.writeFile(NODE_CACHE_BINARY, fs.readFileSync(binaryPath), 0o755);
  }
  const linked = await node.run(`ln -f ${NODE_CACHE_BINARY} ${KUBE_DNS_BINARY}`);
  if (linked.code !== 0) throw new Error(`ln ${KUBE_DNS_BINARY}: ${linked.stderr}`);
}

export async function journal(node: SystemdNode, unit: string, lines = 40): Promise<string> {
  const result = await node.run(`journalctl --no-pager -o cat -n ${lines} -u ${unit}`);
  return result.stdout.trim();
}

/** Starts argv as a transient unit with `env`; throws if systemd-run refuses. */
export async function runUnit(
  node: SystemdNode,
  unit: string,
  argv: string[],
  env: Record<string, string>,
): Promise<void> {
  const setenv = Object.entries(env).map(([k, v]) => `--setenv=${shellQuote(`${k}=${v}`)}`);
  const command = [
    "systemd-run --quiet --collect",
    `--unit=${unit}`,
    `--property=TimeoutStopSec=${UNIT_STOP_TIMEOUT_S}`,
    ...setenv,
    "--",
    ...argv.map(shellQuote),
  ].join(" ");
  const result = await node.run(command);
  if (result.code !== 0) {
    throw new Error(`systemd-run ${unit} failed (${result.code}): ${result.stderr}`);
  }
}

/** Whether ip:port accepts a TCP connection inside the node (bash's /dev/tcp, 2 s bound). */
export async function tcpOpen(node: SystemdNode, ip: string, port: number): Promise<boolean> {
  const r = await node.run(`timeout 2 bash -c 'exec 3<>/dev/tcp/${ip}/${port}' 2>/dev/null`);
  return r.code === 0;
}

/** GET http://ip:port/path inside the node over bash's /dev/tcp; the status line, or "". */
export async function httpStatus(
  node: SystemdNode,
  ip: string,
  port: number,
  path: string,
): Promise<string> {
  const host = ip.includes(":") ? `[${ip}]` : ip;
  const script =
    `exec 3<>/dev/tcp/${ip}/${port} && ` +
    `printf 'GET ${path} HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n' >&3 && head -n 1 <&3`;
  const r = await node.run(`timeout 2 bash -c ${shellQuote(script)} 2>/dev/null`);
  return r.code === 0 ? r.stdout.trim() : "";
}

/**
 * Waits until `ready()` is true while the unit stays active; throws with the unit's journal if
 * it fails or `timeoutMs` passes.
 */
export async function waitUntilServing(
  node: SystemdNode,
  unit: string,
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = (await node.run(`systemctl is-active ${unit}`)).stdout.trim();
    if (state !== "active" && state !== "activating") {
      throw new Error(`${unit} is ${state}:\n${await journal(node, unit)}`);
    }
    if (await ready()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${unit} not serving after ${timeoutMs} ms:\n${await journal(node, unit)}`);
    }
    await sleep(100);
  }
}

/** Runs `command` in the node unless the node is already stopped (then nothing is left to do). */
export async function runIfAlive(node: SystemdNode, command: string): Promise<void> {
  let result;
  try {
    result = await node.run(command);
  } catch (error) {
    if (/not running/.test((error as Error).message)) {
      return; // it went with the node
    }
    throw error;
  }
  if (result.code !== 0) {
    throw new Error(`${command}: exit ${result.code}: ${result.stderr}`);
  }
}
