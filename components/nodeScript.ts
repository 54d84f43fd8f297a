// The node programs: the bash that switches one node's kubelet to the cache (create/update), back
// (delete) or only looks (check), and the revert guard. Their source is real bash under
// ./nodeProgram/ (read it there: every file says what it does and why); this file only puts a
// header and the node's values in front of it. Values enter only here, through shellQuote, after
// the config parser validated them. The result is sent on stdin to `bash -s <action>`.
//
// How it reaches a node: the node program itself, with no value in it, is stored once in a
// ConfigMap (DELIVERED_NODE_PROGRAM) that the DaemonSet mounts, so kubelet puts it on every node.
// What each node's switch Command sends is a short launcher (renderSwitchLauncher): the node's
// values and the program's sha256, and code that runs only a delivered copy with that digest.
// `npm run check`, which runs before anything is installed, sends the whole program
// (renderNodeProgram): the same code, put together in the same order.
import { createHash } from "node:crypto";
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
const SAVED_PROGRAM_BODY = source("saved");
const GUARD_BODY = [SAVED_PROGRAM_BODY, source("guard")].join("\n");
const LAUNCHER_BODY = [SAVED_PROGRAM_BODY, source("delivered")].join("\n");
const CLEANUP_BODY = source("cleanup");

/** The ConfigMap that holds the node program, its key, and the DaemonSet volume that mounts it. */
export const NODE_PROGRAM_DELIVERY = {
  configMap: "node-local-dns-node-program",
  file: "node-program.bash",
  volume: "node-program",
} as const;

/** The names of a node's values, in the order the program and the launcher declare them. */
const NODE_VALUE_NAMES = [
  "NODE_NAME",
  "LOCAL_DNS_IP",
  "CLUSTER_DNS_IP",
  "FALLBACK_TO_KUBE_DNS",
  "CLUSTER_DOMAIN",
  "STATE_DIR",
  "KUBELET_PATH",
  "KUBELET_FORMAT",
  "READY_TIMEOUT_SECONDS",
  "KUBELET_TIMEOUT_SECONDS",
  "LOCK_TIMEOUT_SECONDS",
] as const;

/**
 * The node program as the ConfigMap holds it: every function and constant, no node's value. The
 * launcher sets the values, loads it and calls main. Its first lines fail at once if a value is
 * missing (and tell shellcheck where the values come from).
 */
export const DELIVERED_NODE_PROGRAM =
  "# nodelocaldns node program, delivered to every node through the ConfigMap\n" +
  `# ${NODE_PROGRAM_DELIVERY.configMap}. It holds no node's values and does nothing by itself:\n` +
  "# each node's switch launcher sets them, checks this text's sha256 and loads it.\n" +
  "# Source: components/nodeProgram/*.bash in the nodelocaldns project.\n" +
  ["bash_variables_at_start", ...NODE_VALUE_NAMES]
    .map((name) => `: "\${${name}?set by the launcher}"\n`)
    .join("") +
  PROGRAM_BODY +
  "\n";

/** The sha256 (hex) of DELIVERED_NODE_PROGRAM, which every launcher checks. */
export const DELIVERED_NODE_PROGRAM_SHA256 = createHash("sha256")
  .update(DELIVERED_NODE_PROGRAM)
  .digest("hex");

/**
 * How long a run waits for another run on the same node to release the node lock: the longest
 * a run can take (cache wait, a restart and an undo's restart) plus a margin.
 */
export function lockTimeoutSeconds(p: NodeScriptParams): number {
  return p.readyTimeoutSeconds + 2 * p.kubeletTimeoutSeconds + 30;
}

