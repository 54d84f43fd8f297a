// What the node program does around the switch itself, on systemd test nodes over real OpenSSH:
// it waits for a cache that answers DNS, and for a kubelet that comes back healthy with the value
// meant (else it undoes the step); it updates, adopts, repairs drift and reverts truthfully; it
// refuses, changing nothing, when kubelet is down or a tool is missing; it makes no switch after
// its SSH client is gone; the revert guard reverts a switch Pulumi never recorded; and the switch
// launcher runs only the delivered program with its digest, and reverts without it.
// Every DNS packet stays inside the node's own network namespace.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  DELIVERED_NODE_PROGRAM,
  DELIVERED_NODE_PROGRAM_SHA256,
  renderNodeProgram,
} from "../components/nodeScript";
import { removePodDir, writeNodeProgramVolume } from "./support/kubeletVolume";
import { SUPPORTED_LAYOUTS } from "./support/kubeletLayouts";
import {
  KUBE_DNS_IP,
  LOCAL_DNS_IP,
  PARAMS,
  ProgramNode,
  ProgramNodePool,
  STATE_DIR,
  replaceOnce,
} from "./support/programNode";
import { systemdNodeTestOptions } from "./support/systemdNode";
import { KUBELET_HEALTHZ_LOG } from "./support/systemdNode/constants";

const NODES = 3;
const options = systemdNodeTestOptions();
const pool = new ProgramNodePool();
const KUBEADM = SUPPORTED_LAYOUTS[0]!;
const CONFIG = KUBEADM.source;
const KNOBS = "/etc/kubelet-standin";

before(
  async () => {
    if (!options.skip) await pool.start(NODES, KUBEADM.files);
  },
  { timeout: 15 * 60_000 },
);
after(() => pool.stop());

/** On a node of the pool, kubelet in the kubeadm layout, an answering cache, no state. */
function onKubeadmNode(body: (n: ProgramNode) => Promise<void>) {
  return pool.use(async (n) => {
    await n.setCache("dns");
    await n.setLayout(KUBEADM.files);
    await body(n);
  });
}

const SCENARIO = { timeout: 180_000 };

describe(
  "the cache must answer DNS before kubelet is touched",
  { ...options, concurrency: NODES },
  () => {
    for (const [mode, reason] of [
      [null, /no DNS reply from 169\.254\.20\.10:53/],
      ["silent", /no DNS reply from 169\.254\.20\.10:53/],
      ["garbage", /169\.254\.20\.10:53 answered, but not with a DNS reply to our query/],
    ] as const) {
      it(
        `${mode ?? "no listener"}: refused after readyTimeoutSeconds, nothing changed`,
        SCENARIO,
        () =>
          onKubeadmNode(async (n) => {
            await n.setCache(mode);
            const before = await n.kubelet();
            const r = await n.run("create");
            assert.equal(r.code, 1, r.stdout);
            assert.match(r.stderr, /the cache is not ready after 3s: /);
            assert.match(r.stderr, reason);
            assert.match(r.stderr, /kubelet left unchanged; nothing changed$/m);
            assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
            assert.equal((await n.kubelet()).starts, before.starts);
            assert.equal(await n.state(), undefined);
          }),
      );
    }
  },
);

