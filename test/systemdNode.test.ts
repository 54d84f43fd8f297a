// Self-test of the systemd test-node harness (test/support/systemdNode.ts): that a node really
// boots systemd with sshd and sudo, that the stand-in kubelet follows kubelet's rules for flags,
// --config and --config-dir under a real kubelet.service (restarts, drop-ins, daemon-reload), that
// its failure knobs, healthz and the test DNS server behave as documented, that the ssh forward
// works from the host, and that stop() leaves no process, namespace, mount or cgroup behind.
// Every DNS packet stays inside a node's own network namespace.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  KUBELET_LAYOUTS,
  startSystemdNode,
  systemdNodeTestOptions,
  type ExecResult,
  type SystemdNode,
} from "./support/systemdNode";

const LOCAL_DNS_IP = "169.254.20.10";
const UNIT = "kubelet.service";
const EXTRA_ARGS = "/etc/default/kubelet";
const CONFIG = "/var/lib/kubelet/config.yaml";
const CONFIG_DIR = "/etc/kubernetes/kubelet.conf.d";
const KNOBS = "/etc/kubelet-standin";
const BOOT_TEST_TIMEOUT_MS = 15 * 60_000; // the first run builds the root filesystem
const TEST_TIMEOUT_MS = 120_000;

function ok(result: ExecResult, what: string): string {
  assert.equal(result.code, 0, `${what}: exit ${result.code}\n${result.stderr}`);
  return result.stdout;
}

