// The node program under attack and under races, on systemd test nodes over real OpenSSH: state
// that cannot be redirected (stateDir checked on the node, records re-validated, a recorded file
// only honoured if kubelet really uses it), one run at a time per machine (the node lock), and the
// state an earlier version left. Each finding here once broke the node or lost its original.
// Every DNS packet stays inside the node's own network namespace.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { renderNodeProgram } from "../components/nodeScript";
import { SUPPORTED_LAYOUTS } from "./support/kubeletLayouts";
import {
  KUBE_DNS_IP,
  LOCAL_DNS_IP,
  PARAMS,
  ProgramNode,
  ProgramNodePool,
  STATE_DIR,
} from "./support/programNode";
import { systemdNodeTestOptions } from "./support/systemdNode";

const NODES = 3;
const options = systemdNodeTestOptions();
const pool = new ProgramNodePool();
const KUBEADM = SUPPORTED_LAYOUTS[0]!;
const CONFIG = KUBEADM.source;
const ORIGINAL = KUBEADM.files[CONFIG]!;
const SWITCHED = KUBEADM.switched;
const SCENARIO = { timeout: 180_000 };

before(
  async () => {
    if (!options.skip) await pool.start(NODES, KUBEADM.files);
  },
  { timeout: 15 * 60_000 },
);
after(() => pool.stop());

function onKubeadmNode(body: (n: ProgramNode) => Promise<void>) {
  return pool.use(async (n) => {
    await n.setCache("dns");
    await n.setLayout(KUBEADM.files);
    await n.node.run("rm -rf /srv/nld /var/lib/x /var/lib/nld-link /tmp/evil");
    await body(n);
  });
}

async function assertUntouched(n: ProgramNode, starts: number) {
  assert.equal(n.text(CONFIG), ORIGINAL, "kubelet's file untouched");
  assert.equal((await n.kubelet()).starts, starts, "kubelet not restarted");
}

describe("stateDir is checked on the node", { ...options, concurrency: NODES }, () => {
  // Values the config parser already refuses; the node program must refuse them too, in case a
  // program is run by hand or rendered by an older version.
  const cases: [string, string, string, RegExp][] = [
    [
      "an existing file (once deleted the kubelet file)",
      "/var/lib/x",
      "touch /var/lib/x",
      /\/var\/lib\/x is not a directory \(regular empty file\); stateDir must name a directory; nothing changed/,
    ],
    [
      "a symlink to /etc (once chmod 700'ed /etc)",
      "/var/lib/nld-link",
      "ln -s /etc /var/lib/nld-link",
      /\/var\/lib\/nld-link is a symlink; stateDir must be a plain path; nothing changed/,
    ],
    [
      "owned by an unprivileged user (who could plant state)",
      "/srv/nld",
      "mkdir -p /srv/nld && chown ops /srv/nld",
      /\/srv\/nld is not owned by root; nothing changed/,
    ],
    [
      "under a directory others can write",
      "/srv/nld/state",
      "mkdir -p /srv/nld && chmod 777 /srv/nld",
      /\/srv\/nld is writable by group or others \(mode 777\); nothing changed/,
    ],
  ];
  for (const [what, stateDir, setup, reason] of cases) {
    it(what, SCENARIO, () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.node.run(setup)).code, 0);
        const etcMode = n.node.stat("/etc").mode;
        const { starts } = await n.kubelet();
        const r = await n.run("create", { params: { stateDir } });
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, reason);
        await assertUntouched(n, starts);
        assert.equal(n.node.stat("/etc").mode, etcMode, "/etc keeps its mode");
        assert.ok(n.node.exists("/var/lib/kubelet/config.yaml"));
      }),
    );
  }
});

describe(
  "records are re-validated and cannot redirect a revert",
  { ...options, concurrency: NODES },
  () => {
    it(
      "a record naming another file (/etc/shadow): delete refuses, both files untouched",
      SCENARIO,
      () =>
        onKubeadmNode(async (n) => {
          assert.equal((await n.run("create")).code, 0);
          const shadow = n.text("/etc/shadow");
          await n.node.run(`sed -i 's|^source=.*|source=/etc/shadow|' ${STATE_DIR}/record`);
          const r = await n.run("delete");
          assert.equal(r.code, 1, r.stdout);
          assert.match(
            r.stderr,
            /the record names \/etc\/shadow, which is not a kubelet file this program would edit/,
          );
          assert.equal(n.text("/etc/shadow"), shadow);
          assert.equal(n.text(CONFIG), SWITCHED);
        }),
    );

    it(
      "a record naming another kubelet file than the one kubelet uses: delete refuses",
      SCENARIO,
      () =>
        onKubeadmNode(async (n) => {
          n.node.writeFile("/etc/default/kubelet", 'KUBELET_EXTRA_ARGS="--max-pods=90"\n');
          assert.equal((await n.run("create")).code, 0);
          await n.node.run(
            `sed -i 's|^source=.*|source=/etc/default/kubelet|' ${STATE_DIR}/record`,
          );
          const r = await n.run("delete");
          assert.equal(r.code, 1, r.stdout);
          assert.match(
            r.stderr,
            /kubelet takes its cluster DNS from \/var\/lib\/kubelet\/config\.yaml .*, but the switch recorded \/etc\/default\/kubelet; state left as it is, revert by hand/,
          );
          assert.equal(n.text("/etc/default/kubelet"), 'KUBELET_EXTRA_ARGS="--max-pods=90"\n');
        }),
    );

    it("the saved original replaced by a symlink to /etc/shadow: delete refuses", SCENARIO, () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.run("create")).code, 0);
        await n.node.run(`ln -sf /etc/shadow ${STATE_DIR}/original && cp ${CONFIG} /tmp/evil`);
        const r = await n.run("delete");
        assert.equal(r.code, 1, r.stdout);
        assert.match(
          r.stderr,
          /\/var\/lib\/nodelocaldns\/original: not a regular file; nothing changed/,
        );
        assert.equal(n.text(CONFIG), SWITCHED, "the kubelet file is not /etc/shadow");
      }),
    );

    it(
      "a record with a value that is not what this program writes: refused, left as it is",
      SCENARIO,
      () =>
        onKubeadmNode(async (n) => {
          assert.equal((await n.run("create")).code, 0);
          await n.node.run(
            `sed -i 's|^original_value=.*|original_value=$(reboot)|' ${STATE_DIR}/record`,
          );
          const r = await n.run("delete");
          assert.equal(r.code, 1, r.stdout);
          assert.match(
            r.stderr,
            /record: bad value for original_value; state left as it is; nothing changed/,
          );
        }),
    );
  },
);

