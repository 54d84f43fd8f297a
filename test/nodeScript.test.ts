// The node program for real: real bash (and real OpenSSH) on throwaway test nodes
// (test/support/testNode.ts), against kubelet files in every supported format. The readiness
// check connects to the local DNS address; that only ever happens inside a test node's own
// network namespace (the node's lo, or a listener started in that namespace below).

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  renderNodeProgram,
  renderNodeScript,
  type NodeAction,
  type NodeScriptParams,
} from "../components/nodeScript";
import {
  nodeTestOptions,
  startTestNode,
  type ExecResult,
  type TestNode,
  type TestNodeOptions,
} from "./support/testNode";

const TKE = "/etc/kubernetes/kubelet";
const DEFAULT = "/etc/default/kubelet";
const SYSCONFIG = "/etc/sysconfig/kubelet";
const KUBEADM = "/var/lib/kubelet/config.yaml";
const STATE = "/var/lib/nodelocaldns";
const LOCAL = "169.254.20.10";
const KUBE_DNS = "10.96.0.10";
const PREFIX = "nodelocaldns[node-1]: ";

const BASE: NodeScriptParams = {
  nodeName: "node-1",
  localDnsIp: LOCAL,
  clusterDnsIp: KUBE_DNS,
  kubelet: { format: "auto" },
  stateDir: STATE,
  readyTimeoutSeconds: 2,
  kubeletTimeoutSeconds: 2,
};

function fixture(name: string): string {
  return fs.readFileSync(path.join(__dirname, "fixtures", "kubelet", name), "utf8");
}
const TKE_FILE = fixture("tke-kubelet");
const DEFAULT_FILE = fixture("default-kubelet");
const KUBEADM_FILE = fixture("kubeadm-config.yaml");
const KUBEADM_TWO_FILE = fixture("kubeadm-config-two-dns.yaml");
/** An RHEL-style /etc/sysconfig/kubelet: indented, `export`, single quotes, two IPs. */
const SYSCONFIG_FILE =
  "# Managed by hand.\n  export KUBELET_EXTRA_ARGS='--node-labels=role=worker --cluster-dns=10.96.0.10,10.96.0.11'\n";

/** `text` with `from` (which must occur exactly once) replaced by `to`. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  assert.ok(at >= 0 && text.indexOf(from, at + 1) < 0, `expected exactly one ${from}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

const TKE_LINE = `CLUSTER_DNS="--cluster-dns=${KUBE_DNS}"`;
const TKE_SWITCHED = replaceOnce(TKE_FILE, TKE_LINE, `CLUSTER_DNS="--cluster-dns=${LOCAL}"`);
const KUBEADM_SWITCHED = replaceOnce(
  KUBEADM_FILE,
  `clusterDNS:\n- ${KUBE_DNS}\n`,
  `clusterDNS:\n- ${LOCAL}\n`,
);

type Transport = "run" | "ssh";

/** Scenarios mostly wait (kubelet polls, timeouts): a few nodes at a time. */
const PARALLEL = { concurrency: 3 };

interface Node {
  node: TestNode;
  /** Runs the program for `action` as the Command would, with BASE overridden by `over`. */
  exec(action: NodeAction, over?: Partial<NodeScriptParams>): Promise<ExecResult>;
  text(file: string): string;
  /** Names in the state dir (including dot files), or undefined when it does not exist. */
  state(): Promise<string[] | undefined>;
  /** Names in a directory, including dot files. */
  ls(dir: string): Promise<string[]>;
}

async function onNode(
  transport: Transport,
  opts: TestNodeOptions,
  body: (n: Node) => Promise<void>,
): Promise<void> {
  const node = await startTestNode({ ssh: transport === "ssh", ...opts });
  const ls = async (dir: string): Promise<string[]> => {
    const r = await node.run(`cd ${dir} && ls -A`);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split("\n").filter((name) => name !== "");
  };
  try {
    await body({
      node,
      async exec(action, over = {}) {
        const program = renderNodeProgram({ ...BASE, ...over });
        const command = `bash -s ${action}`;
        const result =
          transport === "ssh" ? await node.ssh(command, program) : await node.run(command, program);
        assertPrefixed(result);
        return result;
      },
      text: (file) => node.readFile(file).toString("utf8"),
      state: async () => (node.exists(STATE) ? ls(STATE) : undefined),
      ls,
    });
  } finally {
    await node.stop();
  }
}

/** Every line the program prints, on stdout and stderr, carries the node's prefix. */
function assertPrefixed(result: ExecResult): void {
  for (const stream of [result.stdout, result.stderr]) {
    for (const line of stream.split("\n").filter((l) => l !== "")) {
      assert.ok(line.startsWith(PREFIX), `line without prefix: ${JSON.stringify(line)}`);
    }
  }
}

