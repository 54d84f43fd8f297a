// Single functions of the node program, run by bash on this machine with a stand-in for what they
// read (no test node): the races that a node only shows now and then, made certain here.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { DELIVERED_NODE_PROGRAM, renderSwitchLauncher } from "../components/nodeScript";
import { DEFAULTS } from "../components/settings";

const VALUES = [
  "bash_variables_at_start=",
  "NODE_NAME=node-1 LOCAL_DNS_IP=169.254.20.10 CLUSTER_DNS_IP=10.96.0.10",
  "FALLBACK_TO_KUBE_DNS=no CLUSTER_DOMAIN=cluster.local STATE_DIR=/nonexistent/nld",
  "KUBELET_PATH= KUBELET_FORMAT=auto READY_TIMEOUT_SECONDS=1 KUBELET_TIMEOUT_SECONDS=1",
  "LOCK_TIMEOUT_SECONDS=1",
].join("\n");

/** A pid that no process has: a child that has exited and been reaped. */
const DEAD_PID = "$(sh -c 'exit 0' & pid=$!; wait ${pid}; echo ${pid})";

function bash(script: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync("bash", ["-c", script], {
    encoding: "utf8",
    // stdin not a socket: Debian's bash would read ~/.bashrc as if started by sshd.
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH, ...env },
  });
}

