// The node program killed at every point where it changes something, on systemd test nodes: a
// SIGKILL (of the whole process group, as a dying sshd session or `kill -9` would) before each
// command that writes a file, removes one or restarts kubelet, in create, update and delete; and
// the SSH connection dropped at timed points. After each kill the next run (a destroy's delete, or
// a retried create) must finish or undo the interrupted step: the kubelet file ends with its
// original bytes, kubelet runs with kube-dns, nothing is left under stateDir or beside the file.
// Post-kill states that look alike (same files, same record, same kubelet value) are followed up
// once. Every DNS packet stays inside the node's own network namespace.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { renderNodeProgram } from "../../components/nodeScript";
import { SUPPORTED_LAYOUTS } from "../support/kubeletLayouts";
import {
  KUBE_DNS_IP,
  LOCAL_DNS_IP,
  PARAMS,
  ProgramNode,
  ProgramNodePool,
  STATE_DIR,
} from "../support/programNode";
import { systemdNodeTestOptions } from "../support/systemdNode";

const NODES = 3;
const options = systemdNodeTestOptions();
const pool = new ProgramNodePool();
const KUBEADM = SUPPORTED_LAYOUTS[0]!;
const CONFIG = KUBEADM.source;
const ORIGINAL = KUBEADM.files[CONFIG]!;
const OTHER_CACHE_IP = "169.254.20.11";
const MATRIX = { timeout: 30 * 60_000 };

before(
  async () => {
    if (options.skip) return;
    await pool.start(NODES, KUBEADM.files);
    // update moves the cache to a second address: every node has it, with a DNS server on it.
    for (const n of pool.all) {
      assert.equal((await n.node.run(`ip addr add ${OTHER_CACHE_IP}/32 dev lo`)).code, 0);
      await n.node.startDnsServer(OTHER_CACHE_IP, "dns");
    }
  },
  { timeout: 15 * 60_000 },
);
after(() => pool.stop());

/**
 * The program with a DEBUG trap in front that counts, in the main shell, the commands that change
 * something (create, write, rename, remove or flush a file, make a directory, or ask systemd to
 * restart kubelet or reload units: `timeout -k 5`) and, before number KILL_AT, SIGKILLs the run's
 * whole process group. It keeps the count so far in /run/kill-points (written with `>|`: the program
 * turns noclobber on while it creates a temporary file).
 */
function killable(program: string): string {
  return `set -T
kill_points=0
count_kill_point() {
  ((BASHPID == $$)) || return 0
  case $1 in
    ": > "* | "printf '%s' "* | "cp "* | "chmod "* | "sync "* | "mv "* | "rm "* | "rmdir "*) ;;
    "mkdir "* | "timeout -k 5 "*) ;;
    *) return 0 ;;
  esac
  kill_points=$((kill_points + 1))
  if ((kill_points == KILL_AT)); then kill -9 -$$; fi
  echo "kill points: \${kill_points}" >|/run/kill-points
}
trap 'count_kill_point "$BASH_COMMAND"' DEBUG
${program}`;
}

/** Runs `action` with KILL_AT as a session leader (so -$$ is its group); returns its exit code. */
async function runKilled(n: ProgramNode, program: string, action: string, killAt: number) {
  const r = await n.node.run(`KILL_AT=${killAt} setsid -w bash -s ${action}`, killable(program));
  return r;
}

/** A fingerprint of what a kill left: files, state, and the value kubelet runs with. */
async function fingerprint(n: ProgramNode): Promise<string> {
  const status = await waitSettled(n);
  const r = await n.node.run(
    `cd / && { cat ${CONFIG}; echo ==; ls -A /var/lib/kubelet; echo ==; ls -A ${STATE_DIR} 2>&1; ` +
      `cat ${STATE_DIR}/record 2>/dev/null; } | sed 's/\\.nodelocaldns-tmp\\.[A-Za-z0-9]*$/.TMP/'`,
  );
  return createHash("sha256")
    .update(`${r.stdout}\n${JSON.stringify(status.effective?.clusterDNS)}`)
    .digest("hex")
    .slice(0, 12);
}

