// Single functions of the node program, run by bash on this machine with a stand-in for what they
// read (no test node): the races that a node only shows now and then, made certain here.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
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
  it("read_kubelet_process: a starting kubelet is retried, with nothing on stderr", () => {
    const r = bash(
      `${VALUES}\n${DELIVERED_NODE_PROGRAM}\n` +
        `read_unit_properties() { unit[MainPID]=${DEAD_PID}; }\n` +
        "if read_kubelet_process starting; then echo read; else echo retry; fi",
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

  it("the launcher's kubelet_root_dir: the default, with nothing on stderr", () => {
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
      const r = bash(`${functions}\nkubelet_root_dir`, {
        PATH: `${dir}:${process.env.PATH ?? ""}`,
      });
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "/var/lib/kubelet\n");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
