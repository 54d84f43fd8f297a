// Whether systemd test nodes can run on this machine (Linux, root, the tools, overlayfs and a
// cgroup hierarchy systemd can use), checked once per process without booting anything, and the
// guard tests use with it: systemdNodeTestOptions(). The root filesystem is built (or found in
// its cache) by the first startSystemdNode(), not here.

import * as fs from "node:fs";
import * as path from "node:path";
import { HOST_PATH } from "./constants";

/** Host paths of the tools the harness runs itself (found on HOST_PATH). */
export interface SystemdTools {
  nsenter: string;
  ssh: string;
  sshKeygen: string;
}

let support: { reason: string | undefined; tools?: SystemdTools } | undefined;

function findExecutable(name: string): string | undefined {
  for (const dir of HOST_PATH.split(":")) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) {
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why the cgroup hierarchies cannot host a booted systemd, or undefined when they can. */
function cgroupProblem(): string | undefined {
  const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n");
  const usable = mounts.some((line) => {
    const [, , type, options] = line.split(" ");
    return type === "cgroup2" || (type === "cgroup" && /(^|,)name=systemd(,|$)/.test(options!));
  });
  return usable ? undefined : "no cgroup2 or name=systemd cgroup hierarchy is mounted";
}

function detectSupport(): { reason: string | undefined; tools?: SystemdTools } {
  if (process.platform !== "linux") {
    return { reason: `needs Linux, this is ${process.platform}` };
  }
  if (process.getuid?.() !== 0) {
    return { reason: "needs root (systemd-nspawn, namespaces, mounts)" };
  }
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ["systemd-nspawn", "systemd-container"],
    ["unshare", "util-linux"],
    ["nsenter", "util-linux"],
    ["setsid", "util-linux"],
    ["flock", "util-linux"],
    ["mount", "mount"],
    ["chroot", "coreutils"],
    ["bash", "bash"],
    ["ip", "iproute2"],
    ["ss", "iproute2"],
    ["socat", "socat"],
    ["ssh", "openssh-client"],
    ["ssh-keygen", "openssh-client"],
    ["debootstrap", "debootstrap"],
  ]) {
    const file = findExecutable(tool);
    if (file === undefined) {
      missing.push(`${tool} (${pkg})`);
    } else {
      found.set(tool, file);
    }
  }
  if (missing.length > 0) {
    return { reason: `missing ${missing.join(", ")}` };
  }
  if (!/\soverlay$/m.test(fs.readFileSync("/proc/filesystems", "utf8"))) {
    return { reason: "the kernel has no overlayfs" };
  }
  const cgroups = cgroupProblem();
  if (cgroups !== undefined) {
    return { reason: cgroups };
  }
  return {
    reason: undefined,
    tools: {
      nsenter: found.get("nsenter")!,
      ssh: found.get("ssh")!,
      sshKeygen: found.get("ssh-keygen")!,
    },
  };
}

/** The tools a node needs; throws when systemd test nodes cannot run here. */
export function requireSystemdTools(): SystemdTools {
  support ??= detectSupport();
  if (support.reason !== undefined || support.tools === undefined) {
    throw new Error(`systemd test nodes unavailable: ${support.reason ?? "unknown"}`);
  }
  return support.tools;
}

/** Why systemd test nodes cannot run here, or undefined when they can. Checked once per process. */
export function systemdNodeSupport(): string | undefined {
  support ??= detectSupport();
  return support.reason;
}

/**
 * Options for `test(...)`/`describe(...)` of tests that need systemd test nodes: `{}` when
 * supported, `{ skip }` when not; in CI (CI=true) an unsupported machine is an error, never a
 * skip.
 */
export function systemdNodeTestOptions(): { skip?: string } {
  const reason = systemdNodeSupport();
  if (reason === undefined) {
    return {};
  }
  if (process.env.CI === "true") {
    throw new Error(`systemd test nodes are required in CI but unavailable: ${reason}`);
  }
  return { skip: `systemd test nodes unavailable: ${reason}` };
}