function assertOk(result: ExecResult): void {
  assert.equal(result.code, 0, `exit ${result.code}\n${result.stdout}${result.stderr}`);
}

function assertFailed(result: ExecResult, message: RegExp): void {
  assert.notEqual(result.code, 0, `expected a failure\n${result.stdout}${result.stderr}`);
  assert.match(result.stderr, message);
}

const STATE_FILES = ["applied", "applied-dns", "original", "original-dns", "path"];

/** The state a successful switch leaves: what was there, what we wrote. */
async function assertSwitchedState(
  n: Node,
  file: string,
  original: string,
  originalDns: string,
  applied: string,
  appliedDns = LOCAL,
): Promise<void> {
  assert.deepEqual(await n.state(), STATE_FILES);
  assert.equal(n.node.stat(STATE).mode & 0o777, 0o700);
  assert.equal(n.text(`${STATE}/path`), file);
  assert.equal(n.text(`${STATE}/original`), original);
  assert.equal(n.text(`${STATE}/original-dns`), originalDns);
  assert.equal(n.text(`${STATE}/applied`), applied);
  assert.equal(n.text(`${STATE}/applied-dns`), appliedDns);
}

/** No temp file of ours (".<name>.XXXXXX") left next to `file`. */
async function assertNoTempFile(n: Node, file: string): Promise<void> {
  const temp = `.${path.basename(file)}.`;
  const left = (await n.ls(path.dirname(file))).filter((name) => name.startsWith(temp));
  assert.deepEqual(left, [], `temp files next to ${file}`);
}

/** Nothing changed: file as given, no state, no restart, no temp file next to it. */
async function assertUntouched(n: Node, files: Record<string, string>): Promise<void> {
  for (const [file, content] of Object.entries(files)) {
    assert.equal(n.text(file), content, `${file} changed`);
    await assertNoTempFile(n, file);
  }
  assert.equal(await n.state(), undefined, "state was written");
  assert.equal(n.node.restarts(), 0, "kubelet was restarted");
}

/**
 * A second cache address on a node: put on the node's lo, with a TCP listener on port 53 that
 * runs in the node's network and pid namespaces (entered with nsenter, so stop() ends it too).
 */