describe("one run at a time on a machine", { ...options, concurrency: NODES }, () => {
  it(
    "two creates at once: one switches, the other waits and finds it switched; the original is kept",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        const [a, b] = await Promise.all([n.run("create"), n.run("create")]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const outputs = [a.stdout, b.stdout].join("\n");
        assert.equal(outputs.match(/switched: cluster DNS/g)?.length, 1, outputs);
        assert.equal(outputs.match(/already switched/g)?.length, 1, outputs);
        assert.equal(n.text(`${STATE_DIR}/original`), ORIGINAL, "the original is the original");
        assert.equal((await n.run("delete")).code, 0);
        assert.equal(n.text(CONFIG), ORIGINAL);
      }),
  );

  it(
    "a delete while a create waits for the cache: it waits, then reverts what the create did",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        await n.setCache(null);
        const create = n.run("create", { params: { readyTimeoutSeconds: 20 } });
        await sleep(2000);
        const remove = n.run("delete");
        await sleep(2000);
        await n.setCache("dns");
        const [c, d] = await Promise.all([create, remove]);
        assert.equal(c.code, 0, c.stderr);
        assert.equal(d.code, 0, d.stderr);
        assert.match(
          d.stdout,
          /another nodelocaldns run holds \/var\/lib\/nodelocaldns\/lock: waiting up to/,
        );
        assert.match(d.stdout, /reverted: cluster DNS 169\.254\.20\.10 -> 10\.96\.0\.10/);
        assert.equal(n.text(CONFIG), ORIGINAL);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
        assert.equal(await n.state(), undefined);
      }),
  );

  it("a lock held longer than the wait: refused, nothing changed", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await n.node.run(`mkdir -m 700 -p ${STATE_DIR}`);
      const holder = n.node.run(`exec flock ${STATE_DIR}/lock sleep 30`);
      await sleep(500);
      const { starts } = await n.kubelet();
      // readyTimeoutSeconds 1, kubeletTimeoutSeconds 1: the lock wait is 1 + 2 + 30 = 33 s.
      const program = renderNodeProgram({
        ...PARAMS,
        readyTimeoutSeconds: 1,
        kubeletTimeoutSeconds: 1,
      });
      const r = await n.run("create", {
        program: program.replace("LOCK_TIMEOUT_SECONDS=33", "LOCK_TIMEOUT_SECONDS=2"),
      });
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /another nodelocaldns run held \/var\/lib\/nodelocaldns\/lock for more than 2s; nothing changed/,
      );
      await assertUntouched(n, starts);
      await n.node.run("pkill -f 'flock /var/lib/nodelocaldns/lock' || true");
      await holder;
    }),
  );

  it("one machine listed twice under two names: the second is refused by name", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      assert.equal((await n.run("create")).code, 0);
      const r = await n.run("create", { params: { nodeName: "node-1-alias" } });
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /this machine is switched as node node-1; is it listed twice in the stack\?; nothing changed/,
      );
      assert.equal((await n.run("delete")).code, 0);
    }),
  );
});

describe("the state of an earlier version", { ...options }, () => {
  it("is imported: its revert puts the original bytes back", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      // As the previous node program left a switched node: separate files, no record.
      n.node.writeFile(CONFIG, SWITCHED);
      await n.node.run("systemctl restart kubelet");
      await n.kubeletRunning();
      for (const [name, text] of Object.entries({
        path: CONFIG,
        original: ORIGINAL,
        "original-dns": KUBE_DNS_IP,
        applied: SWITCHED,
        "applied-dns": LOCAL_DNS_IP,
      })) {
        n.node.writeFile(`${STATE_DIR}/${name}`, text, 0o600);
      }
      await n.node.run(`chmod 700 ${STATE_DIR}`);
      const r = await n.run("delete");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /imported the state an earlier nodelocaldns version left in \/var\/lib\/nodelocaldns/,
      );
      assert.equal(n.text(CONFIG), ORIGINAL);
      assert.equal(await n.state(), undefined);
    }),
  );
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