function kubeletConfig(clusterDNS: string[], kind = "KubeletConfiguration"): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: ${kind}\nclusterDNS: ${JSON.stringify(clusterDNS)}\n`;
}

/** Restarts kubelet and waits for the new process's effective config; returns the status. */
async function restartKubelet(node: SystemdNode) {
  const before = await node.kubelet();
  ok(await node.run(`systemctl restart ${UNIT}`), "restart");
  await node.waitForUnit(UNIT, "running", 20_000);
  for (let i = 0; i < 100; i++) {
    const now = await node.kubelet();
    if (now.starts > before.starts && now.effective?.pid === now.mainPid) {
      return now;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail("kubelet did not record a new start");
}

/** An HTTP GET from inside the node: [status code, body], or null when nothing listens. */
async function httpGet(node: SystemdNode, port: number, urlPath: string) {
  const result = await node.run(
    `exec 3<>/dev/tcp/127.0.0.1/${port} || exit 7
     printf 'GET ${urlPath} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3
     timeout 5 cat <&3`,
  );
  if (result.code === 7) {
    return null;
  }
  const [head = "", body = ""] = ok(result, "GET").split("\r\n\r\n");
  return [Number(head.split(" ")[1]), body] as const;
}

/** A DNS query for an A record, as printf escapes (plain TCP prefix included if asked). */
function dnsQuery(id: number, name: string, tcp: boolean): string {
  const labels = name.split(".").flatMap((label) => [label.length, ...Buffer.from(label)]);
  const message = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1];
  const bytes = tcp ? [message.length >> 8, message.length & 0xff, ...message] : message;
  return bytes.map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
}

function hexBytes(od: string): Buffer {
  return Buffer.from(od.replace(/\s+/g, ""), "hex");
}

/** Sends a DNS query over TCP from inside the node; the reply without its length prefix. */
async function dnsOverTcp(node: SystemdNode, ip: string, id: number, name: string) {
  const result = await node.run(
    `exec 3<>/dev/tcp/${ip}/53 || exit 7
     printf '${dnsQuery(id, name, true)}' >&3
     set -- $(timeout 3 dd bs=1 count=2 status=none <&3 | od -An -tu1)
     (($# == 2)) || exit 0
     timeout 3 dd bs=1 count=$(($1 * 256 + $2)) status=none <&3 | od -An -v -tx1`,
  );
  return hexBytes(ok(result, "DNS over TCP"));
}

/** Whatever a TCP connection to ip:53 returns within 2 s of sending a query. */
async function rawTcp(node: SystemdNode, ip: string) {
  const result = await node.run(
    `exec 3<>/dev/tcp/${ip}/53 || exit 7
     printf '${dnsQuery(0x4142, "a.cluster.local", true)}' >&3
     timeout 2 cat <&3 | od -An -v -tx1`,
  );
  return result.code === 7 ? null : hexBytes(ok(result, "TCP"));
}

async function dnsOverUdp(node: SystemdNode, ip: string, id: number, name: string) {
  const result = await node.run(
    `exec 3<>/dev/udp/${ip}/53
     printf '${dnsQuery(id, name, false)}' >&3
     timeout 3 dd bs=4096 count=1 status=none <&3 | od -An -v -tx1`,
  );
  return hexBytes(result.stdout);
}

function parseReply(reply: Buffer) {
  return {
    id: reply.readUInt16BE(0),
    qr: (reply[2]! & 0x80) !== 0,
    rcode: reply[3]! & 0x0f,
    ancount: reply.readUInt16BE(6),
    lastFour: [...reply.subarray(reply.length - 4)].join("."),
  };
}

/** A TCP port that is free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The host's OpenSSH client, in the host's network namespace. */
function hostSsh(args: string[]): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn("ssh", args, { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Every namespace inode of a process (net:[...], mnt:[...], ...). */
function namespacesOf(pid: number): string[] {
  const dir = `/proc/${pid}/ns`;
  return fs.readdirSync(dir).map((ns) => fs.readlinkSync(path.join(dir, ns)));
}

/** Host pids using any of `namespaces`. */
function pidsUsing(namespaces: Set<string>): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    try {
      for (const ns of fs.readdirSync(`/proc/${entry}/ns`)) {
        if (namespaces.has(fs.readlinkSync(`/proc/${entry}/ns/${ns}`))) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Cgroup dirs of the host named after `name`. */
function cgroupsNamed(name: string): string[] {
  const found: string[] = [];
  for (const line of fs.readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, mountpoint, type] = line.split(" ");
    if ((type === "cgroup2" || type === "cgroup") && mountpoint !== undefined) {
      const dir = path.join(mountpoint, `nodelocaldns-test-${name}`);
      if (fs.existsSync(dir)) {
        found.push(dir);
      }
    }
  }
  return found;
}

/** Polls `check` (true when done) every 200 ms for at most `ms`; false on timeout. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return true;
}

/** Whether something accepts TCP connections on 127.0.0.1:port (the host's own loopback). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A fresh ed25519 public key that is not the node's, in authorized_keys form. */
function otherPublicKey(dir: string): string {
  const key = path.join(dir, "other_key");
  const result = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key]);
  assert.equal(result.status, 0, String(result.stderr));
  return fs.readFileSync(`${key}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

describe("systemd test node", systemdNodeTestOptions(), () => {
  let node: SystemdNode;
  let forwardPort: number;

  before(
    async () => {
      forwardPort = await freePort();
      const started = Date.now();
      node = await startSystemdNode({
        ...KUBELET_LAYOUTS.configDir,
        hostname: "node-1",
        sshForward: { address: "127.0.0.1", port: forwardPort },
      });
      console.log(`# systemd node booted in ${Date.now() - started} ms`);
    },
    { timeout: BOOT_TEST_TIMEOUT_MS },
  );
  after(async () => {
    await node?.stop();
  });

  it("boots systemd with its hostname, lo address and no failed unit", async () => {
    const out = ok(
      await node.run(
        "systemctl is-system-running; hostname; ps -o comm= 1; systemctl --failed --plain --no-legend; ip -o addr show",
      ),
      "status",
    );
    const [state, hostname, pid1, ...rest] = out.split("\n");
    assert.equal(state, "running");
    assert.equal(hostname, "node-1");
    assert.equal(pid1, "systemd");
    assert.match(rest.join("\n"), /\blo\s+inet 169\.254\.20\.10\/32/);
    assert.doesNotMatch(rest.join("\n"), /\b(eth|veth|host)\d*[:@]/, "only lo");
    assert.equal(fs.readlinkSync(`/proc/${node.leaderPid}/exe`), "/usr/lib/systemd/systemd");
  });

  it("lets root and ops (with sudo -n) in over ssh, host key pinned", async () => {
    assert.equal(ok(await node.ssh("id -un"), "root"), "root\n");
    const ops = await node.ssh("id -un && sudo -n id -un", undefined, { user: "ops" });
    assert.deepEqual(ops, { code: 0, stdout: "ops\nroot\n", stderr: "" });
    const wrongKey = `127.0.0.1 ${otherPublicKey(node.dir)}`;
    const refused = await node.ssh("true", undefined, { knownHosts: `${wrongKey}\n` });
    assert.equal(refused.code, 255, refused.stderr);
    assert.match(refused.stderr, /host key/i);
  });

  it("counts the CPU time of what ran in it, exited processes included", async () => {
    const before = node.cpuSeconds();
    assert.notEqual(before, undefined, "no cgroup v2 cpu.stat for the node");
    // A process that burns about 0.2 s of CPU inside the node and exits.
    ok(await node.ssh("i=0; while ((i < 200000)); do i=$((i + 1)); done"), "busy loop");
    const spent = node.cpuSeconds()! - before!;
    assert.ok(spent >= 0.05, `the node's counter moved by ${spent} s only`);
  });

  it("forwards a host loopback port to the node's sshd", async () => {
    const knownHosts = path.join(node.dir, "forward_known_hosts");
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${forwardPort} ${node.hostKey}\n`);
    const result = await hostSsh([
      ...["-F", "/dev/null", "-T", "-p", String(forwardPort), "-i", node.privateKeyPath],
      ...["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"],
      ...["-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null"],
      ...["-o", "LogLevel=ERROR", "ops@127.0.0.1", "sudo -n hostname"],
    ]);
    assert.deepEqual(result, { code: 0, stdout: "node-1\n", stderr: "" });
  });

  it("has files written before boot and reads and writes files inside", async () => {
    assert.match(node.readFile(`${CONFIG_DIR}/50-cluster-dns.conf`).toString(), /10\.96\.0\.10/);
    node.writeFile("/etc/kubernetes/x/y", "data\n", 0o600);
    assert.equal(node.readFile("/etc/kubernetes/x/y").toString(), "data\n");
    assert.deepEqual(node.stat("/etc/kubernetes/x/y"), { mode: 0o100600, uid: 0, gid: 0 });
    assert.ok(node.exists("/etc/kubernetes/x/y"));
    assert.ok(
      !fs.existsSync("/etc/kubernetes/x/y") ||
        fs.readFileSync("/etc/kubernetes/x/y", "utf8") !== "data\n",
    );
    const auth = node.stat("/home/ops/.ssh/authorized_keys");
    assert.deepEqual({ ...auth, mode: auth.mode & 0o7777 }, { mode: 0o600, uid: 1000, gid: 1000 });
  });

  it(
    "restarting kubelet changes MainPID and counts a start",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const first = await node.kubelet();
      assert.equal(first.active, "active");
      assert.ok(first.mainPid > 1);
      assert.equal(first.cmdline[0], "/usr/bin/kubelet");
      assert.ok(
        first.cmdline.includes("--config=/var/lib/kubelet/config.yaml"),
        String(first.cmdline),
      );
      const second = await restartKubelet(node);
      assert.notEqual(second.mainPid, first.mainPid);
      assert.equal(second.starts, first.starts + 1);
      assert.equal(second.effective?.pid, second.mainPid);
    },
  );

  it(
    "takes clusterDNS from flags over --config-dir over --config",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      node.writeFile(EXTRA_ARGS, `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`);
      let status = await restartKubelet(node);
      assert.deepEqual(status.effective?.clusterDNS, ["10.96.0.10"]);
      assert.equal(status.effective?.sources.clusterDNS, `${CONFIG_DIR}/50-cluster-dns.conf`);

      // A later drop-in (by name; JSON this time) replaces the list of an earlier one.
      node.writeFile(
        `${CONFIG_DIR}/60-later.conf`,
        JSON.stringify({
          apiVersion: "kubelet.config.k8s.io/v1beta1",
          kind: "KubeletConfiguration",
          clusterDNS: ["10.96.0.20", "10.96.0.21"],
        }),
      );
      status = await restartKubelet(node);
      assert.deepEqual(status.effective?.clusterDNS, ["10.96.0.20", "10.96.0.21"]);

      // Without --config-dir, the --config file.
      node.writeFile(EXTRA_ARGS, "KUBELET_EXTRA_ARGS=\n");
      status = await restartKubelet(node);
      assert.deepEqual(status.effective?.clusterDNS, ["10.96.0.99"]);
      assert.equal(status.effective?.sources.clusterDNS, CONFIG);

      // A flag beats both; a repeated --cluster-dns appends, comma lists split.
      node.writeFile(
        EXTRA_ARGS,
        `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR} --cluster-dns=10.0.0.53 --cluster-dns 10.0.0.54,10.0.0.55"\n`,
      );
      status = await restartKubelet(node);
      assert.deepEqual(status.effective?.clusterDNS, ["10.0.0.53", "10.0.0.54", "10.0.0.55"]);
      assert.equal(status.effective?.sources.clusterDNS, "flag --cluster-dns");
      node.writeFile(EXTRA_ARGS, `KUBELET_EXTRA_ARGS="--config-dir=${CONFIG_DIR}"\n`);
      ok(await node.run(`rm ${CONFIG_DIR}/60-later.conf`), "rm");
      await restartKubelet(node);
    },
  );

  it("needs daemon-reload for a changed unit drop-in", { timeout: TEST_TIMEOUT_MS }, async () => {
    // The layout's own drop-in, edited in place: systemd notices (NeedDaemonReload) but keeps
    // the old ExecStart until daemon-reload.
    const dropIn = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
    const original = node.readFile(dropIn).toString();
    const extra = "--config=/var/lib/kubelet/config.yaml --cluster-dns=10.0.0.77";
    node.writeFile(dropIn, `${original}ExecStart=\nExecStart=/usr/bin/kubelet ${extra}\n`);
    const show = "systemctl show -p NeedDaemonReload --value kubelet.service";
    assert.equal(ok(await node.run(show), "show"), "yes\n");
    let status = await restartKubelet(node);
    assert.deepEqual(status.effective?.clusterDNS, ["10.96.0.10"], "old ExecStart still in force");
    ok(await node.run("systemctl daemon-reload"), "daemon-reload");
    assert.equal(ok(await node.run(show), "show"), "no\n");
    status = await restartKubelet(node);
    assert.deepEqual(status.effective?.clusterDNS, ["10.0.0.77"]);
    assert.deepEqual(status.cmdline.slice(1), extra.split(" "));

    // A new drop-in in a new directory: systemd 252 does not even flag it, and it is ignored
    // until daemon-reload too.
    const newDropIn = "/etc/systemd/system/kubelet.service.d/20-test.conf";
    node.writeFile(
      newDropIn,
      "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --cluster-dns=10.0.0.78\n",
    );
    assert.equal(ok(await node.run(show), "show"), "no\n");
    status = await restartKubelet(node);
    assert.deepEqual(status.effective?.clusterDNS, ["10.0.0.77"]);
    ok(await node.run("systemctl daemon-reload"), "daemon-reload");
    status = await restartKubelet(node);
    assert.deepEqual(status.effective?.clusterDNS, ["10.0.0.78"]);

    node.writeFile(dropIn, original);
    ok(await node.run(`rm ${newDropIn} && systemctl daemon-reload`), "cleanup");
    status = await restartKubelet(node);
    assert.deepEqual(status.effective?.clusterDNS, ["10.96.0.10"]);
  });

  it("rejects what kubelet rejects: unknown flags, bad clusterDNS, wrong kind", async () => {
    node.writeFile("/tmp/wrong-kind.yaml", kubeletConfig(["10.0.0.1"], "KubeProxyConfiguration"));
    node.writeFile("/tmp/bad-dns.yaml", kubeletConfig(["not-an-ip"]));
    for (const [args, message] of [
      ["--no-such-flag", /unknown flag: --no-such-flag/],
      ["--cluster-dns=10.0.0.1,nope", /"nope" specified for ClusterDNS/],
      ["--config /tmp/wrong-kind.yaml", /no kind "KubeProxyConfiguration"/],
      ["--config=/tmp/bad-dns.yaml", /"not-an-ip" specified for ClusterDNS/],
      ["--config-dir=/nonexistent", /kubelet dropin directory/],
      ["--cluster-dns", /flag needs an argument/],
    ] as const) {
      const result = await node.run(`exec /usr/bin/kubelet ${args}`);
      assert.equal(result.code, 1, `${args}: ${result.stderr}`);
      assert.match(result.stderr, message, args);
    }
  });

  it("serves /healthz and /configz", async () => {
    assert.deepEqual(await httpGet(node, 10248, "/healthz"), [200, "ok"]);
    const configz = await httpGet(node, 10248, "/configz");
    assert.equal(configz?.[0], 200);
    const config = JSON.parse(configz![1]) as { kubeletconfig: Record<string, unknown> };
    assert.deepEqual(config.kubeletconfig.clusterDNS, ["10.96.0.10"]);
    assert.equal(config.kubeletconfig.cgroupDriver, "systemd");
  });

  it(
    "fails to start with the fail-start knob, and recovers",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const before = await node.kubelet();
      node.writeFile(`${KNOBS}/fail-start`, "");
      ok(await node.run(`systemctl restart ${UNIT}`), "restart");
      await node.waitForUnit(UNIT, "auto-restart", 10_000);
      const failed = await node.kubelet();
      assert.equal(failed.active, "activating");
      assert.equal(failed.starts, before.starts);
      ok(await node.run(`rm ${KNOBS}/fail-start`), "rm");
      assert.equal((await restartKubelet(node)).active, "active");
    },
  );

  it("crashes after the crash-after knob's seconds", { timeout: TEST_TIMEOUT_MS }, async () => {
    node.writeFile(`${KNOBS}/crash-after`, "3\n");
    const started = await restartKubelet(node);
    assert.equal(started.active, "active");
    await node.waitForUnit(UNIT, "auto-restart", 15_000);
    const journal = await node.run(`journalctl --no-pager -n 5 -u ${UNIT}`);
    assert.match(journal.stdout, /crash-after knob/);
    ok(await node.run(`rm ${KNOBS}/crash-after`), "rm");
    await restartKubelet(node);
  });

  it("answers /healthz 503 for healthz-delay seconds", { timeout: TEST_TIMEOUT_MS }, async () => {
    node.writeFile(`${KNOBS}/healthz-delay`, "5\n");
    const status = await restartKubelet(node);
    assert.equal((await httpGet(node, 10248, "/healthz"))?.[0], 503);
    let healthz = await httpGet(node, 10248, "/healthz");
    for (let i = 0; i < 100 && healthz?.[0] !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      healthz = await httpGet(node, 10248, "/healthz");
    }
    assert.deepEqual(healthz, [200, "ok"]);
    const healthySince = Date.now() - Date.parse(status.effective!.startedAt);
    assert.ok(healthySince >= 4500, `healthy ${healthySince} ms after the start`);
    ok(await node.run(`rm ${KNOBS}/healthz-delay`), "rm");
  });

  it("starts slowly with the start-delay knob", { timeout: TEST_TIMEOUT_MS }, async () => {
    const before = await node.kubelet();
    node.writeFile(`${KNOBS}/start-delay`, "5\n");
    const restarted = Date.now();
    ok(await node.run(`systemctl restart ${UNIT}`), "restart");
    const early = await node.kubelet();
    assert.equal(early.active, "active", "systemd sees a running process at once");
    assert.notEqual(early.effective?.pid, early.mainPid, "but it has not started yet");
    assert.equal(early.starts, before.starts);
    assert.equal(await httpGet(node, 10248, "/healthz"), null, "nothing listens yet");
    let now = early;
    for (let i = 0; i < 100 && now.effective?.pid !== now.mainPid; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      now = await node.kubelet();
    }
    ok(await node.run(`rm ${KNOBS}/start-delay`), "rm");
    assert.equal(now.effective?.pid, now.mainPid, "the slow kubelet never started");
    assert.equal(now.starts, before.starts + 1);
    const took = Date.parse(now.effective!.startedAt) - restarted;
    assert.ok(took >= 4500, `started ${took} ms after the restart`);
    assert.deepEqual(await httpGet(node, 10248, "/healthz"), [200, "ok"]);
  });

  it(
    "runs a test DNS server that answers, stays silent or sends garbage",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const dns = await node.startDnsServer(LOCAL_DNS_IP, "dns");
      const found = parseReply(
        await dnsOverTcp(node, LOCAL_DNS_IP, 0x1234, "kubernetes.default.svc.cluster.local"),
      );
      assert.deepEqual(found, {
        id: 0x1234,
        qr: true,
        rcode: 0,
        ancount: 1,
        lastFour: "10.96.0.1",
      });
      const missing = parseReply(await dnsOverTcp(node, LOCAL_DNS_IP, 0x2345, "example.com"));
      assert.deepEqual(
        { ...missing, lastFour: undefined },
        { id: 0x2345, qr: true, rcode: 3, ancount: 0, lastFour: undefined },
      );
      const udp = parseReply(await dnsOverUdp(node, LOCAL_DNS_IP, 0x3456, "a.b.cluster.local"));
      assert.deepEqual(udp, { id: 0x3456, qr: true, rcode: 0, ancount: 1, lastFour: "10.96.0.1" });
      assert.equal(ok(await node.run(`systemctl is-active ${dns.unit}`), "unit"), "active\n");
      await dns.stop();
      assert.equal(await rawTcp(node, LOCAL_DNS_IP), null, "stopped: connection refused");

      const silent = await node.startDnsServer(LOCAL_DNS_IP, "silent");
      assert.deepEqual(await rawTcp(node, LOCAL_DNS_IP), Buffer.alloc(0), "accepts, says nothing");
      await silent.stop();

      const garbage = await node.startDnsServer(LOCAL_DNS_IP, "garbage");
      const reply = await rawTcp(node, LOCAL_DNS_IP);
      assert.ok(reply !== null && reply.length > 0);
      assert.notEqual(reply.readUInt16BE(0), reply.length - 2, "not a length-prefixed DNS message");
      await garbage.stop();
      await garbage.stop();
    },
  );

  it(
    "stop() leaves no process, namespace, mount, cgroup or forwarder behind",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const pids = node.hostPids();
      assert.ok(pids.includes(node.leaderPid));
      const namespaces = new Set(
        namespacesOf(node.leaderPid).filter((ns) => !namespacesOf(process.pid).includes(ns)),
      );
      assert.ok(namespaces.size >= 5, [...namespaces].join(" "));
      const { dir, name } = node;
      assert.ok(cgroupsNamed(name).length > 0);
      const started = Date.now();
      await node.stop();
      console.log(`# systemd node stopped in ${Date.now() - started} ms`);
      assert.deepEqual(
        pids.filter((pid) => fs.existsSync(`/proc/${pid}`)),
        [],
      );
      assert.deepEqual(pidsUsing(namespaces), []);
      assert.ok(!fs.readFileSync("/proc/self/mountinfo", "utf8").includes(dir), "a mount is left");
      assert.deepEqual(cgroupsNamed(name), []);
      assert.ok(!fs.existsSync(dir));
      assert.equal(await listening(forwardPort), false, "the forwarder is gone");
      await node.stop(); // idempotent
      await assert.rejects(node.run("true"), /not running/);
    },
  );
});