async function addCacheAddress(node: TestNode, ip: string): Promise<ChildProcess> {
  const add = await node.run(`ip addr add ${ip}/32 dev lo`);
  assert.equal(add.code, 0, add.stderr);
  const listener = spawn(
    "nsenter",
    [
      "-t",
      String(node.initPid),
      "-n",
      "-p",
      "--",
      process.execPath,
      "-e",
      `require("net").createServer((s) => s.end()).listen({ host: ${JSON.stringify(ip)}, port: 53 })`,
    ],
    { stdio: "ignore" },
  );
  for (let i = 0; i < 100; i++) {
    const probe = await node.run(`timeout 1 bash -c 'exec 3<>/dev/tcp/${ip}/53'`);
    if (probe.code === 0) {
      return listener;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  listener.kill("SIGKILL");
  throw new Error(`no listener on ${ip}:53 in the node`);
}

/** Waits until the program in the node sleeps between two polls (`sleep 1`), e.g. for the cache. */
async function waitForPoll(node: TestNode): Promise<void> {
  const probe =
    "for p in /proc/[0-9]*; do [[ $(tr '\\0' ' ' <$p/cmdline 2>/dev/null) == 'sleep 1 ' ]] && exit 0; done; exit 1";
  for (let i = 0; i < 200; i++) {
    if ((await node.run(probe)).code === 0) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the program never polled");
}

function scenarios(transport: Transport): void {
  const on = (opts: TestNodeOptions, body: (n: Node) => Promise<void>) =>
    onNode(transport, opts, body);

  describe("switch", PARALLEL, () => {
    it("replaces only the TKE value, keeps owner and mode, restarts once, records state", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const chown = await n.node.run(`chown 1234:2345 ${TKE} && chmod 640 ${TKE}`);
        assert.equal(chown.code, 0, chown.stderr);
        const r = await n.exec("create");
        assertOk(r);
        assert.equal(n.text(TKE), TKE_SWITCHED);
        assert.deepEqual(n.node.stat(TKE), { mode: 0o100640, uid: 1234, gid: 2345 });
        assert.equal(n.node.restarts(), 1);
        assert.equal(n.node.kubeletState(), "active");
        await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
        await assertNoTempFile(n, TKE);
        assert.match(
          r.stdout,
          /found cluster DNS 10\.96\.0\.10 in \/etc\/kubernetes\/kubelet \(env-file\)/,
        );
        assert.match(r.stdout, /cluster DNS 10\.96\.0\.10 -> 169\.254\.20\.10/);
        assert.match(r.stdout, /kubelet restarted, active/);
        assert.equal(r.stderr, "");
      }));

    it("replaces only the list inside KUBELET_EXTRA_ARGS of /etc/default/kubelet", () =>
      on({ files: { [DEFAULT]: DEFAULT_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        const switched = replaceOnce(
          DEFAULT_FILE,
          `--cluster-dns=${KUBE_DNS} `,
          `--cluster-dns=${LOCAL} `,
        );
        assert.equal(n.text(DEFAULT), switched);
        assert.equal(n.node.restarts(), 1);
        await assertSwitchedState(n, DEFAULT, DEFAULT_FILE, KUBE_DNS, switched);
      }));

    it("replaces the clusterDNS block list of a kubeadm KubeletConfiguration", () =>
      on({ files: { [KUBEADM]: KUBEADM_FILE } }, async (n) => {
        const r = await n.exec("create");
        assertOk(r);
        assert.match(r.stdout, /\(config-file\)/);
        assert.equal(n.text(KUBEADM), KUBEADM_SWITCHED);
        assert.equal(n.node.restarts(), 1);
        await assertSwitchedState(n, KUBEADM, KUBEADM_FILE, KUBE_DNS, KUBEADM_SWITCHED);
      }));

    it("replaces a two-item block list with one item written like the first", () =>
      on({ files: { [KUBEADM]: KUBEADM_TWO_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        const switched = replaceOnce(
          KUBEADM_TWO_FILE,
          `  - "10.96.0.10"\n  - 10.96.0.11 # second Service\n`,
          `  - "${LOCAL}"\n`,
        );
        assert.equal(n.text(KUBEADM), switched);
        await assertSwitchedState(n, KUBEADM, KUBEADM_TWO_FILE, "10.96.0.10,10.96.0.11", switched);
        // Back to the original bytes, both items.
        assertOk(await n.exec("delete"));
        assert.equal(n.text(KUBEADM), KUBEADM_TWO_FILE);
      }));

    it("replaces a flow list and puts it back", () => {
      const flow = replaceOnce(
        KUBEADM_FILE,
        `clusterDNS:\n- ${KUBE_DNS}\n`,
        `clusterDNS: ["${KUBE_DNS}"]  # kube-dns\n`,
      );
      return on({ files: { [KUBEADM]: flow } }, async (n) => {
        assertOk(await n.exec("create", { kubelet: { format: "config-file" } }));
        assert.equal(n.text(KUBEADM), replaceOnce(flow, `["${KUBE_DNS}"]`, `[${LOCAL}]`));
        assertOk(await n.exec("delete", { kubelet: { format: "config-file" } }));
        assert.equal(n.text(KUBEADM), flow);
        assert.equal(n.node.restarts(), 2);
      });
    });

    it("switches to an IPv6 cache address", () =>
      on({ localDnsIp: "fd00:5::10", files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create", { localDnsIp: "fd00:5::10" }));
        assert.equal(
          n.text(TKE),
          replaceOnce(TKE_FILE, TKE_LINE, `CLUSTER_DNS="--cluster-dns=fd00:5::10"`),
        );
        assertOk(await n.exec("delete", { localDnsIp: "fd00:5::10" }));
        assert.equal(n.text(TKE), TKE_FILE);
      }));

    it("is idempotent: a second create or an update changes nothing and restarts nothing", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        const stateBefore = n.text(`${STATE}/original`);
        for (const action of ["create", "update"] as const) {
          const r = await n.exec(action);
          assertOk(r);
          assert.match(r.stdout, new RegExp(`^${PREFIX.replace(/[[\]]/g, "\\$&")}${action}`));
          assert.match(r.stdout, /already switched; nothing to do, kubelet not restarted/);
        }
        assert.equal(n.text(TKE), TKE_SWITCHED);
        assert.equal(n.node.restarts(), 1);
        assert.equal(n.text(`${STATE}/original`), stateBefore);
      }));

    it("preserves CRLF line endings and a missing final newline (env-file and config-file)", () => {
      const crlf = (text: string) => text.replace(/\n/g, "\r\n").replace(/\r\n$/, "");
      const tke = crlf(TKE_FILE);
      const kubeadm = crlf(KUBEADM_FILE);
      return on({ files: { [TKE]: tke, [KUBEADM]: kubeadm } }, async (n) => {
        const env = { kubelet: { format: "env-file" as const, path: TKE } };
        const conf = { kubelet: { format: "auto" as const, path: KUBEADM } };
        assertOk(await n.exec("create", env));
        assert.equal(n.text(TKE), crlf(TKE_SWITCHED));
        assertOk(await n.exec("delete", env));
        assert.equal(n.text(TKE), tke);
        assertOk(await n.exec("create", conf));
        assert.equal(n.text(KUBEADM), crlf(KUBEADM_SWITCHED));
        assertOk(await n.exec("delete", conf));
        assert.equal(n.text(KUBEADM), kubeadm);
        assert.equal(n.node.restarts(), 4);
      });
    });

    it("auto picks the one candidate that carries a setting", () => {
      const commentedOnly = TKE_FILE.replace(`${TKE_LINE}\n`, "");
      const noClusterDns = KUBEADM_FILE.replace(`clusterDNS:\n- ${KUBE_DNS}\n`, "");
      const files = { [TKE]: commentedOnly, [DEFAULT]: DEFAULT_FILE, [KUBEADM]: noClusterDns };
      return on({ files }, async (n) => {
        const r = await n.exec("create");
        assertOk(r);
        assert.match(r.stdout, /in \/etc\/default\/kubelet \(env-file\)/);
        assert.equal(n.text(TKE), commentedOnly);
        assert.equal(n.text(KUBEADM), noClusterDns);
        assert.notEqual(n.text(DEFAULT), DEFAULT_FILE);
        assert.equal(n.text(`${STATE}/path`), DEFAULT);
      });
    });

    it("auto picks /etc/sysconfig/kubelet and an explicit path picks its format by content", () =>
      on(
        { files: { [SYSCONFIG]: SYSCONFIG_FILE, "/etc/kubelet.d/config.yaml": KUBEADM_FILE } },
        async (n) => {
          const r = await n.exec("create");
          assertOk(r);
          assert.match(
            r.stdout,
            /found cluster DNS 10\.96\.0\.10,10\.96\.0\.11 in \/etc\/sysconfig\/kubelet \(env-file\)/,
          );
          const switched = replaceOnce(
            SYSCONFIG_FILE,
            "--cluster-dns=10.96.0.10,10.96.0.11'",
            `--cluster-dns=${LOCAL}'`,
          );
          assert.equal(n.text(SYSCONFIG), switched);
          await assertSwitchedState(
            n,
            SYSCONFIG,
            SYSCONFIG_FILE,
            "10.96.0.10,10.96.0.11",
            switched,
          );
          assertOk(await n.exec("delete"));
          assert.equal(n.text(SYSCONFIG), SYSCONFIG_FILE);
          const other = {
            kubelet: { format: "auto" as const, path: "/etc/kubelet.d/config.yaml" },
          };
          const r2 = await n.exec("create", other);
          assertOk(r2);
          assert.match(r2.stdout, /in \/etc\/kubelet\.d\/config\.yaml \(config-file\)/);
          assert.equal(n.text("/etc/kubelet.d/config.yaml"), KUBEADM_SWITCHED);
        },
      ));
  });

  describe("revert", PARALLEL, () => {
    it("puts the original bytes back, restarts, removes the state dir", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        await n.node.run(`chown 1234:2345 ${TKE} && chmod 600 ${TKE}`);
        assertOk(await n.exec("create"));
        const r = await n.exec("delete");
        assertOk(r);
        assert.equal(n.text(TKE), TKE_FILE);
        assert.deepEqual(n.node.stat(TKE), { mode: 0o100600, uid: 1234, gid: 2345 });
        assert.equal(n.node.restarts(), 2);
        assert.equal(await n.state(), undefined);
        await assertNoTempFile(n, TKE);
        assert.match(r.stdout, /as we wrote it: restoring the original bytes/);
        assert.match(r.stdout, /cluster DNS 169\.254\.20\.10 -> 10\.96\.0\.10/);
        assert.match(r.stdout, /kubelet restarted, active/);
      }));

    it("after an operator's edit elsewhere, sets back only the value and keeps the edit", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        n.node.writeFile(TKE, replaceOnce(TKE_SWITCHED, `V="--v=2"`, `V="--v=4"`));
        const r = await n.exec("delete");
        assertOk(r);
        assert.equal(n.text(TKE), replaceOnce(TKE_FILE, `V="--v=2"`, `V="--v=4"`));
        assert.match(r.stdout, /edited since the switch/);
        assert.equal(n.node.restarts(), 2);
        assert.equal(await n.state(), undefined);
      }));

    it("writes both original items back into an edited two-item block list", () =>
      on({ files: { [KUBEADM]: KUBEADM_TWO_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        const edited = replaceOnce(n.text(KUBEADM), "healthzPort: 10248", "healthzPort: 10249");
        n.node.writeFile(KUBEADM, edited);
        assertOk(await n.exec("delete"));
        assert.equal(
          n.text(KUBEADM),
          replaceOnce(
            replaceOnce(KUBEADM_TWO_FILE, "healthzPort: 10248", "healthzPort: 10249"),
            `  - "10.96.0.10"\n  - 10.96.0.11 # second Service\n`,
            `  - "10.96.0.10"\n  - "10.96.0.11"\n`,
          ),
        );
      }));

    it("on a never-switched node does nothing", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const r = await n.exec("delete");
        assertOk(r);
        assert.match(
          r.stdout,
          /no state in \/var\/lib\/nodelocaldns: nothing to revert, kubelet not restarted/,
        );
        await assertUntouched(n, { [TKE]: TKE_FILE });
      }));

    it("leaves a value the operator changed alone, without a restart", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        const theirs = replaceOnce(TKE_FILE, TKE_LINE, `CLUSTER_DNS="--cluster-dns=10.96.0.99"`);
        n.node.writeFile(TKE, theirs);
        const r = await n.exec("delete");
        assertOk(r);
        assert.match(r.stdout, /changed to 10\.96\.0\.99 by someone else/);
        assert.equal(n.text(TKE), theirs);
        assert.equal(n.node.restarts(), 1);
        assert.equal(await n.state(), undefined);
      }));

    it("fails, changing nothing, when the switched file is gone", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        await n.node.run(`rm ${TKE}`);
        assertFailed(
          await n.exec("delete"),
          /\/etc\/kubernetes\/kubelet: missing.*nothing changed/,
        );
        assert.deepEqual(await n.state(), STATE_FILES);
        assert.equal(n.node.restarts(), 1);
      }));
  });

  describe("over several runs", PARALLEL, () => {
    it("follows a change of localDnsIp: A, then B, then back to the original", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const B = "169.254.25.10";
        const listener = await addCacheAddress(n.node, B);
        try {
          assertOk(await n.exec("create"));
          const r = await n.exec("update", { localDnsIp: B });
          assertOk(r);
          assert.match(r.stdout, /switched to 169\.254\.20\.10 earlier: keeping the original/);
          const atB = replaceOnce(TKE_FILE, TKE_LINE, `CLUSTER_DNS="--cluster-dns=${B}"`);
          assert.equal(n.text(TKE), atB);
          await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, atB, B);
          assertOk(await n.exec("delete", { localDnsIp: B }));
          assert.equal(n.text(TKE), TKE_FILE);
          assert.equal(n.node.restarts(), 3);
          assert.equal(await n.state(), undefined);
        } finally {
          listener.kill("SIGKILL");
        }
      }));

    it("records the original again when the file was reset since the switch", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        // e.g. a node reinstall rewrote the file, with another change.
        const reset = replaceOnce(TKE_FILE, `MAX_PODS="--max-pods=61"`, `MAX_PODS="--max-pods=64"`);
        n.node.writeFile(TKE, reset);
        assertOk(await n.exec("update"));
        await assertSwitchedState(
          n,
          TKE,
          reset,
          KUBE_DNS,
          replaceOnce(reset, TKE_LINE, `CLUSTER_DNS="--cluster-dns=${LOCAL}"`),
        );
        assertOk(await n.exec("delete"));
        assert.equal(n.text(TKE), reset);
      }));

    it("adopts a node switched by hand, without a restart, and reverts it to kube-dns", () =>
      on({ files: { [TKE]: TKE_SWITCHED } }, async (n) => {
        const r = await n.exec("create");
        assertOk(r);
        assert.match(
          r.stdout,
          /switched by hand; adopted \(delete sets 10\.96\.0\.10\), kubelet not restarted/,
        );
        assert.equal(n.text(TKE), TKE_SWITCHED);
        assert.equal(n.node.restarts(), 0);
        await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
        assertOk(await n.exec("delete"));
        assert.equal(n.text(TKE), TKE_FILE);
        assert.equal(n.node.restarts(), 1);
      }));
  });

  describe("interrupted or failing in the middle", PARALLEL, () => {
    it("confirms a switch whose run was cut off after writing the file", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        // As if the connection dropped between the edit and the kubelet check.
        await n.node.run(`rm ${STATE}/applied ${STATE}/applied-dns`);
        const r = await n.exec("create");
        assertOk(r);
        assert.match(r.stdout, /unconfirmed switch: confirming it/);
        assert.equal(n.node.restarts(), 2);
        await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
      }));

    it("goes back to the recorded original when that confirmation fails", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        await n.node.run(`rm ${STATE}/applied ${STATE}/applied-dns`);
        n.node.setKubeletFailRestarts(1);
        assertFailed(await n.exec("create"), /did not come back/);
        assert.equal(n.text(TKE), TKE_FILE);
        assert.equal(await n.state(), undefined);
        assert.equal(n.node.restarts(), 3);
      }));

    it("records the original again when a run was cut off before writing the file", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        // State as a cut-off run leaves it: recorded, file not yet replaced.
        n.node.writeFile(`${STATE}/path`, TKE);
        n.node.writeFile(`${STATE}/original`, "stale");
        n.node.writeFile(`${STATE}/original-dns`, "10.96.0.99");
        assertOk(await n.exec("create"));
        await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
      }));

    it("puts the file back when something fails after it was replaced", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const B = "169.254.25.10";
        const listener = await addCacheAddress(n.node, B);
        try {
          assertOk(await n.exec("create"));
          // Writing the state after the restart will fail: `applied` is now a directory.
          await n.node.run(`rm ${STATE}/applied && mkdir -p ${STATE}/applied/x`);
          const r = await n.exec("update", { localDnsIp: B });
          assertFailed(r, /failed \(line \d+\): mv -fT/);
          assert.match(r.stdout, /restored \/etc\/kubernetes\/kubelet/);
          assert.equal(n.text(TKE), TKE_SWITCHED);
          assert.equal(n.node.restarts(), 3);
          assert.equal(n.node.kubeletState(), "active");
          assert.deepEqual(await n.state(), [
            "applied",
            "applied-dns",
            "original",
            "original-dns",
            "path",
          ]);
          assert.equal(n.text(`${STATE}/applied-dns`), LOCAL);
        } finally {
          listener.kill("SIGKILL");
        }
      }));

    it("undoes only once when a state file cannot be written after the restart", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        // Room for five files: path, original, original-dns, new and pre fit; the temp file for
        // `applied` (made in a command substitution) does not.
        const full = await n.node.run(
          `mkdir -p ${STATE} && mount -t tmpfs -o nr_inodes=6,mode=700 tmpfs ${STATE}`,
        );
        assert.equal(full.code, 0, full.stderr);
        const r = await n.exec("create");
        assertFailed(r, /failed \(line \d+\): T=\$\(mktemp/);
        assert.equal(r.stderr.match(/failed \(line/g)?.length, 1, r.stderr);
        assert.match(r.stdout, /restored \/etc\/kubernetes\/kubelet/);
        assert.doesNotMatch(r.stdout, /cannot restore/);
        assert.equal(n.text(TKE), TKE_FILE);
        assert.equal(n.node.restarts(), 2);
        assert.equal(n.node.kubeletState(), "active");
        assert.deepEqual(await n.state(), []);
        await assertNoTempFile(n, TKE);
      }));

    it("removes the state it recorded when the file cannot be replaced", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const ro = await n.node.run(
          "mount --bind /etc/kubernetes /etc/kubernetes && mount -o remount,bind,ro /etc/kubernetes",
        );
        assert.equal(ro.code, 0, ro.stderr);
        const r = await n.exec("create");
        assertFailed(r, /failed \(line \d+\): /);
        await assertUntouched(n, { [TKE]: TKE_FILE });
      }));
  });

  describe("refuses, changing nothing", PARALLEL, () => {
    it("when no candidate file exists, naming all four", () =>
      on({}, async (n) => {
        const r = await n.exec("create");
        assertFailed(
          r,
          /no cluster DNS setting in: \/etc\/kubernetes\/kubelet \/etc\/default\/kubelet \/etc\/sysconfig\/kubelet \/var\/lib\/kubelet\/config\.yaml; nothing changed/,
        );
        await assertUntouched(n, {});
      }));

    it("when the configured file is missing", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const r = await n.exec("create", {
          kubelet: { format: "env-file", path: "/etc/kubelet.env" },
        });
        assertFailed(r, /\/etc\/kubelet\.env: missing, unreadable or a symlink; nothing changed/);
        await assertUntouched(n, { [TKE]: TKE_FILE });
      }));

    it("when the file carries no setting (a commented one does not count)", () => {
      const commentedOnly = TKE_FILE.replace(`${TKE_LINE}\n`, "");
      return on({ files: { [TKE]: commentedOnly } }, async (n) => {
        assertFailed(await n.exec("create"), /no cluster DNS setting in:/);
        const explicit = { kubelet: { format: "env-file" as const, path: TKE } };
        assertFailed(
          await n.exec("create", explicit),
          /\/etc\/kubernetes\/kubelet \(env-file\): no cluster DNS setting; nothing changed/,
        );
        await assertUntouched(n, { [TKE]: commentedOnly });
      });
    });

    it("when the setting has a form it does not parse", () => {
      const odd = replaceOnce(TKE_FILE, TKE_LINE, `CLUSTER_DNS="--cluster-dns=$DNS"`);
      const yaml = replaceOnce(KUBEADM_FILE, `- ${KUBE_DNS}\n`, `- \${DNS}\n`);
      return on({ files: { [TKE]: odd, [KUBEADM]: yaml } }, async (n) => {
        assertFailed(
          await n.exec("create"),
          /kubelet \(env-file\): unparsable cluster DNS setting/,
        );
        const conf = { kubelet: { format: "config-file" as const } };
        assertFailed(
          await n.exec("create", conf),
          /config\.yaml \(config-file\): unparsable cluster DNS setting/,
        );
        await assertUntouched(n, { [TKE]: odd, [KUBEADM]: yaml });
      });
    });

    it("when two candidates carry a setting", () =>
      on({ files: { [TKE]: TKE_FILE, [KUBEADM]: KUBEADM_FILE } }, async (n) => {
        assertFailed(
          await n.exec("create"),
          /set in more than one file: \/etc\/kubernetes\/kubelet \/var\/lib\/kubelet\/config\.yaml; set kubelet\.path and kubelet\.format/,
        );
        await assertUntouched(n, { [TKE]: TKE_FILE, [KUBEADM]: KUBEADM_FILE });
      }));

    it("when one file has two settings (two lines, or twice in one line)", () => {
      const twoLines = `${TKE_FILE}CLUSTER_DNS2="--cluster-dns=10.96.0.11"\n`;
      const twoInLine = replaceOnce(DEFAULT_FILE, "--max-pods=110", "--cluster-dns=10.96.0.11");
      const twoKeys = `${KUBEADM_FILE}clusterDNS: [10.96.0.11]\n`;
      return on(
        { files: { [TKE]: twoLines, [DEFAULT]: twoInLine, "/etc/kubelet.d/k.yaml": twoKeys } },
        async (n) => {
          for (const kubelet of [
            { format: "env-file" as const, path: TKE },
            { format: "env-file" as const, path: DEFAULT },
            { format: "auto" as const, path: "/etc/kubelet.d/k.yaml" },
          ]) {
            assertFailed(
              await n.exec("create", { kubelet }),
              /more than one cluster DNS setting; nothing changed/,
            );
          }
          await assertUntouched(n, {
            [TKE]: twoLines,
            [DEFAULT]: twoInLine,
            "/etc/kubelet.d/k.yaml": twoKeys,
          });
        },
      );
    });

    it("when the file changes while it waits for the cache", () =>
      on({ cacheListening: false, files: { [TKE]: TKE_FILE } }, async (n) => {
        const run = n.exec("create", { readyTimeoutSeconds: 30 });
        await waitForPoll(n.node);
        // e.g. config management rewrites the file meanwhile: that edit must not be undone.
        const edited = replaceOnce(
          TKE_FILE,
          `MAX_PODS="--max-pods=61"`,
          `MAX_PODS="--max-pods=64"`,
        );
        n.node.writeFile(TKE, edited);
        await n.node.setCacheListening(true);
        assertFailed(
          await run,
          /\/etc\/kubernetes\/kubelet changed while waiting for the cache; nothing changed/,
        );
        await assertUntouched(n, { [TKE]: edited });
      }));

    it("when the kubelet file is a symlink", () =>
      on({ files: { "/etc/kubelet-real/kubelet": TKE_FILE } }, async (n) => {
        await n.node.run(`mkdir -p /etc/kubernetes && ln -s /etc/kubelet-real/kubelet ${TKE}`);
        assertFailed(
          await n.exec("create"),
          /\/etc\/kubernetes\/kubelet: missing, unreadable or a symlink/,
        );
        await assertUntouched(n, { "/etc/kubelet-real/kubelet": TKE_FILE });
      }));

    it("when the state was recorded for another file than kubelet.path", () =>
      on({ files: { [TKE]: TKE_FILE, [DEFAULT]: DEFAULT_FILE } }, async (n) => {
        const tke = { kubelet: { format: "env-file" as const, path: TKE } };
        assertOk(await n.exec("create", tke));
        const r = await n.exec("update", { kubelet: { format: "env-file", path: DEFAULT } });
        assertFailed(
          r,
          /state in \/var\/lib\/nodelocaldns is for \/etc\/kubernetes\/kubelet, not kubelet\.path \/etc\/default\/kubelet/,
        );
        assert.equal(n.text(DEFAULT), DEFAULT_FILE);
        assert.equal(n.node.restarts(), 1);
      }));
  });

  describe("cache not ready", PARALLEL, () => {
    it("gives up after readyTimeoutSeconds when nothing listens on the address", () =>
      on({ cacheListening: false, files: { [TKE]: TKE_FILE } }, async (n) => {
        const started = Date.now();
        const r = await n.exec("create");
        const took = Date.now() - started;
        assertFailed(
          r,
          /cache not serving on 169\.254\.20\.10:53 after 2s \(no TCP listener on 169\.254\.20\.10:53\); kubelet left unchanged/,
        );
        assert.ok(took >= 1000 && took < 10_000, `took ${took} ms`);
        await assertUntouched(n, { [TKE]: TKE_FILE });
      }));

    it("gives up when the address is on no interface", () =>
      on({ localDnsIp: null, files: { [KUBEADM]: KUBEADM_FILE } }, async (n) => {
        assertFailed(
          await n.exec("create"),
          /\(169\.254\.20\.10 on no interface\); kubelet left unchanged/,
        );
        await assertUntouched(n, { [KUBEADM]: KUBEADM_FILE });
      }));
  });

  describe("kubelet does not come back", PARALLEL, () => {
    it("after the switch: restores the file, restarts again, leaves no state", () =>
      on({ kubeletFailRestarts: 1, files: { [TKE]: TKE_FILE } }, async (n) => {
        await n.node.run(`chmod 640 ${TKE}`);
        const r = await n.exec("create");
        assertFailed(
          r,
          /kubelet did not come back after switching cluster DNS to 169\.254\.20\.10; restored \/etc\/kubernetes\/kubelet and restarted kubelet/,
        );
        assert.equal(n.text(TKE), TKE_FILE);
        assert.equal(n.node.stat(TKE).mode & 0o777, 0o640);
        assert.equal(n.node.restarts(), 2);
        assert.equal(n.node.kubeletState(), "active");
        assert.equal(await n.state(), undefined);
        await assertNoTempFile(n, TKE);
      }));

    it("waits no longer than kubeletTimeoutSeconds for a `systemctl restart` that hangs", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        // The restart does its job, then blocks (as when a stop or start job hangs).
        const mv = await n.node.run("mv /usr/bin/systemctl /usr/bin/systemctl-stub");
        assert.equal(mv.code, 0, mv.stderr);
        n.node.writeFile(
          "/usr/bin/systemctl",
          '#!/bin/bash\n/usr/bin/systemctl-stub "$@" || exit\n[[ $1 != restart ]] || exec sleep 60\n',
          0o755,
        );
        const started = Date.now();
        const r = await n.exec("create");
        const took = Date.now() - started;
        assertOk(r);
        assert.ok(took < 20_000, `took ${took} ms`);
        assert.equal(n.text(TKE), TKE_SWITCHED);
        assert.equal(n.node.restarts(), 1);
        await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
      }));

    it("after an update to a new address: restores the previous switch and keeps its state", () =>
      on({ files: { [TKE]: TKE_FILE } }, async (n) => {
        const B = "169.254.25.10";
        const listener = await addCacheAddress(n.node, B);
        try {
          assertOk(await n.exec("create"));
          n.node.setKubeletFailRestarts(1);
          assertFailed(await n.exec("update", { localDnsIp: B }), /did not come back/);
          assert.equal(n.text(TKE), TKE_SWITCHED);
          await assertSwitchedState(n, TKE, TKE_FILE, KUBE_DNS, TKE_SWITCHED);
          assert.equal(n.node.restarts(), 3);
        } finally {
          listener.kill("SIGKILL");
        }
      }));

    it("after the revert: puts the switched file back, keeps the state; delete can be retried", () =>
      on({ files: { [KUBEADM]: KUBEADM_FILE } }, async (n) => {
        assertOk(await n.exec("create"));
        n.node.setKubeletFailRestarts(1);
        assertFailed(
          await n.exec("delete"),
          /kubelet did not come back after restoring \/var\/lib\/kubelet\/config\.yaml; put the switched file back, restarted kubelet, kept \/var\/lib\/nodelocaldns/,
        );
        assert.equal(n.text(KUBEADM), KUBEADM_SWITCHED);
        await assertSwitchedState(n, KUBEADM, KUBEADM_FILE, KUBE_DNS, KUBEADM_SWITCHED);
        assert.equal(n.node.restarts(), 3);
        assertOk(await n.exec("delete"));
        assert.equal(n.text(KUBEADM), KUBEADM_FILE);
        assert.equal(await n.state(), undefined);
      }));
  });
}

describe("node program", nodeTestOptions(), () => {
  describe("through `bash -s` in the node", () => scenarios("run"));
  describe("through `bash -s` over ssh", () => scenarios("ssh"));

  it("runs as a rendered script file and over ssh with no arguments and no environment", () =>
    onNode("ssh", { files: { [TKE]: TKE_FILE } }, async (n) => {
      n.node.writeFile("/root/create.sh", renderNodeScript(BASE, "create"), 0o700);
      n.node.writeFile("/root/delete.sh", renderNodeScript(BASE, "delete"), 0o700);
      const create = await n.node.run("env -i bash /root/create.sh");
      assertPrefixed(create);
      assertOk(create);
      assert.equal(n.text(TKE), TKE_SWITCHED);
      const again = await n.node.ssh("env -i bash -s", renderNodeScript(BASE, "create"));
      assertOk(again);
      assert.match(again.stdout, /already switched/);
      const revert = await n.node.run("env -i /root/delete.sh");
      assertPrefixed(revert);
      assertOk(revert);
      assert.equal(n.text(TKE), TKE_FILE);
      assert.equal(n.node.restarts(), 2);
      assert.equal(await n.state(), undefined);
    }));
});
