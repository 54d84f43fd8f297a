// The cleanup program (components/nodeProgram/cleanup.bash) against real iptables, legacy and nft,
// and a real `nodelocaldns` link, each case in network and pid namespaces of its own (`unshare`):
// what node-cache 1.26 leaves with -skipteardown is its 12 rules for the address and the link; the
// cleanup removes exactly those, says how many, does it again without harm, and touches nothing
// while a node-cache process runs. Needs root, unshare and iptables (installed by .ci/run):
// skipped without them, failed instead under CI=true.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { renderCleanupProgram } from "../components/nodeScript";
import {
  addRulesScript,
  linkScript,
  nodeCacheRules as rulesFor,
} from "./support/nodeCacheLeftovers";

const LOCAL_DNS_IP = "169.254.20.10";
const OTHER_IP = "169.254.25.10";
const HEALTH_PORT = 9254;
const PARAMS = {
  nodeName: "node-1",
  localDnsIp: LOCAL_DNS_IP,
  clusterDnsIp: "10.96.0.10",
  fallbackToKubeDns: false,
  clusterDomain: "cluster.local",
  kubelet: { format: "auto" as const },
  stateDir: "/var/lib/nodelocaldns",
  readyTimeoutSeconds: 60,
  kubeletTimeoutSeconds: 60,
};
const CLEANUP = renderCleanupProgram(PARAMS);
const nodeCacheRules = () => rulesFor(LOCAL_DNS_IP, HEALTH_PORT);

function skipReason(): string | false {
  const missing = ["unshare", "iptables-legacy", "iptables-nft", "ip"].filter(
    (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0,
  );
  const why =
    process.getuid?.() !== 0
      ? "needs root (network namespaces)"
      : missing.length > 0
        ? `needs ${missing.join(", ")} (apt-get install iptables iproute2 util-linux)`
        : undefined;
  if (why === undefined) return false;
  if (process.env.CI === "true") throw new Error(`cleanup test: ${why} (CI=true)`);
  return why;
}

/** Rules that are not the cleanup's to remove. */
const OTHERS = [
  `-t raw -I PREROUTING -p udp -d ${OTHER_IP} --dport 53 -j NOTRACK -m comment --comment "NodeLocal DNS Cache: skip conntrack"`,
  `-t filter -I INPUT -p udp -d ${LOCAL_DNS_IP} --dport 53 -j ACCEPT -m comment --comment "kube-proxy: keep"`,
  `-t filter -I INPUT -p tcp -d ${LOCAL_DNS_IP} --dport 53 -j ACCEPT`,
];

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** `<variant>-save` of raw and filter after the cleanup, rule lines only. */
  rules: Record<"legacy" | "nft", string[]>;
  /** The `nodelocaldns` link's addresses after the cleanup, or "absent". */
  link: string;
  /** The legacy iptables tables the kernel has after the cleanup (/proc/net/ip_tables_names). */
  legacyTables: string[];
}

/**
 * In a new network namespace: `setup` (bash), then the cleanup as its Command runs it
 * (`bash -s delete`, the program on stdin), `runs` times, then the state left.
 */
