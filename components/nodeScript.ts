// The node programs: the bash that switches one node's kubelet to the cache (create/update), back
// (delete) or only looks (check), and the revert guard. Their source is real bash under
// ./nodeProgram/ (read it there: every file says what it does and why); this file only puts a
// header and the node's values in front of it. Values enter only here, through shellQuote, after
// the config parser validated them. The result is sent on stdin to `bash -s <action>`.
import * as fs from "node:fs";
import * as path from "node:path";
import { shellQuote } from "./shell";
import type { KubeletFile } from "./settings";

export interface NodeScriptParams {
  nodeName: string;
  /** The new cluster DNS (IPv4 or IPv6). */
  localDnsIp: string;
  /** The kube-dns ClusterIP: the entry of kubelet's cluster DNS that the cache replaces. */
  clusterDnsIp: string;
  /** The cluster DNS entry becomes [localDnsIp, clusterDnsIp] instead of [localDnsIp]. */
  fallbackToKubeDns: boolean;
  /** For the readiness query: kubernetes.default.svc.<clusterDomain>. */
  clusterDomain: string;
  kubelet: KubeletFile;
  /** The one directory holding all node-side state. */
  stateDir: string;
  readyTimeoutSeconds: number;
  kubeletTimeoutSeconds: number;
}

export type NodeAction = "create" | "update" | "delete" | "check";

/** The bash files of the node program, in the order they are put together. */
const PROGRAM_FILES = [
  "output",
  "addresses",
  "files",
  "statedir",
  "systemd",
  "kubelet",
  "settings",
  "readiness",
  "steps",
  "actions",
  "main",
] as const;

const SOURCE_DIR = path.join(__dirname, "nodeProgram");

/** A source file without its first line, the `# shellcheck shell=bash` directive for editors. */
function source(name: string): string {
  const text = fs.readFileSync(path.join(SOURCE_DIR, `${name}.bash`), "utf8");
  return text.replace(/^# shellcheck shell=bash\n/, "");
}

const PROGRAM_BODY = PROGRAM_FILES.map(source).join("\n");
const GUARD_BODY = source("guard");

/**
 * How long a run waits for another run on the same node to release the node lock: the longest
 * a run can take (cache wait, a restart and an undo's restart) plus a margin.
 */
export function lockTimeoutSeconds(p: NodeScriptParams): number {
  return p.readyTimeoutSeconds + 2 * p.kubeletTimeoutSeconds + 30;
}

/** `readonly NAME=value` lines, each value quoted by shellQuote. */
function assignments(values: [string, string | number][]): string {
  return values.map(([name, value]) => `readonly ${name}=${shellQuote(String(value))}\n`).join("");
}

/**
 * Wraps a program in one `{ ... }` group. bash reads a script from a pipe as it goes, so a command
 * that reads stdin could otherwise swallow the rest of the program; bash parses the group to its
 * end before running any of it, and the first thing it runs detaches stdin.
 */
function group(header: string, body: string, entry: string): string {
  return `{\nexec </dev/null\n${header}${body}\n${entry} "$@"\n}\n`;
}

/**
 * The node program: what the switch Command sends on stdin to `bash -s <action>` (or
 * `sudo -n bash -s <action>`). No secret ever goes in it.
 */
export function renderNodeProgram(p: NodeScriptParams): string {
  checkParams(p);
  const header =
    `# nodelocaldns node program for node ${p.nodeName}\n` +
    "#\n" +
    "# Points this node's kubelet at the node-local DNS cache (create, update), puts it back\n" +
    "# (delete), or says what create would do (check). Run it as root:\n" +
    "#   bash -s create < program      (update, delete, check likewise)\n" +
    `# While switched it keeps ${p.stateDir} (mode 0700): the record of the switch, the kubelet\n` +
    "# file's original bytes, a copy of this program for the revert guard, and a lock. A revert\n" +
    "# removes it. Source: components/nodeProgram/*.bash in the nodelocaldns project.\n" +
    "#\n" +
    "# This node's values (validated by the stack's config parser):\n" +
    // Names the program's own variables: the copy it saves for the revert guard takes everything
    // defined after this line (see build_program_copy).
    "bash_variables_at_start=$(compgen -v)\n" +
    assignments([
      ["NODE_NAME", p.nodeName],
      ["LOCAL_DNS_IP", p.localDnsIp],
      ["CLUSTER_DNS_IP", p.clusterDnsIp],
      ["FALLBACK_TO_KUBE_DNS", p.fallbackToKubeDns ? "yes" : "no"],
      ["CLUSTER_DOMAIN", p.clusterDomain],
      ["STATE_DIR", p.stateDir],
      ["KUBELET_PATH", p.kubelet.path ?? ""],
      ["KUBELET_FORMAT", p.kubelet.format],
      ["READY_TIMEOUT_SECONDS", p.readyTimeoutSeconds],
      ["KUBELET_TIMEOUT_SECONDS", p.kubeletTimeoutSeconds],
      ["LOCK_TIMEOUT_SECONDS", lockTimeoutSeconds(p)],
    ]);
  return group(header, PROGRAM_BODY, "main");
}

/**
 * The revert guard: what the guard Command sends on stdin. On delete it runs the copy of the node
 * program that the last switch saved under stateDir, if there is one.
 */
export function renderGuardProgram(p: NodeScriptParams): string {
  checkParams(p);
  const header =
    `# nodelocaldns revert guard for node ${p.nodeName}: on delete, runs the node program copy\n` +
    `# saved in ${p.stateDir} (if any) to revert what it recorded. Run as root: bash -s delete\n` +
    assignments([
      ["NODE_NAME", p.nodeName],
      ["STATE_DIR", p.stateDir],
    ]);
  return group(header, GUARD_BODY, "guard_main");
}

/**
 * A self-contained script for render: the program behind `set -- <action>`. Runs as root with
 * `bash file` (or `bash -s` over ssh), no arguments, no environment.
 */
export function renderNodeScript(p: NodeScriptParams, action: NodeAction): string {
  return (
    "#!/usr/bin/env bash\n" +
    `# ${action} on node ${p.nodeName}: exactly what its Command runs. As root: bash ${action}.sh\n` +
    `set -- ${shellQuote(action)}\n` +
    renderNodeProgram(p)
  );
}

// The few properties the program's own safety rests on, checked again here (the config parser
// is the first line): it removes files under stateDir and does arithmetic with the timeouts.
function checkParams(p: NodeScriptParams): void {
  const plainPath = /^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/;
  if (!plainPath.test(p.stateDir) || p.stateDir.split("/").some((s) => s === "." || s === "..")) {
    throw new Error("stateDir must be a plain absolute path");
  }
  if (p.kubelet.path !== undefined && !plainPath.test(p.kubelet.path)) {
    throw new Error("kubelet.path must be a plain absolute path");
  }
  for (const [name, n] of [
    ["readyTimeoutSeconds", p.readyTimeoutSeconds],
    ["kubeletTimeoutSeconds", p.kubeletTimeoutSeconds],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  }
  if (!/^[0-9a-f.:]+$/.test(p.localDnsIp) || !/^[0-9a-f.:]+$/.test(p.clusterDnsIp)) {
    throw new Error("localDnsIp and clusterDnsIp must be IP addresses in canonical form");
  }
  if (!/^[a-z0-9.-]+$/.test(p.clusterDomain)) throw new Error("clusterDomain must be a DNS name");
}
