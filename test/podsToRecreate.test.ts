// The pods to recreate after a switch, as tables: the switch time a node program states, which
// pods a kubelet set up before its node's switch and that ask kube-dns, their workloads and the
// commands that restart them, and the line that says so.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  podSummaries,
  podsLine,
  podsToRecreate,
  restartPatch,
  switchedAtFromOutput,
  switchedInThisUpdate,
  switchesOfThisUpdate,
  switchTimes,
  uninstallLine,
  workloadsToRestart,
} from "../components/podsToRecreate";

const SWITCHED = "2026-11-26T10:00:00Z";
const BEFORE = "2026-11-26T09:00:00Z";
const AFTER = "2026-11-26T11:00:00Z";

function pod(name: string, extra: { [key: string]: unknown } = {}) {
  const {
    created = BEFORE,
    node = "n1",
    spec = {},
    owner,
    labels,
    phase,
    deleting,
  } = extra as {
    created?: string | Date;
    node?: string;
    spec?: object;
    owner?: { kind: string; name: string };
    labels?: Record<string, string>;
    phase?: string;
    deleting?: boolean;
  };
  return {
    metadata: {
      namespace: "shop",
      name,
      creationTimestamp: created,
      ...(deleting ? { deletionTimestamp: AFTER } : {}),
      ...(labels ? { labels } : {}),
      ...(owner ? { ownerReferences: [{ ...owner, controller: true }] } : {}),
    },
    spec: { nodeName: node, ...spec },
    status: { phase: phase ?? "Running" },
  };
}

describe("switchedAtFromOutput", () => {
  it("takes the time of the last switch line, and nothing from a run that switched nothing", () => {
    const out = [
      "nodelocaldns[n1]: switched: cluster DNS 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml at 2026-11-26T10:00:00Z",
      "nodelocaldns[n1]: switched: cluster DNS 169.254.20.10 -> 169.254.20.10,10.96.0.10 in /var/lib/kubelet/config.yaml at 2026-11-26T10:05:00Z",
    ].join("\n");
    assert.equal(switchedAtFromOutput(out), "2026-11-26T10:05:00Z");
    assert.equal(
      switchedAtFromOutput("nodelocaldns[n1]: already switched: kubelet uses 169.254.20.10"),
      undefined,
    );
  });

  it("keeps the last update's time for a node whose switch said nothing this time", () => {
    const line = `nodelocaldns[n2]: switched: cluster DNS a -> b in /f at ${AFTER}`;
    assert.deepEqual(
      switchTimes(
        ["n1", "n2", "n3"],
        ["nodelocaldns[n1]: already switched", line, undefined],
        [
          { name: "n1", switchedAt: SWITCHED },
          { name: "n2", switchedAt: SWITCHED },
        ],
      ),
      { n1: SWITCHED, n2: AFTER, n3: undefined },
    );
  });
});

describe("switchedInThisUpdate", () => {
  const line = (at: string) =>
    `nodelocaldns[n]: restarting kubelet\nnodelocaldns[n]: switched: cluster DNS 10.96.0.10 -> ` +
    `169.254.20.10 in /etc/kubernetes/kubelet at ${at}\n`;
  const RECORDED = "2026-11-20T08:00:00Z";
  const NOW = "2026-11-26T12:00:00Z";

  it("is true for a switch whose output states a time the last update did not record", () => {
    assert.equal(switchedInThisUpdate(line(NOW), RECORDED), true);
    assert.equal(switchedInThisUpdate(line(NOW), undefined), true, "a first switch");
  });

  it("is false for a Command the engine did not run, or a switch that found nothing to do", () => {
    assert.equal(switchedInThisUpdate(line(RECORDED), RECORDED), false, "its old output");
    assert.equal(switchedInThisUpdate(undefined, RECORDED), false, "no output (not created)");
    const nothingToDo = "nodelocaldns[n]: already switched: kubelet uses 169.254.20.10\n";
    assert.equal(switchedInThisUpdate(nothingToDo, undefined), false);
  });
});

describe("switchesOfThisUpdate", () => {
  it("keeps the time of each node that this update switched, and only those", () => {
    const line = (at: string) => `nodelocaldns[n]: switched: cluster DNS a -> b in f at ${at}\n`;
    assert.deepEqual(
      switchesOfThisUpdate(
        ["new", "repaired", "untouched", "not-run"],
        [line(AFTER), line(AFTER), line(SWITCHED), undefined],
        [
          { name: "repaired", switchedAt: SWITCHED },
          { name: "untouched", switchedAt: SWITCHED },
          { name: "not-run", switchedAt: SWITCHED },
        ],
      ),
      { new: AFTER, repaired: AFTER },
    );
  });
});