describe(
  "kubelet must come back healthy, with the value meant",
  { ...options, concurrency: NODES },
  () => {
    /** Knobs that break kubelet only when it runs with the cache's address. */
    function breakWithCache(n: ProgramNode, knobs: Record<string, string>) {
      n.node.writeFile(`${KNOBS}/only-with-cluster-dns`, `${LOCAL_DNS_IP}\n`);
      for (const [name, value] of Object.entries(knobs))
        n.node.writeFile(`${KNOBS}/${name}`, value);
    }

    async function assertUndone(n: ProgramNode, stderr: string, reason: RegExp) {
      assert.match(stderr, reason);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG], "the original bytes");
      const k = await n.kubeletRunning();
      assert.deepEqual(k.effective?.clusterDNS, [KUBE_DNS_IP], "kubelet back on kube-dns");
      assert.equal(await n.state(), undefined, "nothing recorded");
    }

    it("a kubelet that cannot start with the new value: undone", SCENARIO, () =>
      onKubeadmNode(async (n) => {
        breakWithCache(n, { "fail-start": "" });
        const r = await n.run("create");
        assert.equal(r.code, 1, r.stdout);
        await assertUndone(n, r.stderr, /kubelet did not come back healthy after the change/);
        assert.match(
          r.stdout,
          /undo: put back \/var\/lib\/kubelet\/config\.yaml as it was before the create/,
        );
      }),
    );

    it("a kubelet that answers no healthz and crashes 2 s after starting: undone", SCENARIO, () =>
      onKubeadmNode(async (n) => {
        // systemd restarts it after RestartSec: NRestarts moves, which is the crash.
        n.node.writeFile(
          "/etc/systemd/system/kubelet.service.d/zz-fast-restart.conf",
          "[Service]\nRestartSec=1\n",
        );
        await n.node.run("systemctl daemon-reload");
        breakWithCache(n, { "healthz-delay": "30", "crash-after": "2" });
        const r = await n.run("create");
        assert.equal(r.code, 1, r.stdout);
        assert.match(
          r.stdout,
          /kubelet not healthy after 15s: kubelet crashed and systemd restarted it \(NRestarts/,
        );
        await assertUndone(n, r.stderr, /kubelet did not come back healthy after the change/);
      }),
    );

    it(
      "a kubelet whose healthz answers late, within kubeletTimeoutSeconds: switched, with a few looks a second",
      SCENARIO,
      () =>
        onKubeadmNode(async (n) => {
          breakWithCache(n, { "healthz-delay": "4" });
          n.node.writeFile(KUBELET_HEALTHZ_LOG, "");
          const r = await n.run("create");
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
          // Each look costs the node a `systemctl show` and a request while kubelet starts: over
          // the 4 s, pauses of 0.05, 0.1 and 0.2 s, then 0.25 s, allow about 18 by the schedule.
          // Twenty looks a second for the first second, as before, made 32 here.
          const looks = n.text(KUBELET_HEALTHZ_LOG).split("\n").filter(Boolean).length;
          assert.ok(looks >= 4 && looks <= 24, `${looks} healthz requests while kubelet started`);
          assert.equal((await n.run("delete")).code, 0);
        }),
    );

    it("healthzPort 0: systemd's active state is the health signal", SCENARIO, () =>
      onKubeadmNode(async (n) => {
        await n.setLayout({
          ...KUBEADM.files,
          [CONFIG]: KUBEADM.files[CONFIG]!.replace("healthzPort: 10248", "healthzPort: 0"),
        });
        const r = await n.run("create");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /kubelet back \(pid \d+, active; healthz disabled\)/);
      }),
    );

    it(
      "a kubelet that restarts with another value (config management put the file back): undone",
      SCENARIO,
      () =>
        onKubeadmNode(async (n) => {
          // Every start first copies the pristine file over config.yaml, as a config agent might.
          await n.setLayout({
            ...KUBEADM.files,
            "/etc/kubernetes/pristine-config.yaml": KUBEADM.files[CONFIG]!,
            "/etc/systemd/system/kubelet.service.d/05-reset.conf":
              "[Service]\nExecStartPre=/bin/cp /etc/kubernetes/pristine-config.yaml /var/lib/kubelet/config.yaml\n",
          });
          const r = await n.run("create");
          assert.equal(r.code, 1, r.stdout);
          await assertUndone(
            n,
            r.stderr,
            /kubelet restarted but runs with cluster DNS 10\.96\.0\.10 \(clusterDNS in \/var\/lib\/kubelet\/config\.yaml\), not 169\.254\.20\.10/,
          );
        }),
    );
  },
);

