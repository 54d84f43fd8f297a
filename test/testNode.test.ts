// Smoke test of the test-node harness (test/support/testNode.ts): what other tests rely on, that a
// node is real (bash, sshd, the DNS cache address, the systemctl stub) and that it stays inside
// its namespaces. Never sends anything to the local DNS address from outside a node.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { nodeTestOptions, startTestNode, type TestNode } from "./support/testNode";

const KUBELET = "/etc/kubernetes/kubelet";
const MARKER = `KUBELET_EXTRA_ARGS=--testnode-marker-${process.pid}-${Date.now()}\n`;
const CONNECT_CACHE = "timeout 2 bash -c 'exec 3<>/dev/tcp/169.254.20.10/53'";

/** Host-side addresses, read from the kernel (no traffic). */
function hostAddresses(): string {
  return spawnSync("ip", ["-o", "addr", "show"], { encoding: "utf8" }).stdout;
}

/** A fresh ed25519 public key that is not the node's, in authorized_keys form. */
function otherPublicKey(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "testnode-otherkey-"));
  try {
    const key = path.join(dir, "key");
    const result = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key]);
    assert.equal(result.status, 0, String(result.stderr));
    return fs.readFileSync(`${key}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("test node", nodeTestOptions(), () => {
  let node: TestNode;
  let hostAddressesBefore: string;
  let hostHadKubernetesDir: boolean;
  const hostFile = `/tmp/testnode-leak-${process.pid}-${Date.now()}`;

  before(async () => {
    hostAddressesBefore = hostAddresses();
    hostHadKubernetesDir = fs.existsSync("/etc/kubernetes");
    node = await startTestNode({ files: { [KUBELET]: MARKER } });
  });
  after(async () => {
    await node?.stop();
    fs.rmSync(hostFile, { force: true });
  });

  it("shows its files inside only", async () => {
    const inside = await node.run(`cat ${KUBELET}`);
    assert.deepEqual(inside, { code: 0, stdout: MARKER, stderr: "" });
    assert.equal(node.readFile(KUBELET).toString(), MARKER);
    assert.ok(node.exists(KUBELET));
    assert.ok(
      !fs.existsSync(KUBELET) || !fs.readFileSync(KUBELET, "utf8").includes(MARKER),
      "the node's kubelet file reached the host",
    );
    if (!hostHadKubernetesDir) {
      assert.ok(!fs.existsSync("/etc/kubernetes"), "/etc/kubernetes appeared on the host");
    }
    const st = node.stat(KUBELET);
    assert.deepEqual({ ...st, mode: st.mode & 0o7777 }, { mode: 0o644, uid: 0, gid: 0 });
  });

  it("keeps writes inside the node, symlinks included", async () => {
    const name = path.basename(hostFile);
    const write = await node.run(
      `set -e; for d in /tmp /etc /var/lib /usr/local /root; do echo x >"$d/${name}"; done
       ln -s ${hostFile} /etc/${name}.link`,
    );
    assert.equal(write.code, 0, write.stderr);
    for (const d of ["/tmp", "/etc", "/var/lib", "/usr/local", "/root"]) {
      assert.ok(!fs.existsSync(path.join(d, name)), `${d}/${name} reached the host`);
    }
    node.writeFile(`/etc/${name}.link`, "through the link\n", 0o600);
    assert.ok(!fs.existsSync(hostFile), "writeFile followed a node symlink onto the host");
    assert.equal(node.readFile(hostFile).toString(), "through the link\n");
    assert.equal(node.stat(hostFile).mode & 0o7777, 0o600);
    assert.ok(!node.exists(`/etc/${name}.missing`));
    assert.throws(() => node.readFile(`/etc/${name}.missing`), /No such file/);
  });

  it("has the local DNS address on its own lo only", async () => {
    const addresses = await node.run("ip -o addr show");
    assert.equal(addresses.code, 0, addresses.stderr);
    assert.match(addresses.stdout, /\blo\s+inet 169\.254\.20\.10\/32\b/);
    assert.equal(hostAddresses(), hostAddressesBefore, "the host's addresses changed");
  });

  it("listens on 169.254.20.10:53 inside until told not to", async () => {
    assert.equal((await node.run(CONNECT_CACHE)).code, 0);
    await node.setCacheListening(false);
    const refused = await node.run(CONNECT_CACHE);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /refused/);
    await node.setCacheListening(true);
    assert.equal((await node.run(CONNECT_CACHE)).code, 0);
  });

  it("stubs systemctl for kubelet: counts restarts and fails on demand", async () => {
    assert.deepEqual(await node.run("systemctl is-active kubelet"), {
      code: 0,
      stdout: "active\n",
      stderr: "",
    });
    assert.equal(node.restarts(), 0);
    node.setKubeletFailRestarts(1);
    const failed = await node.run("systemctl restart kubelet && systemctl is-active kubelet");
    assert.deepEqual(failed, { code: 3, stdout: "failed\n", stderr: "" });
    assert.equal(node.restarts(), 1);
    assert.equal(node.kubeletState(), "failed");
    const again = await node.run(
      "systemctl restart kubelet.service && systemctl is-active -q kubelet",
    );
    assert.deepEqual(again, { code: 0, stdout: "", stderr: "" });
    assert.equal(node.restarts(), 2);
    const other = await node.run("systemctl stop kubelet");
    assert.equal(other.code, 1);
    assert.match(other.stderr, /unsupported: systemctl stop kubelet/);
    assert.equal((await node.run("systemctl restart containerd")).code, 1);
    assert.equal(node.restarts(), 2);
    assert.deepEqual(node.systemctlCalls(), [
      "is-active kubelet",
      "restart kubelet",
      "is-active kubelet",
      "restart kubelet.service",
      "is-active -q kubelet",
      "stop kubelet",
      "restart containerd",
    ]);
  });

  it("runs `bash -s` over real ssh as root, without the test process's environment", async () => {
    process.env.TESTNODE_LEAK = "leaked";
    try {
      const result = await node.ssh(
        "bash -s",
        [
          "id -u",
          'echo "$HOME ${TESTNODE_LEAK-unset}"',
          'echo "${SSH_CONNECTION%% *}"',
          "hostname",
          `cat ${KUBELET}`,
        ].join("\n"),
      );
      assert.deepEqual(result, {
        code: 0,
        stdout: `0\n/root unset\n127.0.0.1\ntest-node\n${MARKER}`,
        stderr: "",
      });
      const local = await node.run('echo "${TESTNODE_LEAK-unset}"');
      assert.equal(local.stdout, "unset\n");
    } finally {
      delete process.env.TESTNODE_LEAK;
    }
    assert.match(node.hostKey, /^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    assert.equal(node.sshPort, 22);
  });

  it("pins the node's host key", async () => {
    const pinned = await node.ssh("echo ok", undefined, {
      knownHosts: `127.0.0.1 ${node.hostKey}\n`,
    });
    assert.deepEqual(pinned, { code: 0, stdout: "ok\n", stderr: "" });
    const wrong = await node.ssh("echo ok", undefined, {
      knownHosts: `127.0.0.1 ${otherPublicKey()}\n`,
    });
    assert.equal(wrong.code, 255);
    assert.equal(wrong.stdout, "");
    assert.match(wrong.stderr, /Host key verification failed/);
    const unknown = await node.ssh("echo ok", undefined, { knownHosts: "" });
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /Host key verification failed/);
  });

  it("stop() ends every process of the node and removes its dir", async () => {
    const background = await node.run("setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!");
    assert.equal(background.code, 0);
    const pids = node.hostPids();
    // unshare, pid 1, the cache listener, sshd, the background sleep
    assert.ok(pids.length >= 5, `expected at least 5 processes, got ${pids.join(", ")}`);
    assert.ok(pids.includes(node.initPid));
    assert.ok(fs.existsSync(node.dir));
    await node.stop();
    const left = pids.filter((pid) => fs.existsSync(`/proc/${pid}`));
    assert.deepEqual(left, [], "processes of the node survived stop()");
    assert.ok(!fs.existsSync(node.dir), "the node's dir is still there");
    await node.stop(); // idempotent
    await assert.rejects(node.run("true"), /not running/);
  });
});

describe("test node options", nodeTestOptions(), () => {
  it("starts without address, cache or sshd, and fails restarts from the start", async () => {
    const node = await startTestNode({ localDnsIp: null, ssh: false, kubeletFailRestarts: 2 });
    try {
      const addresses = await node.run("ip -o addr show");
      assert.equal(addresses.code, 0, addresses.stderr);
      assert.doesNotMatch(addresses.stdout, /169\.254\.20\.10/);
      assert.match(addresses.stdout, /\blo\s+inet 127\.0\.0\.1\/8\b/);
      const listeners = await node.run("exec 3<>/dev/tcp/127.0.0.1/22");
      assert.notEqual(listeners.code, 0, "sshd is listening although ssh: false");
      await assert.rejects(node.ssh("true"), /ssh: false/);
      const states = await node.run(
        "for i in 1 2 3; do systemctl restart kubelet; systemctl is-active kubelet; done",
      );
      assert.equal(states.stdout, "failed\nfailed\nactive\n");
      assert.equal(node.restarts(), 3);
    } finally {
      await node.stop();
    }
  });

  it("rejects bad options before starting anything", async () => {
    await assert.rejects(startTestNode({ localDnsIp: "not-an-ip" }), /not an IP address/);
    await assert.rejects(
      startTestNode({ localDnsIp: null, cacheListening: true }),
      /cacheListening needs a localDnsIp/,
    );
    await assert.rejects(startTestNode({ files: { "etc/x": "" } }), /must be absolute/);
    await assert.rejects(startTestNode({ kubeletFailRestarts: -1 }), /non-negative integer/);
  });
});