describe("podsToRecreate", () => {
  const items = [
    pod("web-5d9c-abcde", {
      owner: { kind: "ReplicaSet", name: "web-5d9c" },
      labels: { "pod-template-hash": "5d9c" },
    }),
    pod("web-5d9c-fghij", {
      owner: { kind: "ReplicaSet", name: "web-5d9c" },
      labels: { "pod-template-hash": "5d9c" },
    }),
    pod("db-0", { owner: { kind: "StatefulSet", name: "db" }, created: new Date(BEFORE) }),
    pod("bare"),
    pod("job-x", { owner: { kind: "Job", name: "x" } }),
    pod("new", { created: AFTER }),
    pod("host-net", { spec: { hostNetwork: true } }),
    pod("host-net-cluster-first", {
      spec: { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" },
      owner: { kind: "DaemonSet", name: "agent" },
    }),
    pod("own-dns", { spec: { dnsPolicy: "None" } }),
    pod("done", { phase: "Succeeded" }),
    pod("going", { deleting: true }),
    pod("elsewhere", { node: "n9" }),
    pod("adopted", { node: "n2" }),
    { metadata: { name: "malformed" } },
  ];
  const pods = podSummaries(items);

  it("finds the pods set up before their node's switch that ask kube-dns", () => {
    const report = podsToRecreate(pods, { n1: SWITCHED, n2: undefined });
    assert.equal(report.count, 6);
    assert.deepEqual(report.commands, [
      "kubectl -n shop rollout restart daemonset/agent",
      "kubectl -n shop rollout restart deployment/web",
      "kubectl -n shop rollout restart statefulset/db",
    ]);
    assert.deepEqual(report.others, ["shop/bare", "shop/job-x"]);
    assert.deepEqual([report.workloads, report.byHand], [3, 2]);
    assert.deepEqual(report.unknownSwitchTime, ["n2"]);
  });

  it("finds, for an uninstall, the pods set up while their node was switched", () => {
    const report = podsToRecreate(
      podSummaries([
        ...items,
        pod("api-7f-xyz", {
          created: AFTER,
          owner: { kind: "ReplicaSet", name: "api-7f" },
          labels: { "pod-template-hash": "7f" },
        }),
        pod("same-second", { created: SWITCHED }),
      ]),
      { n1: SWITCHED, n2: undefined },
    );
    assert.deepEqual(report.afterUninstall, {
      count: 3,
      workloads: 1,
      commands: ["kubectl -n shop rollout restart deployment/api"],
      byHand: 2,
      others: ["shop/new", "shop/same-second"],
    });
    // The switch's own second is on both sides: never left out.
    assert.equal(report.count, 7);
  });

  it("counts every workload and pod, and lists at most 50 of each", () => {
    const many = podSummaries(
      Array.from({ length: 60 }, (_, i) => [
        pod(`app${i}-5d9c-a`, {
          owner: { kind: "ReplicaSet", name: `app${i}-5d9c` },
          labels: { "pod-template-hash": "5d9c" },
        }),
        pod(`bare${i}`),
      ]).flat(),
    );
    const report = podsToRecreate(many, { n1: SWITCHED });
    assert.deepEqual(
      [report.count, report.workloads, report.commands.length, report.byHand, report.others.length],
      [120, 60, 50, 60, 50],
    );
    assert.match(
      podsLine(report),
      /; 60 workload\(s\) to restart, e\.g\. .*; 60 pod\(s\) to recreate by hand;/,
    );
  });

  it("restarts each workload once, stamped with the latest switch among its pods' nodes", () => {
    const spread = podSummaries([
      ...["n1", "n2", "n3"].map((node, i) =>
        pod(`web-5d9c-${i}`, {
          node,
          owner: { kind: "ReplicaSet", name: "web-5d9c" },
          labels: { "pod-template-hash": "5d9c" },
        }),
      ),
      pod("db-0", { owner: { kind: "StatefulSet", name: "db" } }),
      pod("bare"),
    ]);
    // n3 switched before its web pod was created: that pod is not one to recreate.
    const restarts = workloadsToRestart(spread, { n1: SWITCHED, n2: AFTER, n3: BEFORE });
    assert.deepEqual(restarts, [
      { namespace: "shop", workload: "deployment/web", switchedAt: AFTER },
      { namespace: "shop", workload: "statefulset/db", switchedAt: SWITCHED },
    ]);
    assert.deepEqual(workloadsToRestart(spread, {}), [], "no switched node, nothing to restart");
  });

  it("restarts as `kubectl rollout restart` does: one pod template annotation", () => {
    assert.deepEqual(restartPatch(SWITCHED), {
      spec: {
        template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": SWITCHED } } },
      },
    });
  });

  it("counts a pod created in the switch's own second (times are to the second)", () => {
    assert.equal(
      podsToRecreate(podSummaries([pod("same", { created: BEFORE })]), { n1: BEFORE }).count,
      1,
    );
  });

  it("says it in one line", () => {
    assert.equal(
      podsLine(podsToRecreate(pods, { n1: SWITCHED, n2: undefined })),
      "pods to recreate: 6, created before their node's switch and still asking kube-dns; " +
        "3 workload(s) to restart, e.g. kubectl -n shop rollout restart daemonset/agent; " +
        "2 pod(s) to recreate by hand; stack output podsToRecreate; " +
        "switch time not known on 1 node(s)",
    );
    assert.equal(
      podsLine(podsToRecreate(pods, { n1: "2026-11-26T08:59:59Z" })),
      "pods to recreate: none (every pod on a switched node was created after its switch)",
    );
  });

  it("says in one more line what an uninstall would leave to recreate", () => {
    assert.equal(
      uninstallLine(podsToRecreate(pods, { n1: "2026-11-26T08:59:59Z" })),
      "pods to recreate after an uninstall: 7, created while their node was switched (they keep " +
        "asking the cache's address); 3 workload(s) to restart, e.g. kubectl -n shop rollout " +
        "restart daemonset/agent; 3 pod(s) to recreate by hand; " +
        "stack output podsToRecreate.afterUninstall",
    );
    assert.equal(
      uninstallLine(podsToRecreate(pods, { n1: SWITCHED, n2: undefined })),
      "pods to recreate after an uninstall: 1, created while their node was switched (they keep " +
        "asking the cache's address); no workload owns them; 1 pod(s) to recreate by hand; " +
        "stack output podsToRecreate.afterUninstall",
    );
    assert.equal(
      uninstallLine(podsToRecreate(pods, {})),
      "pods to recreate after an uninstall: none (no pod on a switched node was created while switched)",
    );
  });
});