describe("update, adoption, drift and revert", { ...options, concurrency: NODES }, () => {
  it(
    "update to another cache address keeps the original; delete restores its bytes",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        const other = "169.254.20.11";
        assert.equal((await n.node.run(`ip addr add ${other}/32 dev lo`)).code, 0);
        const dns = await n.node.startDnsServer(other, "dns");
        try {
          assert.equal((await n.run("create")).code, 0);
          const r = await n.run("update", { params: { localDnsIp: other } });
          assert.equal(r.code, 0, r.stderr);
          assert.match(
            r.stdout,
            /switched to 169\.254\.20\.10 earlier; now switching to 169\.254\.20\.11/,
          );
          assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [other]);
          assert.equal(
            n.text(CONFIG),
            KUBEADM.files[CONFIG]!.replace("- 10.96.0.10", `- ${other}`),
          );
          const d = await n.run("delete", { params: { localDnsIp: other } });
          assert.equal(d.code, 0, d.stderr);
          assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
          assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
        } finally {
          await dns.stop();
          await n.node.run(`ip addr del ${other}/32 dev lo`);
        }
      }),
  );

  it(
    "fallbackToKubeDns turned on and off on a switched node; delete restores the original bytes",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        const fallback = { fallbackToKubeDns: true };
        assert.equal((await n.run("create")).code, 0);
        const check = await n.run("check", { params: fallback });
        assert.equal(check.code, 0, check.stderr);
        assert.match(
          check.stdout,
          /check: create would switch 169\.254\.20\.10 -> 169\.254\.20\.10,10\.96\.0\.10 in/,
        );
        const on = await n.run("update", { params: fallback });
        assert.equal(on.code, 0, on.stderr);
        assert.match(
          on.stdout,
          /switched to 169\.254\.20\.10 earlier; now switching to 169\.254\.20\.10,10\.96\.0\.10/,
        );
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP, KUBE_DNS_IP]);
        assert.equal(
          n.text(CONFIG),
          KUBEADM.files[CONFIG]!.replace("- 10.96.0.10", `- ${LOCAL_DNS_IP}\n- 10.96.0.10`),
        );
        const off = await n.run("update");
        assert.equal(off.code, 0, off.stderr);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
        assert.equal((await n.run("update", { params: fallback })).code, 0);
        const d = await n.run("delete", { params: fallback });
        assert.equal(d.code, 0, d.stderr);
        assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      }),
  );

  it(
    "delete after another line was edited: only the value goes back, the edit stays",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.run("create")).code, 0);
        n.node.writeFile(
          CONFIG,
          n.text(CONFIG).replace("rotateCertificates: true", "rotateCertificates: false"),
        );
        const r = await n.run("delete");
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /was edited since the switch: setting only its cluster DNS back to 10\.96\.0\.10/,
        );
        assert.equal(
          n.text(CONFIG),
          KUBEADM.files[CONFIG]!.replace("rotateCertificates: true", "rotateCertificates: false"),
        );
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      }),
  );

  it(
    "delete after someone else changed the value: left alone, kubelet not restarted",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.run("create")).code, 0);
        const theirs = n.text(CONFIG).replace("- 169.254.20.10", "- 169.254.25.10");
        n.node.writeFile(CONFIG, theirs);
        const before = await n.kubelet();
        const r = await n.run("delete");
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /changed by someone else; leaving it alone, kubelet not restarted/);
        assert.equal(n.text(CONFIG), theirs);
        assert.equal((await n.kubelet()).starts, before.starts);
        assert.equal(await n.state(), undefined);
      }),
  );

  it("a node switched by hand is adopted without a restart; delete sets kube-dns", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      const byHand = KUBEADM.files[CONFIG]!.replace("- 10.96.0.10", "- 169.254.20.10");
      const started = await n.setLayout({ ...KUBEADM.files, [CONFIG]: byHand });
      const r = await n.run("create");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /adopted \(a revert sets 10\.96\.0\.10\); kubelet not restarted/);
      assert.equal((await n.kubelet()).starts, started.starts);
      assert.equal((await n.run("delete")).code, 0);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
    }),
  );

  it(
    "a node switched by hand with a fallback is adopted as it is; delete sets kube-dns",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        const byHand = KUBEADM.files[CONFIG]!.replace(
          "- 10.96.0.10",
          `- ${LOCAL_DNS_IP}\n- ${KUBE_DNS_IP}`,
        );
        const started = await n.setLayout({ ...KUBEADM.files, [CONFIG]: byHand });
        const r = await n.run("create", { params: { fallbackToKubeDns: true } });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /adopted \(a revert sets 10\.96\.0\.10\); kubelet not restarted/);
        const again = await n.run("create", { params: { fallbackToKubeDns: true } });
        assert.match(
          again.stdout,
          /already switched: kubelet uses 169\.254\.20\.10,10\.96\.0\.10;/,
        );
        assert.equal((await n.kubelet()).starts, started.starts);
        assert.equal((await n.run("delete")).code, 0);
        assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      }),
  );

  it(
    "a file put back behind its back (kubeadm upgrade) is switched again by a drift repair",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.run("create")).code, 0);
        const upgraded = KUBEADM.files[CONFIG]!.replace(
          "rotateCertificates: true",
          "rotateCertificates: true\nmaxPods: 120",
        );
        n.node.writeFile(CONFIG, upgraded);
        assert.equal((await n.node.run("systemctl restart kubelet")).code, 0);
        await n.kubeletRunning();
        const r = await n.run("update", { word: "repair-1" });
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /: update \(repair-1: the control plane saw kubelet off the cache\)\n/,
        );
        assert.match(
          r.stdout,
          /was put back to 10\.96\.0\.10 since the switch \(kubeadm upgrade, reimage\?\): switching again/,
        );
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
        assert.equal((await n.run("delete")).code, 0);
        assert.equal(n.text(CONFIG), upgraded, "the revert restores the file as kubeadm wrote it");
      }),
  );

  it("check on a switched node: nothing to do", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      assert.equal((await n.run("create")).code, 0);
      const r = await n.run("check");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /check: record: switched \(\/var\/lib\/kubelet\/config\.yaml, 10\.96\.0\.10 -> 169\.254\.20\.10\)/,
      );
      assert.match(r.stdout, /check: create would do nothing: already switched/);
    }),
  );
});