/** Waits until kubelet is running (or has stopped trying), after a kill maybe mid-restart. */
async function waitSettled(n: ProgramNode) {
  for (let i = 0; i < 100; i++) {
    const status = await n.kubelet();
    if (status.active === "active" && status.effective?.pid === status.mainPid) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return n.kubelet();
}

/** After the follow-up: the original bytes, kubelet on kube-dns, nothing left behind. */
async function assertOriginal(n: ProgramNode, what: string) {
  assert.equal(n.text(CONFIG), ORIGINAL, `${what}: the original bytes`);
  const status = await waitSettled(n);
  assert.deepEqual(status.effective?.clusterDNS, [KUBE_DNS_IP], `${what}: kubelet on kube-dns`);
  assert.equal(await n.state(), undefined, `${what}: nothing under ${STATE_DIR}`);
  const beside = await n.node.run("ls -A /var/lib/kubelet");
  assert.deepEqual(
    beside.stdout.split("\n").filter((f) => f !== ""),
    ["config.yaml", "kubeadm-flags.env"],
  );
}

/** The node as a start: kubeadm layout, and, for update and delete, switched by create. */
async function prepare(n: ProgramNode, switched: boolean) {
  await n.setCache("dns");
  await n.setLayout(KUBEADM.files);
  if (switched) assert.equal((await n.run("create")).code, 0);
}

interface MatrixResult {
  points: number;
  states: number;
  failures: string[];
}

/**
 * The kill matrix of one action: counts its kill points on an unkilled run, then kills it at each
 * (split over the pool's nodes) and follows every new post-kill state up with a delete, and every
 * third also with a create first (the retried `pulumi up`).
 */
async function killMatrix(action: "create" | "update" | "delete"): Promise<MatrixResult> {
  const switched = action !== "create";
  const params = action === "update" ? { localDnsIp: OTHER_CACHE_IP } : {};
  const program = renderNodeProgram({ ...PARAMS, ...params });
  const deleteProgram = renderNodeProgram({ ...PARAMS, ...params });
  const points = await pool.use(async (n) => {
    await prepare(n, switched);
    const r = await runKilled(n, program, action, -1);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const count = /kill points: (\d+)/.exec(n.text("/run/kill-points"))?.[1];
    return Number(count);
  });
  assert.ok(points > 20, `${action} has ${points} kill points`);
  const seen = new Set<string>();
  const failures: string[] = [];
  let states = 0;
  await Promise.all(
    Array.from({ length: NODES }, (_, lane) =>
      pool.use(async (n) => {
        for (let k = 1 + lane; k <= points; k += NODES) {
          await prepare(n, switched);
          const killed = await runKilled(n, program, action, k);
          assert.equal(killed.code, 137, `${action} killed at ${k}: ${killed.stderr}`);
          const state = await fingerprint(n);
          if (seen.has(state)) continue;
          seen.add(state);
          states += 1;
          const retry = states % 3 === 0;
          try {
            if (retry) {
              const c = await n.run(action === "update" ? "update" : "create", { params });
              assert.equal(c.code, 0, `retried ${action} after kill ${k}: ${c.stdout}${c.stderr}`);
              assert.equal(
                n.text(`${STATE_DIR}/original`),
                ORIGINAL,
                "the original recorded is the original",
              );
              const expected =
                action === "update"
                  ? OTHER_CACHE_IP
                  : action === "delete"
                    ? LOCAL_DNS_IP
                    : LOCAL_DNS_IP;
              assert.deepEqual((await waitSettled(n)).effective?.clusterDNS, [expected]);
            }
            const d = await n.run("delete", { program: deleteProgram });
            assert.equal(
              d.code,
              0,
              `delete after ${action} killed at ${k}: ${d.stdout}${d.stderr}`,
            );
            await assertOriginal(
              n,
              `${action} killed at ${k}${retry ? ", retried" : ""}, then delete`,
            );
          } catch (err) {
            failures.push(`${action} killed at ${k}: ${(err as Error).message.split("\n")[0]}`);
          }
        }
      }),
    ),
  );
  return { points, states, failures };
}

describe("SIGKILL at every point that changes something", { ...options, concurrency: 1 }, () => {
  for (const action of ["create", "update", "delete"] as const) {
    it(
      `${action}: every post-kill state is finished or undone by the next run`,
      MATRIX,
      async (t) => {
        const result = await killMatrix(action);
        t.diagnostic(
          `${action}: ${result.points} kill points, ${result.states} distinct post-kill states`,
        );
        assert.deepEqual(result.failures, []);
      },
    );
  }
});

describe(
  "the SSH connection dropped at timed points during create",
  { ...options, concurrency: NODES },
  () => {
    for (const ms of [300, 800, 1300, 1800, 2300, 2800]) {
      it(
        `dropped after ${ms} ms: the node ends switched or untouched, and delete reverts it`,
        { timeout: 120_000 },
        () =>
          pool.use(async (n) => {
            await prepare(n, false);
            const client = spawn(
              "nsenter",
              [
                "-t",
                String(n.node.leaderPid),
                "-n",
                "ssh",
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
                "root@127.0.0.1",
                "bash -s create",
              ],
              { stdio: ["pipe", "ignore", "ignore"] },
            );
            client.stdin.end(renderNodeProgram(PARAMS));
            await new Promise((resolve) => setTimeout(resolve, ms));
            client.kill("SIGKILL");
            // Whatever the program still does, it finishes within its timeouts.
            for (let i = 0; i < 200; i++) {
              const left = await n.node.run("pgrep -f '^bash -s create$' || true");
              if (left.stdout.trim() === "") break;
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
            const value = (await waitSettled(n)).effective?.clusterDNS;
            const file = n.text(CONFIG);
            assert.ok(
              (file === ORIGINAL && value?.[0] === KUBE_DNS_IP) ||
                (file === KUBEADM.switched && value?.[0] === LOCAL_DNS_IP),
              `consistent: ${JSON.stringify(value)} with ${file === ORIGINAL ? "the original" : "another"} file`,
            );
            const d = await n.run("delete");
            assert.equal(d.code, 0, d.stdout + d.stderr);
            await assertOriginal(n, `dropped after ${ms} ms, then delete`);
          }),
      );
    }
  },
);