describe("systemd test node layouts", systemdNodeTestOptions(), () => {
  for (const [name, layout] of Object.entries(KUBELET_LAYOUTS)) {
    it(`${name}: ${layout.description}`, { timeout: BOOT_TEST_TIMEOUT_MS }, async () => {
      const node = await startSystemdNode({ files: layout.files, enable: layout.enable });
      try {
        const status = await node.kubelet();
        assert.equal(status.active, "active");
        assert.deepEqual(status.effective?.clusterDNS, layout.clusterDNS);
        assert.equal(status.effective?.sources.clusterDNS, layout.clusterDNSSource);
        assert.equal(status.starts, 1);
      } finally {
        await node.stop();
      }
    });
  }

  it(
    "boots two nodes at once, each in its own cgroup, without kubelet by default",
    { timeout: BOOT_TEST_TIMEOUT_MS },
    async () => {
      const nodes = await Promise.all([
        startSystemdNode({ hostname: "twin-a", localDnsIp: null }),
        startSystemdNode({ hostname: "twin-b", localDnsIp: "fd00::10" }),
      ]);
      try {
        const [a, b] = nodes as [SystemdNode, SystemdNode];
        assert.equal(ok(await a.ssh("hostname"), "a"), "twin-a\n");
        assert.equal(ok(await b.ssh("hostname"), "b"), "twin-b\n");
        assert.doesNotMatch(ok(await a.run("ip -o addr show dev lo"), "a"), /169\.254|fd00/);
        assert.match(ok(await b.run("ip -o addr show dev lo"), "b"), /fd00::10\/128/);
        assert.equal((await a.kubelet()).active, "inactive");
        assert.notDeepEqual(cgroupsNamed(a.name), cgroupsNamed(b.name));
        // Restarting a unit in one node leaves the other's alone.
        const sshdB = ok(await b.run("systemctl show -p MainPID --value ssh"), "b");
        ok(await a.run("systemctl restart ssh"), "a");
        assert.equal(ok(await b.run("systemctl show -p MainPID --value ssh"), "b"), sshdB);
      } finally {
        await Promise.all(nodes.map((n) => n.stop()));
      }
    },
  );

  it(
    "goes away with a test process that is SIGKILLed",
    { timeout: BOOT_TEST_TIMEOUT_MS },
    async () => {
      const port = await freePort();
      const harness = path.join(__dirname, "support", "systemdNode.ts");
      const script = `require(${JSON.stringify(harness)})
      .startSystemdNode({ sshForward: { address: "127.0.0.1", port: ${port} } })
      .then((n) => {
        console.log(JSON.stringify({ name: n.name, dir: n.dir, pids: n.hostPids() }));
        setInterval(() => {}, 1000);
      });`;
      const child = spawn(process.execPath, ["--import", "tsx", "-e", script], {
        cwd: path.join(__dirname, ".."),
        stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes("\n")) {
              resolve(out.split("\n")[0]!);
            }
          });
          child.once("exit", (code) => reject(new Error(`child exited (${code}): ${out}`)));
        });
        const started = JSON.parse(line) as { name: string; dir: string; pids: number[] };
        assert.ok(await listening(port));
        child.kill("SIGKILL");
        const gone = await eventually(
          () =>
            started.pids.every((pid) => !fs.existsSync(`/proc/${pid}`)) &&
            cgroupsNamed(started.name).length === 0 &&
            !fs.existsSync(started.dir),
          60_000,
        );
        assert.ok(gone, `left: ${started.pids.filter((pid) => fs.existsSync(`/proc/${pid}`))}`);
        assert.equal(await listening(port), false);
      } finally {
        child.kill("SIGKILL");
      }
    },
  );
});