describe("refusals and the client", { ...options, concurrency: NODES }, () => {
  it(
    "kubelet stopped: create refuses; delete restores the file and leaves kubelet stopped",
    SCENARIO,
    () =>
      onKubeadmNode(async (n) => {
        assert.equal((await n.run("create")).code, 0);
        assert.equal((await n.node.run("systemctl stop kubelet")).code, 0);
        const c = await n.run("create", { params: { localDnsIp: "169.254.20.10" } });
        assert.equal(c.code, 1);
        assert.match(
          c.stderr,
          /kubelet is not running \(inactive\/dead\); start it or fix it first; nothing changed/,
        );
        const d = await n.run("delete");
        assert.equal(d.code, 0, d.stderr);
        assert.match(
          d.stdout,
          /kubelet is not running: not restarted; it reads the file when it starts/,
        );
        assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
        assert.equal((await n.kubelet()).active, "inactive");
      }),
  );

  it("a second word other than an update's repair-<n>: refused before anything", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      for (const [action, word] of [
        ["update", "repair-0"],
        ["update", "repair-1234567"],
        ["update", "repair-1 extra"],
        ["update", "'repair-1;reboot'"],
        ["create", "repair-1"],
        ["delete", "repair-1"],
      ] as const) {
        const r = await n.run(action, { word });
        assert.equal(r.code, 2, `${action} ${word}: ${r.stderr}`);
        assert.equal(r.stdout, "");
        assert.match(
          r.stderr,
          /^nodelocaldns\[node-1\]: usage: bash -s update \[repair-N\] < program \(N: 1 to 999999\)$/m,
        );
      }
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.equal(await n.state(), undefined);
    }),
  );

  it("a tool missing on the node: refused, named, nothing changed", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      // A PATH with everything of /usr/bin but flock.
      const setup = await n.node.run(
        'mkdir -p /tmp/noflock && for f in /usr/bin/* /usr/sbin/*; do [ "${f##*/}" = flock ] || ln -sf "$f" /tmp/noflock/; done',
      );
      assert.equal(setup.code, 0, setup.stderr);
      const r = await n.node.ssh("PATH=/tmp/noflock bash -s create", renderNodeProgram(PARAMS));
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /missing on this node: flock \(bash needs coreutils, util-linux and systemd\); nothing changed/,
      );
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
    }),
  );

  it("the SSH client gone while waiting for the cache: no switch later", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await n.setCache(null);
      const program = renderNodeProgram({ ...PARAMS, readyTimeoutSeconds: 30 });
      // `pulumi up` interrupted: the ssh client is killed 2 s into the wait.
      const client = spawn(
        "nsenter",
        [
          "-t",
          String(n.node.leaderPid),
          "-n",
          "ssh",
          ...sshArgs(n),
          "root@127.0.0.1",
          "bash -s create",
        ],
        { stdio: ["pipe", "ignore", "ignore"] },
      );
      client.stdin.end(program);
      await sleep(2000);
      client.kill("SIGKILL");
      await sleep(1000);
      await n.setCache("dns");
      const before = await n.kubelet();
      await sleep(10_000);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG], "not switched");
      assert.equal((await n.kubelet()).starts, before.starts, "kubelet not restarted");
      const left = await n.node.run("pgrep -f '^bash -s create$' || true");
      assert.equal(left.stdout.trim(), "", "no node program left running");
      assert.equal(await n.state(), undefined);
    }),
  );
});

