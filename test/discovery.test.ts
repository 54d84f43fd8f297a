// Discovery's pure half: label selectors, the NodeList reader and the fleet plan, without a cluster.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  clusterNodesFromList,
  fleetPlan,
  managedNodesFromRecord,
  managedNodesRecord,
  matchesSelector,
  parseLabelSelector,
  type ClusterNode,
  type DiscoverSettings,
} from "../components/discovery";
import { parseKnownHosts } from "../components/knownHosts";
import type { NodeSettings } from "../components/settings";

const KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V";

describe("parseLabelSelector", () => {
  const cases: [string, ReturnType<typeof parseLabelSelector>][] = [
    ["", []],
    ["role=worker", [{ key: "role", op: "in", values: ["worker"] }]],
    ["role==worker", [{ key: "role", op: "in", values: ["worker"] }]],
    ["role!=gpu", [{ key: "role", op: "notin", values: ["gpu"] }]],
    [
      "node-role.kubernetes.io/worker, !node-role.kubernetes.io/control-plane",
      [
        { key: "node-role.kubernetes.io/worker", op: "exists" },
        { key: "node-role.kubernetes.io/control-plane", op: "!exists" },
      ],
    ],
    [
      "zone in (a, b),tier notin (x)",
      [
        { key: "zone", op: "in", values: ["a", "b"] },
        { key: "tier", op: "notin", values: ["x"] },
      ],
    ],
    ["role=", [{ key: "role", op: "in", values: [""] }]],
    ['role="worker"', '"role="worker"": not a label value'],
    ["-bad=1", '"-bad=1": not a label key'],
    ["zone in (a b)", '"zone in (a b)": not a label value list'],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)}`, () => assert.deepEqual(parseLabelSelector(text), expected));
  }

  it("matches as Kubernetes does: a missing key satisfies != and notin", () => {
    const selector = parseLabelSelector("role!=gpu,zone notin (b)") as never;
    assert.equal(matchesSelector({}, selector), true);
    assert.equal(matchesSelector({ role: "gpu" }, selector), false);
    assert.equal(matchesSelector({ zone: "b" }, selector), false);
    assert.equal(matchesSelector({ role: "cpu", zone: "a" }, selector), true);
  });
});

/** A Node as `kubectl get nodes -o json` prints it. */
function apiNode(
  name: string,
  options: {
    labels?: Record<string, string>;
    ip?: string;
    ready?: boolean;
    unschedulable?: boolean;
    taint?: string;
    deleting?: boolean;
  } = {},
) {
  return {
    metadata: {
      name,
      labels: options.labels ?? {},
      ...(options.deleting ? { deletionTimestamp: "2026-11-25T00:00:00Z" } : {}),
    },
    spec: {
      ...(options.unschedulable ? { unschedulable: true } : {}),
      ...(options.taint ? { taints: [{ key: options.taint, effect: "NoSchedule" }] } : {}),
    },
    status: {
      addresses: [
        { type: "InternalIP", address: options.ip ?? "10.0.0.1" },
        { type: "Hostname", address: name },
      ],
      conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }],
    },
  };
}

describe("clusterNodesFromList", () => {
  it("reads names, labels, addresses, readiness and why a node is leaving", () => {
    const nodes = clusterNodesFromList({
      kind: "NodeList",
      items: [
        apiNode("a", { labels: { role: "w" } }),
        apiNode("b", { ready: false }),
        apiNode("c", { unschedulable: true }),
        apiNode("d", { taint: "ToBeDeletedByClusterAutoscaler" }),
        apiNode("e", { deleting: true }),
      ],
    });
    assert.deepEqual(
      nodes.map((n) => [n.name, n.ready, n.leaving]),
      [
        ["a", true, undefined],
        ["b", false, undefined],
        ["c", true, "cordoned"],
        ["d", true, "tainted ToBeDeletedByClusterAutoscaler"],
        ["e", true, "being deleted"],
      ],
    );
    assert.deepEqual(nodes[0]!.labels, { role: "w" });
  });

  it("refuses what is not a NodeList", () => {
    assert.throws(() => clusterNodesFromList({ kind: "Node" }), /not a NodeList: no items list/);
    assert.throws(() => clusterNodesFromList({ items: [{}] }), /items\[0\] has no name/);
  });
});

const TEMPLATE: DiscoverSettings["template"] = {
  port: 22,
  user: "root",
  sudo: false,
  kubelet: { format: "auto" },
};

function discover(overrides: Partial<DiscoverSettings> = {}): DiscoverSettings {
  return {
    selectorText: "",
    selector: [],
    exclude: [],
    addressType: "InternalIP",
    template: TEMPLATE,
    ...overrides,
  };
}

function cluster(...items: ReturnType<typeof apiNode>[]): ClusterNode[] {
  return clusterNodesFromList({ items });
}

const entry = (name: string, host = "", extra: Partial<NodeSettings> = {}): NodeSettings => ({
  ...TEMPLATE,
  name,
  host,
  ...extra,
});

describe("fleetPlan", () => {
  it("takes the selected Nodes, sorted, each at its InternalIP with the ssh defaults", () => {
    const plan = fleetPlan(
      discover({ selector: parseLabelSelector("role=worker") as never, exclude: ["w3"] }),
      cluster(
        apiNode("w2", { labels: { role: "worker" }, ip: "10.0.0.2" }),
        apiNode("w1", { labels: { role: "worker" }, ip: "10.0.0.1" }),
        apiNode("w3", { labels: { role: "worker" }, ip: "10.0.0.3" }),
        apiNode("cp", { labels: { role: "control-plane" }, ip: "10.0.0.9" }),
      ),
      [],
      [],
    );
    assert.deepEqual(plan.nodes, [
      { ...TEMPLATE, name: "w1", host: "10.0.0.1" },
      { ...TEMPLATE, name: "w2", host: "10.0.0.2" },
    ]);
    assert.deepEqual(plan.retired, []);
  });

  it("an entry named after a Node overrides it; its host, when empty, is the Node's", () => {
    const plan = fleetPlan(
      discover({ addressType: "Hostname" }),
      cluster(apiNode("a"), apiNode("b")),
      [entry("a", "", { port: 2222, user: "ops" }), entry("b", "192.0.2.7")],
      [],
    );
    assert.deepEqual(
      plan.nodes.map((n) => [n.name, n.host, n.port, n.user]),
      [
        ["a", "a", 2222, "ops"],
        ["b", "192.0.2.7", 22, "root"],
      ],
    );
  });

  it("new NotReady or leaving Nodes are not switched; managed ones are left as they are", () => {
    const plan = fleetPlan(
      discover(),
      cluster(
        apiNode("new-down", { ready: false }),
        apiNode("new-cordoned", { unschedulable: true }),
        apiNode("old-down", { ready: false, ip: "10.0.0.5" }),
        apiNode("old-leaving", { taint: "ToBeDeletedByClusterAutoscaler", ip: "10.0.0.6" }),
      ),
      [],
      [
        { name: "old-down", host: "10.0.0.5", port: 22 },
        { name: "old-leaving", host: "10.0.0.6", port: 22 },
      ],
    );
    assert.deepEqual(
      plan.nodes.map((n) => n.name),
      ["old-down", "old-leaving"],
    );
    assert.deepEqual(plan.warnings.slice(0, 2), [
      "nodelocaldns:discover: not switched now: new-cordoned (cordoned), new-down (NotReady)",
      "nodelocaldns:discover: left as they are: old-down (NotReady), old-leaving (tainted ToBeDeletedByClusterAutoscaler)",
    ]);
  });

  it("a managed node gone from the cluster is retired; one relabelled out is simply not declared", () => {
    const plan = fleetPlan(
      discover({ selector: parseLabelSelector("role=worker") as never }),
      cluster(
        apiNode("kept", { labels: { role: "worker" }, ip: "10.0.0.1" }),
        apiNode("relabelled", { labels: { role: "batch" }, ip: "10.0.0.2" }),
      ),
      // The gone node's override entry stays in the config: no host, no second warning.
      [entry("gone", "", { port: 2222 })],
      [
        { name: "kept", host: "10.0.0.1", port: 22 },
        { name: "relabelled", host: "10.0.0.2", port: 22 },
        { name: "gone", host: "10.0.0.3", port: 2222 },
      ],
    );
    assert.deepEqual(
      plan.nodes.map((n) => n.name),
      ["kept"],
    );
    // The engine deletes the relabelled node's Commands, and so reverts it, as for any removed node.
    assert.deepEqual(plan.retired, [{ name: "gone", host: "10.0.0.3", port: 2222 }]);
    // The live view reads the cluster's other Nodes too (reported when on the cache).
    assert.deepEqual(plan.unselected, ["relabelled"]);
    assert.deepEqual(plan.warnings.slice(0, 1), [
      "nodelocaldns:discover: left the cluster, retired without a revert: gone",
    ]);
    assert.equal(plan.warnings.length, 2, "and the unpinned-key line: no word on the entry");
  });

  it("a recorded node that a failed update switched: retired when gone, new when NotReady", () => {
    const plan = fleetPlan(
      discover(),
      cluster(apiNode("kept", { ip: "10.0.0.1" }), apiNode("recorded-down", { ready: false })),
      [],
      [{ name: "kept", host: "10.0.0.1", port: 22 }],
      // The record of the failed update: it declared these, its outputs were not recorded.
      [
        { name: "kept", host: "10.0.0.1", port: 22 },
        { name: "recorded-gone", host: "10.0.0.7", port: 22 },
        { name: "recorded-down", host: "10.0.0.8", port: 22 },
      ],
    );
    assert.deepEqual(
      plan.nodes.map((n) => n.name),
      ["kept"],
    );
    assert.deepEqual(plan.retired, [{ name: "recorded-gone", host: "10.0.0.7", port: 22 }]);
    // Whether its switch ran is not known: as a new node, it is not switched while NotReady.
    assert.deepEqual(plan.warnings.slice(0, 2), [
      "nodelocaldns:discover: not switched now: recorded-down (NotReady)",
      "nodelocaldns:discover: left the cluster, retired without a revert: recorded-gone",
    ]);
  });

  it("explicit entries outside the cluster still work with a host, and are named without one", () => {
    const plan = fleetPlan(
      discover(),
      cluster(apiNode("a")),
      [entry("outside", "192.0.2.1"), entry("typo")],
      [],
    );
    assert.deepEqual(
      plan.nodes.map((n) => n.name),
      ["a", "outside"],
    );
    assert.ok(
      plan.warnings.includes(
        "nodelocaldns:nodes: typo is not a Node of the cluster and has no host: not switched",
      ),
    );
  });

  it("a Node without the chosen address type is not switched, and said so", () => {
    const plan = fleetPlan(discover({ addressType: "ExternalIP" }), cluster(apiNode("a")), [], []);
    assert.deepEqual(plan.nodes, []);
    assert.deepEqual(plan.warnings, [
      "nodelocaldns:discover: not switched now: a (no ExternalIP address)",
    ]);
  });

  it("pins host keys from known_hosts by address, and names the unpinned nodes in one line", () => {
    const { knownHosts } = parseKnownHosts(`10.0.0.1 ${KEY_A}\n`);
    const plan = fleetPlan(
      discover({ knownHosts }),
      cluster(
        apiNode("a", { ip: "10.0.0.1" }),
        apiNode("b", { ip: "10.0.0.2" }),
        apiNode("c", { ip: "10.0.0.3" }),
      ),
      [],
      [],
    );
    assert.equal(plan.nodes[0]!.hostKey, KEY_A);
    assert.equal(plan.nodes[1]!.hostKey, undefined);
    assert.deepEqual(plan.warnings, [
      "nodelocaldns:nodes[*].hostKey: not pinned for 2 of 3 nodes (b, c): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)",
    ]);
  });
});

describe("the managed-nodes record", () => {
  const nodes = [
    { name: "w1", host: "10.0.0.1", port: 22 },
    { name: "w2", host: "fd00::2", port: 2222 },
  ];

  it("is one node a line, and reads back as written", () => {
    const text = managedNodesRecord(nodes);
    assert.equal(
      text,
      '[\n{"name":"w1","host":"10.0.0.1","port":22},\n{"name":"w2","host":"fd00::2","port":2222}\n]\n',
    );
    assert.deepEqual(managedNodesFromRecord(text), nodes);
    assert.equal(managedNodesRecord([]), "[]\n");
  });

  it("reads a missing or malformed record as no node, and drops malformed entries", () => {
    assert.deepEqual(managedNodesFromRecord(undefined), []);
    assert.deepEqual(managedNodesFromRecord("[{"), []);
    assert.deepEqual(managedNodesFromRecord('{"name":"w1"}'), []);
    assert.deepEqual(
      managedNodesFromRecord('[{"name":"w1","host":"10.0.0.1","port":"22"},{"name":"w2"}]'),
      [],
    );
    assert.deepEqual(
      managedNodesFromRecord('[{"name":"w1","host":"h","port":22,"repairs":3,"extra":1}]'),
      [{ name: "w1", host: "h", port: 22 }],
    );
  });
});