/** The node's values as `[name, value]`, in NODE_VALUE_NAMES order. */
function nodeValues(p: NodeScriptParams): [string, string | number][] {
  const values: Record<(typeof NODE_VALUE_NAMES)[number], string | number> = {
    NODE_NAME: p.nodeName,
    LOCAL_DNS_IP: p.localDnsIp,
    CLUSTER_DNS_IP: p.clusterDnsIp,
    FALLBACK_TO_KUBE_DNS: p.fallbackToKubeDns ? "yes" : "no",
    CLUSTER_DOMAIN: p.clusterDomain,
    STATE_DIR: p.stateDir,
    KUBELET_PATH: p.kubelet.path ?? "",
    KUBELET_FORMAT: p.kubelet.format,
    READY_TIMEOUT_SECONDS: p.readyTimeoutSeconds,
    KUBELET_TIMEOUT_SECONDS: p.kubeletTimeoutSeconds,
    LOCK_TIMEOUT_SECONDS: lockTimeoutSeconds(p),
  };
  return NODE_VALUE_NAMES.map((name) => [name, values[name]]);
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
 * The whole node program with one node's values, what `npm run check` sends on stdin to
 * `bash -s check`; the same code as the launcher loads. No secret ever goes in it.
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
    assignments(nodeValues(p));
  return group(header, PROGRAM_BODY, "main");
}

/**
 * The switch launcher: what the switch Command sends on stdin to `bash -s <action>` (or
 * `sudo -n bash -s <action>`). It loads the delivered node program (DELIVERED_NODE_PROGRAM), only
 * if its sha256 matches, and runs its main with this node's values.
 */
export function renderSwitchLauncher(p: NodeScriptParams): string {
  checkParams(p);
  const header =
    `# nodelocaldns switch launcher for node ${p.nodeName}: runs the node program (from the\n` +
    `# ConfigMap ${NODE_PROGRAM_DELIVERY.configMap}, only with the sha256 below), which points\n` +
    "# kubelet at the cache (create, update), back (delete) or says what create would do (check).\n" +
    `# As root: bash -s create < launcher. While switched it keeps ${p.stateDir} (0700).\n` +
    "# Source: components/nodeProgram/*.bash. This node's values, validated, then the launcher's:\n" +
    // The program's copy for reverts takes everything defined after this line (build_program_copy).
    "bash_variables_at_start=$(compgen -v)\n" +
    assignments([
      ...nodeValues(p),
      ["PROGRAM_SHA256", DELIVERED_NODE_PROGRAM_SHA256],
      ["PROGRAM_VOLUME", NODE_PROGRAM_DELIVERY.volume],
      ["PROGRAM_FILE", NODE_PROGRAM_DELIVERY.file],
      ["LAUNCHER_LOG_PREFIX", "nodelocaldns"],
    ]);
  // `launch` leaves the checked text in delivered_program; eval runs exactly that text here, at
  // the top level, so its declarations are global as in the whole program.
  const entry =
    'launch "$@"\n' + 'eval "${delivered_program}"\n' + "unset delivered_program\n" + "main";
  // Before the group, so that it covers all of it: the values are used by the delivered program.
  const directive = "# shellcheck disable=SC2034 # the values are read by the delivered program\n";
  return directive + group(header, LAUNCHER_BODY, entry);
}

/**
 * The revert guard: what the guard Command sends on stdin. On delete it runs the copy of the node
 * program that the last switch saved under stateDir, if there is one.
 */
export function renderGuardProgram(p: NodeScriptParams): string {
  checkParams(p);
  const header =
    `# nodelocaldns revert guard for node ${p.nodeName}: on delete, runs the program copy saved\n` +
    `# in ${p.stateDir}, if any, to revert what it recorded. As root: bash -s delete\n` +
    assignments([
      ["NODE_NAME", p.nodeName],
      ["STATE_DIR", p.stateDir],
      ["LAUNCHER_LOG_PREFIX", "nodelocaldns-guard"],
    ]);
  return group(header, GUARD_BODY, "guard_main");
}

/**
 * The cleanup: what the cleanup Command sends on stdin. Its delete runs after the DaemonSet is
 * deleted and removes what node-cache (run with -skipteardown) left on the node.
 */
export function renderCleanupProgram(p: NodeScriptParams): string {
  checkParams(p);
  const header =
    `# nodelocaldns cleanup for node ${p.nodeName}. As root: bash -s delete\n` +
    assignments([
      ["NODE_NAME", p.nodeName],
      ["LOCAL_DNS_IP", p.localDnsIp],
    ]);
  return group(header, CLEANUP_BODY, "cleanup_main");
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