describe("the revert guard", { ...options, concurrency: NODES }, () => {
  it("reverts a switch whose Command Pulumi never recorded, from the saved program", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      const nothing = await n.guard("delete");
      assert.equal(nothing.code, 0, nothing.stderr);
      assert.match(
        nothing.stdout,
        /no saved node program in \/var\/lib\/nodelocaldns: nothing to revert/,
      );
      // The guard Command has no create: run with one, its program changes nothing and says so.
      const create = await n.guard("create");
      assert.equal(create.code, 2, create.stderr);
      assert.match(create.stderr, /^nodelocaldns-guard\[[^\]]+\]: usage: bash -s delete < guard$/m);
      assert.equal(await n.state(), undefined);
      assert.equal((await n.run("create")).code, 0);
      // destroy: the switch's own delete never runs (its create was not recorded); the guard's does.
      const r = await n.guard("delete");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /running the revert of the node program saved in \/var\/lib\/nodelocaldns/,
      );
      assert.match(r.stdout, /reverted: cluster DNS 169\.254\.20\.10 -> 10\.96\.0\.10/);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      assert.equal(await n.state(), undefined);
    }),
  );

  it("refuses to run a saved program that root did not write", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      assert.equal((await n.run("create")).code, 0);
      await n.node.run(`chown ops ${STATE_DIR}/program`);
      const r = await n.guard("delete");
      assert.equal(r.code, 1);
      assert.match(r.stderr, /program is not a regular file owned by root; not running it/);
      await n.node.run(`chown root ${STATE_DIR}/program`);
      assert.equal((await n.run("delete")).code, 0);
    }),
  );
});