describe("reading kubelet's command line while kubelet exits", () => {
  it("read_kubelet_argv: a starting kubelet is retried, with nothing on stderr", () => {
    const r = bash(
      `${VALUES}\n${DELIVERED_NODE_PROGRAM}\n` +
        `unit[MainPID]=${DEAD_PID}\n` +
        "if read_kubelet_argv starting; then echo read; else echo retry; fi",
    );
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "retry\n");
  });

  it("read_kubelet_process: otherwise one prefixed error line says what happened", () => {
    const r = bash(
      `${VALUES}\n${DELIVERED_NODE_PROGRAM}\nstep_phase=none\n` +
        `read_unit_properties() { unit[MainPID]=${DEAD_PID}; }\nread_kubelet_process`,
    );
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /^nodelocaldns\[node-1\]: error: kubelet \(pid \d+\) exited while its command line was read; try again\n$/,
    );
  });

  it("the launcher's read_kubelet_root_dir: the default, with nothing on stderr", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-fake-systemctl-"));
    try {
      // systemctl answers with the pid of a kubelet that is gone by the time it is read.
      fs.writeFileSync(path.join(dir, "systemctl"), `#!/bin/sh\necho ${DEAD_PID}\n`, {
        mode: 0o755,
      });
      const launcher = renderSwitchLauncher({
        nodeName: "node-1",
        localDnsIp: DEFAULTS.localDnsIp,
        clusterDnsIp: "10.96.0.10",
        fallbackToKubeDns: false,
        clusterDomain: DEFAULTS.clusterDomain,
        kubelet: { ...DEFAULTS.kubelet },
        stateDir: DEFAULTS.stateDir,
        readyTimeoutSeconds: 1,
        kubeletTimeoutSeconds: 1,
      });
      // The launcher's functions without its entry (the last four lines call launch and main).
      const functions = launcher.split('\nlaunch "$@"\n')[0]!.replace(/^[^{]*\{\n/, "");
      const r = bash(`${functions}\nread_kubelet_root_dir\nprintf '%s\\n' "\${kubelet_root}"`, {
        PATH: `${dir}:${process.env.PATH ?? ""}`,
      });
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "/var/lib/kubelet\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// These helpers replaced a process each (stat, mktemp, a command substitution): what the process
// used to guarantee is checked here, on real files.
describe("the node program's helpers that run no process", () => {
  const program = `${VALUES}\n${DELIVERED_NODE_PROGRAM}\nstep_phase=none\nset -Eeuo pipefail\n`;
  let dir = "";
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-helpers-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** read_file_exact on a file holding `bytes`: what it read (as hex) or its error line. */
  function readExact(name: string, bytes: Buffer | null) {
    const file = path.join(dir, name);
    if (bytes !== null) fs.writeFileSync(file, bytes);
    return bash(
      `${program}read_file_exact ${file} content\n` + `printf '%s' "\${content}" | od -An -tx1`,
    );
  }

  it("read_file_exact keeps every byte: CRLF, trailing newlines, no final newline, empty", () => {
    for (const text of ["a=b\r\n\r\n", "x\n\n\n", "no newline", "", "\\ and $HOME"]) {
      const r = readExact("exact", Buffer.from(text));
      assert.equal(r.status, 0, r.stderr);
      const hex = r.stdout.replace(/\s/g, "");
      assert.equal(hex, Buffer.from(text).toString("hex"), JSON.stringify(text));
    }
  });

  it("read_file_exact refuses NUL bytes, a file too large, and a file it cannot open", () => {
    const prefix = "nodelocaldns[node-1]: error: ";
    const nul = readExact("nul", Buffer.from("a\0b"));
    assert.equal(nul.status, 1);
    assert.match(nul.stderr, new RegExp(`^${escape(prefix)}.*/nul: holds NUL bytes`));
    const big = readExact("big", Buffer.alloc(1048577, 0x61));
    assert.equal(big.status, 1);
    assert.match(big.stderr, /\/big: more than 1048576 bytes, too large/);
    const limit = readExact("limit", Buffer.alloc(1048576, 0x61));
    assert.equal(limit.status, 0, limit.stderr);
    // A directory where a file should be, and a path that is not there: refused, not read empty.
    fs.mkdirSync(path.join(dir, "a-directory"));
    const directory = readExact("a-directory", null);
    assert.match(directory.stderr, /\/a-directory: not a regular file; nothing changed\n$/);
    // A regular file that cannot be opened (mode 000, read by an unprivileged user): refused
    // with the program's own line, where bash alone would have read it as empty.
    fs.chmodSync(dir, 0o755);
    const locked = path.join(dir, "unreadable");
    fs.writeFileSync(locked, "x", { mode: 0o000 });
    const asUser =
      process.getuid?.() === 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
    const unreadable = spawnSync(
      "bash",
      ["-c", `${asUser}bash -c "$1"`, "_", `${program}read_file_exact ${locked} c; echo read`],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH } },
    );
    assert.equal(unreadable.stdout, "");
    assert.match(unreadable.stderr, /\/unreadable: cannot be opened; nothing changed\n$/);
    for (const r of [nul, big, directory, unreadable]) {
      for (const line of r.stderr.split("\n").filter((l) => l !== "")) {
        assert.ok(line.startsWith("nodelocaldns[node-1]: "), `an unprefixed line: ${line}`);
      }
    }
  });

  it("create_temp_file makes a new 0600 file each time and never reuses a name", () => {
    const r = bash(
      `${program}umask 077\n` +
        `for i in 1 2 3; do create_temp_file ${dir} kubelet; printf '%s\\n' "\${temp_file}"; done`,
    );
    assert.equal(r.status, 0, r.stderr);
    const names = r.stdout.trim().split("\n");
    assert.equal(new Set(names).size, 3);
    for (const name of names) {
      assert.match(path.basename(name), /^\.kubelet\.nodelocaldns-tmp\.[0-9a-f]{6}$/);
      const stat = fs.lstatSync(name);
      assert.ok(stat.isFile());
      assert.equal(stat.mode & 0o777, 0o600);
      assert.equal(stat.size, 0);
    }
  });

  it("create_temp_file skips a name that a symlink already has, to a file or to a device", () => {
    const target = path.join(dir, "target");
    fs.writeFileSync(target, "keep");
    // noclobber alone refuses a symlink to a regular file, but would open one to /dev/null.
    for (const [seed, linkTo] of [
      [7, target],
      [8, "/dev/null"],
    ] as const) {
      // RANDOM seeded: the first name it picks is known, and a symlink is put there first.
      const pick =
        `${program}umask 077\nRANDOM=${seed}\ncreate_temp_file ${dir} seeded\n` +
        `printf '%s' "\${temp_file}"`;
      const first = bash(pick);
      assert.equal(first.status, 0, first.stderr);
      fs.rmSync(first.stdout);
      fs.symlinkSync(linkTo, first.stdout);
      const second = bash(pick);
      assert.equal(second.status, 0, second.stderr);
      assert.notEqual(second.stdout, first.stdout, `a symlink to ${linkTo} was taken`);
      assert.ok(fs.lstatSync(first.stdout).isSymbolicLink());
    }
    assert.equal(fs.readFileSync(target, "utf8"), "keep");
  });

  it("canonical_ip_list sets canonical_list; an entry that is no IP fails it", () => {
    const r = bash(
      `${program}canonical_ip_list '10.96.0.10,FD00:0:0:0:0:0:0:A,2001:db8::0:1'\n` +
        `printf '%s\\n' "\${canonical_list}"\n` +
        `canonical_ip_list '10.96.0.300' || echo refused`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "10.96.0.10,fd00::a,2001:db8::1\nrefused\n");
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
