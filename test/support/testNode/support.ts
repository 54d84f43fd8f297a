// Whether test nodes can run on this machine (Linux, root, the tools, and namespaces, overlay mounts
// and links that actually work), checked once per process, and the guards tests use with it:
// nodeTestOptions().

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HOST_PATH, SSHD, UNSHARE_FLAGS } from "./constants";

/** Host paths of the tools the harness runs itself (found on HOST_PATH). */
export interface Tools {
  unshare: string;
  nsenter: string;
  ssh: string;
  sshKeygen: string;
}

let support: { reason: string | undefined; tools?: Tools } | undefined;

function findExecutable(name: string): string | undefined {
  for (const dir of HOST_PATH.split(":")) {
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) {
      return candidate;
    }
  }
  return undefined;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// Everything a node needs from the kernel, tried once in a throwaway set of namespaces.
const PROBE_SCRIPT = `set -e
d=$1
mount -t tmpfs tmpfs "$d"
mkdir "$d/upper" "$d/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/upper,workdir=$d/work" /etc
mount -t proc proc /proc
ip link set lo up
`;

function detectSupport(): { reason: string | undefined; tools?: Tools } {
  if (process.platform !== "linux") {
    return { reason: `needs Linux, this is ${process.platform}` };
  }
  if (process.getuid?.() !== 0) {
    return { reason: "needs root (kernel namespaces and mounts)" };
  }
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["mount", "mount"],
    ["setsid", "util-linux"],
    ["timeout", "coreutils"],
    ["bash", "bash"],
    ["ip", "iproute2"],
    ["ssh", "openssh-client"],
    ["ssh-keygen", "openssh-client"],
  ]) {
    const file = findExecutable(tool);
    if (file === undefined) {
      missing.push(`${tool} (${pkg})`);
    } else {
      found.set(tool, file);
    }
  }
  if (!isExecutableFile(SSHD)) {
    missing.push(`${SSHD} (openssh-server)`);
  }
  if (missing.length > 0) {
    return { reason: `missing ${missing.join(", ")}` };
  }
  const tools: Tools = {
    unshare: found.get("unshare")!,
    nsenter: found.get("nsenter")!,
    ssh: found.get("ssh")!,
    sshKeygen: found.get("ssh-keygen")!,
  };
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), "testnode-probe-"));
  try {
    const probe = spawnSync(
      tools.unshare,
      [...UNSHARE_FLAGS, "bash", "-c", PROBE_SCRIPT, "probe", probeDir],
      { env: { PATH: HOST_PATH }, encoding: "utf8", timeout: 15_000, killSignal: "SIGKILL" },
    );
    if (probe.error !== undefined) {
      return { reason: `namespace probe failed: ${probe.error.message}` };
    }
    if (probe.status !== 0) {
      const detail = probe.stderr.trim() || `exit ${probe.status ?? probe.signal}`;
      return { reason: `cannot create namespaces, overlay mounts or links: ${detail}` };
    }
  } finally {
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
  return { reason: undefined, tools };
}

/** The tools a node needs; throws when test nodes cannot run here. */
export function requireTools(): Tools {
  support ??= detectSupport();
  if (support.reason !== undefined || support.tools === undefined) {
    throw new Error(`test nodes unavailable: ${support.reason ?? "unknown"}`);
  }
  return support.tools;
}

/** Why test nodes cannot run here, or undefined when they can. Checked once per process. */
export function testNodeSupport(): string | undefined {
  support ??= detectSupport();
  return support.reason;
}

/**
 * Options for `test(...)`/`describe(...)` of tests that need test nodes: `{}` when supported,
 * `{ skip }` when not; in CI (CI=true) an unsupported machine is an error, never a skip.
 */
export function nodeTestOptions(): { skip?: string } {
  const reason = testNodeSupport();
  if (reason === undefined) {
    return {};
  }
  if (process.env.CI === "true") {
    throw new Error(`test nodes are required in CI but unavailable: ${reason}`);
  }
  return { skip: `test nodes unavailable: ${reason}` };
}
