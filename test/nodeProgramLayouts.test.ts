// The node program on real kubelet layouts (test/support/kubeletLayouts.ts), on systemd test
// nodes with a real systemd, real sshd and the stand-in kubelet, over real OpenSSH:
// - every supported layout: check says what create will do; create edits exactly the file kubelet
//   takes its cluster DNS from (or writes its own --config-dir drop-in), restarts kubelet and the
//   new kubelet runs with the cache's address; a second create changes nothing; delete puts every
//   byte back and kubelet runs with kube-dns again;
// - every refused layout: create fails with the reason and changes nothing, kubelet not restarted.
// Every DNS packet stays inside the node's own network namespace.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { REFUSED_LAYOUTS, SUPPORTED_LAYOUTS } from "./support/kubeletLayouts";
import { KUBELET_LAYOUTS, systemdNodeTestOptions } from "./support/systemdNode";
import { ProgramNode, ProgramNodePool, STATE_DIR } from "./support/programNode";

const NODES = 3;
const options = systemdNodeTestOptions();
const pool = new ProgramNodePool();
const onNode = <T>(body: (node: ProgramNode) => Promise<T>) => pool.use(body);

before(
  async () => {
    if (!options.skip)
      await pool.start(NODES, KUBELET_LAYOUTS.kubeadm.files as Record<string, string>);
  },
  { timeout: 15 * 60_000 },
);

after(() => pool.stop());

const EXPECTED_STATE = ["applied", "lock", "original", "program", "record"];

describe(
  "supported layouts: check, create, create again, delete",
  { ...options, concurrency: NODES },
  () => {
    for (const layout of SUPPORTED_LAYOUTS) {
      it(layout.name, { timeout: 180_000 }, () =>
        onNode(async (n) => {
          const params = layout.params ?? {};
          const started = await n.setLayout(layout.files, layout.setup);
          assert.deepEqual(started.effective?.clusterDNS, layout.before, "the layout as meant");
          const paths = [...new Set([...Object.keys(layout.files), layout.source])];
          const original = n.snapshot(paths);
          const before = layout.before.join(",").toLowerCase().replace("fd00::0010", "fd00::10");
          const after = layout.after.join(",").toLowerCase().replace("fd00::0010", "fd00::10");

          const check = await n.run("check", { params });
          assert.equal(check.code, 0, check.stderr);
          assert.ok(
            check.stdout.includes(
              `check: create would switch ${before} -> ${after} in ${layout.source} (${layout.kind}) and restart kubelet`,
            ),
            check.stdout,
          );

          const create = await n.run("create", { params });
          assert.equal(create.code, 0, create.stdout + create.stderr);
          assert.ok(
            create.stdout.includes(
              `switched: cluster DNS ${before} -> ${after} in ${layout.source}`,
            ),
            create.stdout,
          );
          const switched = await n.kubelet();
          assert.deepEqual(switched.effective?.clusterDNS, layout.after, "the new kubelet's value");
          assert.equal(switched.effective?.pid, switched.mainPid);
          assert.equal(switched.starts, started.starts + 1, "one restart");
          assert.equal(n.text(layout.source), layout.switched);
          for (const path of paths.filter((p) => p !== layout.source)) {
            assert.equal(n.snapshot([path])[path], original[path], `${path} untouched`);
          }
          const expectedState =
            layout.kind === "dropin"
              ? EXPECTED_STATE.filter((f) => f !== "original")
              : EXPECTED_STATE;
          assert.deepEqual(await n.state(), expectedState);

          const again = await n.run("create", { params });
          assert.equal(again.code, 0, again.stderr);
          assert.match(
            again.stdout,
            /already switched: kubelet uses .*; nothing to do, kubelet not restarted/,
          );
          assert.equal((await n.kubelet()).starts, switched.starts, "no restart");

          const revert = await n.run("delete", { params });
          assert.equal(revert.code, 0, revert.stdout + revert.stderr);
          assert.deepEqual(n.snapshot(paths), original, "every byte back");
          const reverted = await n.kubelet();
          assert.deepEqual(reverted.effective?.clusterDNS, layout.before);
          assert.equal(reverted.starts, switched.starts + 1);
          assert.equal(await n.state(), undefined, `${STATE_DIR} removed`);
        }),
      );
    }

    it("runs through sudo -n as a user other than root", { timeout: 180_000 }, () =>
      onNode(async (n) => {
        const layout = SUPPORTED_LAYOUTS[0]!;
        await n.setLayout(layout.files);
        const create = await n.run("create", { user: "ops" });
        assert.equal(create.code, 0, create.stderr);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, ["169.254.20.10"]);
        const revert = await n.run("delete", { user: "ops" });
        assert.equal(revert.code, 0, revert.stderr);
        assert.deepEqual((await n.kubelet()).effective?.clusterDNS, ["10.96.0.10"]);
      }),
    );
  },
);

describe(
  "refused layouts: a clear reason, nothing changed, kubelet not restarted",
  { ...options, concurrency: NODES },
  () => {
    for (const layout of REFUSED_LAYOUTS) {
      it(layout.name, { timeout: 120_000 }, () =>
        onNode(async (n) => {
          const started = await n.setLayout(layout.files, layout.setup);
          const paths = Object.keys(layout.files);
          const original = n.snapshot(paths);
          const create = await n.run("create", { params: layout.params ?? {} });
          assert.equal(create.code, 1, create.stdout);
          assert.match(create.stderr, layout.refusal);
          assert.deepEqual(n.snapshot(paths), original);
          assert.equal((await n.kubelet()).starts, started.starts, "kubelet not restarted");
          assert.equal(await n.state(), undefined, "no state left");
        }),
      );
    }
  },
);