describe("the switch launcher", { ...options, concurrency: NODES }, () => {
  const POD = "0b7a3c1e-5d2f-4e8a-9c6b-1a2b3c4d5e6f";
  const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

  it("runs the program kubelet delivered, with the digest it carries", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await writeNodeProgramVolume(n.node, { podUid: POD });
      const created = await n.launch("create");
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /switched: cluster DNS 10\.96\.0\.10 -> 169\.254\.20\.10/);
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      const checked = await n.launch("check");
      assert.equal(checked.code, 0, checked.stderr);
      assert.match(checked.stdout, /check: create would do nothing: already switched/);
      const deleted = await n.launch("delete");
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.equal(await n.state(), undefined);
    }),
  );

  it("refuses a delivered program with another digest, naming it, nothing changed", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      const edited = `${DELIVERED_NODE_PROGRAM}echo edited on the node\n`;
      await writeNodeProgramVolume(n.node, { podUid: POD, program: edited });
      const before = await n.kubelet();
      const r = await n.launch("create", { params: { readyTimeoutSeconds: 2 } });
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stdout,
        /waiting for the node program [0-9a-f]{12} in the node-program volume/,
      );
      assert.ok(
        r.stderr.includes(
          `no node program with sha256 ${DELIVERED_NODE_PROGRAM_SHA256.slice(0, 12)} under ` +
            "/var/lib/kubelet/pods/*/volumes/kubernetes.io~configmap/node-program/ after 2s " +
            `(found: ${digest(edited)}); is this stack's node-local-dns pod running on this node?` +
            " nothing changed",
        ),
        r.stderr,
      );
      assert.doesNotMatch(r.stdout + r.stderr, /edited on the node/);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.equal((await n.kubelet()).starts, before.starts);
      assert.equal(await n.state(), undefined);
    }),
  );

  it("waits for kubelet to write the volume (a pod starting, a ConfigMap update)", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await writeNodeProgramVolume(n.node, { podUid: POD, program: "# an older program\n" });
      const run = n.launch("create", { params: { readyTimeoutSeconds: 30 } });
      await sleep(2000);
      await writeNodeProgramVolume(n.node, { podUid: POD });
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /waiting for the node program/);
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      assert.equal((await n.launch("delete")).code, 0);
    }),
  );

  it("reverts with the saved program when the delivered one is gone", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await writeNodeProgramVolume(n.node, { podUid: POD });
      assert.equal((await n.launch("create")).code, 0);
      await removePodDir(n.node, POD);
      const r = await n.launch("delete");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /running the revert of the node program saved in/);
      assert.match(r.stdout, /reverted: cluster DNS 169\.254\.20\.10 -> 10\.96\.0\.10/);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
      assert.equal(await n.state(), undefined);
      const again = await n.launch("delete");
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stdout,
        /no saved node program in \/var\/lib\/nodelocaldns: nothing to revert/,
      );
    }),
  );

  it("looks under kubelet's --root-dir when kubelet runs with one", SCENARIO, () =>
    pool.use(async (n) => {
      await n.setCache("dns");
      const flags = "/var/lib/kubelet/kubeadm-flags.env";
      await n.setLayout({
        ...KUBEADM.files,
        [flags]: `KUBELET_KUBEADM_ARGS="--root-dir=/srv/kubelet-root"\n`,
      });
      // Nowhere yet: after the default directory, the launcher looks where this kubelet keeps its
      // pods, and names it.
      const missed = await n.launch("create", { params: { readyTimeoutSeconds: 1 } });
      assert.equal(missed.code, 1, missed.stdout);
      assert.match(missed.stderr, /under \/srv\/kubelet-root\/pods\/\*\/volumes\//);
      await writeNodeProgramVolume(n.node, { podUid: POD, rootDir: "/srv/kubelet-root" });
      const r = await n.launch("create");
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      assert.equal((await n.launch("delete")).code, 0);
      // A copy with the right sha256 under the default directory is the program just as well: it
      // is found first, without asking systemd for kubelet's root dir.
      await n.node.run("rm -rf /srv/kubelet-root");
      await writeNodeProgramVolume(n.node, { podUid: POD });
      const fromDefault = await n.launch("create");
      assert.equal(fromDefault.code, 0, fromDefault.stderr);
      assert.equal((await n.launch("delete")).code, 0);
    }),
  );

  it("refuses to forget a recorded switch that has no saved program", SCENARIO, () =>
    onKubeadmNode(async (n) => {
      await writeNodeProgramVolume(n.node, { podUid: POD });
      assert.equal((await n.launch("create")).code, 0);
      await removePodDir(n.node, POD);
      await n.node.run(`rm ${STATE_DIR}/program`);
      for (const r of [await n.launch("delete"), await n.guard("delete")]) {
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, /records a switch but holds no saved node program to revert it/);
      }
      assert.deepEqual((await n.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      assert.ok((await n.state())?.includes("record"));
      await writeNodeProgramVolume(n.node, { podUid: POD });
      assert.equal((await n.launch("delete")).code, 0);
      assert.equal(n.text(CONFIG), KUBEADM.files[CONFIG]);
    }),
  );
});

function sshArgs(n: ProgramNode): string[] {
  return [
    "-i",
    n.node.privateKeyPath,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
  ];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

void replaceOnce;