function inNetns(setup: string, runs = 1): Outcome[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-cleanup-"));
  try {
    fs.writeFileSync(path.join(dir, "cleanup.bash"), CLEANUP);
    const script = `
set -euo pipefail
ip link set lo up
${setup}
for run in $(seq 1 ${runs}); do
  code=0
  bash -s delete <"${dir}/cleanup.bash" >"${dir}/out-\${run}" 2>"${dir}/err-\${run}" || code=$?
  echo "\${code}" >"${dir}/code-\${run}"
  sort /proc/net/ip_tables_names >"${dir}/tables-\${run}" 2>/dev/null || true
  for variant in legacy nft; do
    { iptables-\${variant}-save -t raw; iptables-\${variant}-save -t filter; } 2>/dev/null |
      grep '^-A' >"${dir}/\${variant}-\${run}" || true
  done
  ip -o addr show dev nodelocaldns 2>/dev/null | awk '{print $4}' | paste -sd, >"${dir}/link-\${run}" ||
    echo absent >"${dir}/link-\${run}"
done
`;
    // Its own pid namespace and /proc too: the cleanup looks for node-cache in /proc, and must
    // see only what this case starts, not a node-cache that runs elsewhere on the machine.
    const namespaces = ["--net", "--pid", "--fork", "--mount-proc"];
    const r = spawnSync("unshare", [...namespaces, "--", "bash", "-c", script], {
      encoding: "utf8",
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
    assert.equal(r.status, 0, `the namespace's script failed: ${r.stderr}`);
    const read = (name: string) => fs.readFileSync(path.join(dir, name), "utf8");
    return Array.from({ length: runs }, (_, i) => ({
      code: Number(read(`code-${i + 1}`)),
      stdout: read(`out-${i + 1}`),
      stderr: read(`err-${i + 1}`),
      rules: {
        legacy: read(`legacy-${i + 1}`)
          .split("\n")
          .filter(Boolean),
        nft: read(`nft-${i + 1}`)
          .split("\n")
          .filter(Boolean),
      },
      link: read(`link-${i + 1}`).trim() || "absent",
      legacyTables: read(`tables-${i + 1}`)
        .split("\n")
        .filter(Boolean),
    }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const LINK = linkScript(LOCAL_DNS_IP);

describe("cleanup after the DaemonSet is gone", { skip: skipReason() }, () => {
  it("removes node-cache's 12 rules and its link, and nothing else; a second run finds nothing", () => {
    const [first, second] = inNetns(
      [addRulesScript("nft", nodeCacheRules()), addRulesScript("nft", OTHERS), LINK].join("\n"),
      2,
    );
    assert.equal(first!.code, 0, first!.stderr);
    assert.equal(
      first!.stdout,
      "nodelocaldns cleanup on node-1: removed 12 iptables rule(s); interface nodelocaldns: removed\n",
    );
    assert.equal(first!.link, "absent");
    // Listing a legacy table would have created it: the node uses nft, and keeps no legacy table.
    assert.deepEqual(first!.legacyTables, []);
    assert.deepEqual(first!.rules.legacy, []);
    assert.deepEqual([...first!.rules.nft].sort(), [
      `-A INPUT -d ${LOCAL_DNS_IP}/32 -p tcp -m tcp --dport 53 -j ACCEPT`,
      `-A INPUT -d ${LOCAL_DNS_IP}/32 -p udp -m udp --dport 53 -m comment --comment "kube-proxy: keep" -j ACCEPT`,
      `-A PREROUTING -d ${OTHER_IP}/32 -p udp -m udp --dport 53 -m comment --comment "NodeLocal DNS Cache: skip conntrack" -j NOTRACK`,
    ]);
    assert.equal(second!.code, 0, second!.stderr);
    assert.equal(
      second!.stdout,
      "nodelocaldns cleanup on node-1: removed 0 iptables rule(s); interface nodelocaldns: none\n",
    );
    assert.deepEqual(second!.rules, first!.rules);
  });

  it("removes them from both backends, and a rule node-cache added twice", () => {
    const rules = nodeCacheRules();
    const [outcome] = inNetns(
      [
        addRulesScript("legacy", rules),
        addRulesScript("nft", rules),
        addRulesScript("nft", rules.slice(0, 1)),
      ].join("\n"),
    );
    assert.equal(outcome!.code, 0, outcome!.stderr);
    assert.match(
      outcome!.stdout,
      /: removed 25 iptables rule\(s\); interface nodelocaldns: none\n$/,
    );
    assert.deepEqual(outcome!.rules, { legacy: [], nft: [] });
  });

  it("leaves a nodelocaldns link that does not hold the address", () => {
    const [outcome] = inNetns(
      `ip link add nodelocaldns type bridge\nip addr add ${OTHER_IP}/32 dev nodelocaldns`,
    );
    assert.equal(outcome!.code, 0, outcome!.stderr);
    assert.match(outcome!.stdout, /interface nodelocaldns: none\n$/);
    assert.equal(outcome!.link, `${OTHER_IP}/32`);
  });

  it("touches nothing while a node-cache process runs", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-node-cache-"));
    // A process whose name is node-cache, as the cleanup sees one: /proc/<pid>/comm.
    const binary = path.join(dir, "node-cache");
    fs.copyFileSync("/bin/sleep", binary);
    fs.chmodSync(binary, 0o755);
    try {
      const [outcome] = inNetns(
        [
          `"${binary}" 60 & trap 'kill $!' EXIT`,
          addRulesScript("nft", nodeCacheRules()),
          LINK,
        ].join("\n"),
      );
      assert.equal(outcome!.code, 0, outcome!.stderr);
      assert.equal(
        outcome!.stdout,
        "nodelocaldns cleanup on node-1: node-cache still runs here; nothing removed\n",
      );
      assert.equal(outcome!.rules.nft.length, 12);
      assert.equal(outcome!.link, `${LOCAL_DNS_IP}/32`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses any action but delete, changing nothing", () => {
    const r = spawnSync("bash", ["-s", "create"], { input: CLEANUP, encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "usage: bash -s delete < cleanup\n");
    assert.equal(r.stdout, "");
  });
});
