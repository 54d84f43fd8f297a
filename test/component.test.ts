// The component under Pulumi's mock runtime: which resources it registers, with which options, and
// that render writes exactly what it registers.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import type { NodeLocalDns } from "../components/nodeLocalDns";
import { DEFAULTS, Settings } from "../components/settings";
import { byUrn, Registration, startMockRuntime, unwrapSecret } from "./support/mockRuntime";
import { resolvedSettings } from "./support/settingsFixture";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-MATERIAL\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnFbvm4BNwc0sBhv3ZN1fQpaCtbDYIvZrQuQmPNDi5C";

const settings: Settings = resolvedSettings({
  localDnsIp: "169.254.25.10",
  clusterDomain: "corp.example",
  rollout: {
    ...DEFAULTS.rollout,
    batchSize: 2,
    readyTimeoutSeconds: 30,
    kubeletTimeoutSeconds: 20,
  },
  nodes: ["n1", "n2", "n3"].map((name, i) => ({
    name,
    host: `10.0.0.${11 + i}`,
    port: 22,
    user: i === 2 ? "ops" : "root",
    sudo: true,
    privateKey: PRIVATE_KEY,
    hostKey: HOST_KEY,
    kubelet: { format: "auto" as const },
  })),
});

let regs: Registration[];
let component: NodeLocalDns;

before(async () => {
  const runtime = await startMockRuntime();
  // Imported after setMocks: static imports would load the SDK's resources against no runtime.
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  component = new NodeLocalDns("nodelocaldns", { settings });
  await runtime.settled();
  regs = runtime.registrations;
});

const ofType = (type: string) => regs.filter((r) => r.type === type);
const allCommands = () => ofType("command:remote:Command");
/** The kubelet switches, in node order. */
const commands = () =>
  allCommands().filter((r) => r.name.includes("-kubelet-") && !r.name.includes("-guard-"));
/** The revert guards, in node order. */
const guards = () => allCommands().filter((r) => r.name.includes("-guard-"));
/** The cleanups, in node order. */
const cleanups = () => allCommands().filter((r) => r.name.includes("-cleanup-"));
/** The switches and the guards: what runs before the DaemonSet goes. */
const kubeletCommands = () => [...commands(), ...guards()];
const single = (type: string, name: string) => {
  const found = regs.filter((r) => r.type === type && r.name === name);
  assert.equal(found.length, 1, `${type} ${name}`);
  return found[0];
};

describe("NodeLocalDns resources", () => {
  it("registers the component, the six objects, three Commands per node and a round's gate, and reads nothing", () => {
    assert.deepEqual(regs.map((r) => `${r.type} ${r.name}`).sort(), [
      "command:remote:Command nodelocaldns-cleanup-n1",
      "command:remote:Command nodelocaldns-cleanup-n2",
      "command:remote:Command nodelocaldns-cleanup-n3",
      "command:remote:Command nodelocaldns-kubelet-guard-n1",
      "command:remote:Command nodelocaldns-kubelet-guard-n2",
      "command:remote:Command nodelocaldns-kubelet-guard-n3",
      "command:remote:Command nodelocaldns-kubelet-n1",
      "command:remote:Command nodelocaldns-kubelet-n2",
      "command:remote:Command nodelocaldns-kubelet-n3",
      "kubernetes:apps/v1:DaemonSet nodelocaldns-daemonset",
      "kubernetes:core/v1:ConfigMap nodelocaldns-corefile",
      "kubernetes:core/v1:ConfigMap nodelocaldns-node-program",
      "kubernetes:core/v1:Service nodelocaldns-kube-dns-upstream",
      "kubernetes:core/v1:Service nodelocaldns-metrics",
      "kubernetes:core/v1:ServiceAccount nodelocaldns-service-account",
      "nodelocaldns:index:NodeLocalDns nodelocaldns",
      "pulumi:index:Stash nodelocaldns-round-1",
      "pulumi:providers:command nodelocaldns-command",
    ]);
    assert.equal(regs.filter((r) => r.read).length, 0, "clusterDnsIp is configured: no lookup");
  });

  it("names every object as upstream does, in kube-system, as children of the component", () => {
    const root = single("nodelocaldns:index:NodeLocalDns", "nodelocaldns");
    const k8s = regs.filter((r) => r.type.startsWith("kubernetes:"));
    assert.deepEqual(k8s.map((r) => (r.inputs.metadata as { name: string }).name).sort(), [
      "kube-dns-upstream",
      "node-local-dns",
      "node-local-dns",
      "node-local-dns",
      "node-local-dns",
      "node-local-dns-node-program",
    ]);
    for (const r of [...k8s, ...allCommands()]) {
      assert.equal(r.parent, root.urn, `${r.name} is a child of the component`);
    }
    for (const r of k8s) {
      assert.equal((r.inputs.metadata as { namespace: string }).namespace, "kube-system");
    }
  });

  it("replaces every object delete-first: each has a fixed name", () => {
    for (const r of regs.filter((r) => r.type.startsWith("kubernetes:") && !r.read)) {
      assert.equal(r.deleteBeforeReplace, true, r.name);
    }
  });

  it("creates the DaemonSet after kube-dns-upstream, the ConfigMaps, the ServiceAccount and the cleanups", () => {
    const ds = single("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
    const deps = ds.dependencies.map((urn) => byUrn(regs, urn).name).sort();
    assert.deepEqual(deps, [
      "nodelocaldns-cleanup-n1",
      "nodelocaldns-cleanup-n2",
      "nodelocaldns-cleanup-n3",
      "nodelocaldns-corefile",
      "nodelocaldns-kube-dns-upstream",
      "nodelocaldns-node-program",
      "nodelocaldns-service-account",
    ]);
  });

  it("exposes the addresses", async () => {
    assert.equal(component.localDnsIp, "169.254.25.10");
    assert.equal(await new Promise((r) => component.clusterDnsIp.apply(r)), "10.96.0.10");
  });
});

describe("NodeLocalDns kubelet Commands", () => {
  it("depend on the DaemonSet, so destroy reverts kubelet before it and its ConfigMaps go", () => {
    const ds = single("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
    const cm = single("kubernetes:core/v1:ConfigMap", "nodelocaldns-corefile");
    const program = single("kubernetes:core/v1:ConfigMap", "nodelocaldns-node-program");
    // The ConfigMaps through the DaemonSet: not named again in each Command's state.
    assert.ok(ds.dependencies.includes(cm.urn) && ds.dependencies.includes(program.urn));
    for (const cmd of kubeletCommands()) {
      assert.ok(cmd.dependencies.includes(ds.urn), `${cmd.name} depends on the DaemonSet`);
      assert.ok(!cmd.dependencies.includes(cm.urn), `${cmd.name}: the ConfigMap via the DaemonSet`);
      assert.ok(!cmd.dependencies.includes(program.urn), `${cmd.name}: the program via it too`);
    }
  });

  it("each switch depends on its node's revert guard, so destroy deletes the switch first", () => {
    for (const [i, cmd] of commands().entries()) {
      assert.equal(guards()[i].name, cmd.name.replace("-kubelet-", "-kubelet-guard-"));
      assert.ok(cmd.dependencies.includes(guards()[i].urn), `${cmd.name} depends on its guard`);
      assert.ok(
        !guards()[i].dependencies.some((urn) => commands().some((c) => c.urn === urn)),
        "a guard depends on no switch",
      );
    }
  });

  it("use the component's own command provider, registered before the DaemonSet", () => {
    const provider = single("pulumi:providers:command", "nodelocaldns-command");
    const ds = single("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
    assert.ok(regs.indexOf(provider) < regs.indexOf(ds), "registered first");
    for (const cmd of allCommands()) {
      assert.ok(cmd.provider.startsWith(`${provider.urn}::`), `${cmd.name}: ${cmd.provider}`);
    }
  });

  it("replace delete-first, cascade a DaemonSet replacement, and never skip their delete", () => {
    const ds = single("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
    for (const cmd of allCommands()) {
      assert.equal(cmd.deleteBeforeReplace, true, cmd.name);
      assert.equal(cmd.retainOnDelete, false, cmd.name);
      assert.equal(cmd.deletedWith, "", cmd.name);
    }
    for (const cmd of commands()) assert.deepEqual(cmd.replaceWith, [ds.urn], cmd.name);
    // A guard replaced with the DaemonSet would run its revert after the switch re-switched.
    for (const guard of guards()) assert.deepEqual(guard.replaceWith, [], guard.name);
    for (const cleanup of cleanups()) assert.deepEqual(cleanup.replaceWith, [], cleanup.name);
  });

  it("cleanups: the DaemonSet depends on them, so destroy runs them after it is gone", () => {
    const ds = single("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
    for (const cleanup of cleanups()) {
      assert.ok(ds.dependencies.includes(cleanup.urn), `the DaemonSet depends on ${cleanup.name}`);
      assert.deepEqual(cleanup.dependencies, [], `${cleanup.name} depends on nothing`);
    }
  });

  it("chain the batches: batch k+1 depends on a gate that depends on every switch of batch k", () => {
    const urnOf = (name: string) => single("command:remote:Command", name).urn;
    const gate = single("pulumi:index:Stash", "nodelocaldns-round-1");
    assert.deepEqual(
      gate.dependencies.sort(),
      [urnOf("nodelocaldns-kubelet-n1"), urnOf("nodelocaldns-kubelet-n2")].sort(),
    );
    assert.equal(gate.inputs.input, 2, "the gate's value: its round's node count");
    assert.equal(gate.parent, single("nodelocaldns:index:NodeLocalDns", "nodelocaldns").urn);
    const n3 = single("command:remote:Command", "nodelocaldns-kubelet-n3");
    assert.ok(n3.dependencies.includes(gate.urn));
    assert.ok(!n3.dependencies.includes(urnOf("nodelocaldns-kubelet-n1")), "through the gate");
    const n2 = single("command:remote:Command", "nodelocaldns-kubelet-n2");
    assert.ok(!n2.dependencies.includes(urnOf("nodelocaldns-kubelet-n1")), "same batch");
  });

  it("connect with a secret connection per node", () => {
    const cmd = single("command:remote:Command", "nodelocaldns-kubelet-n3");
    const { secret, value } = unwrapSecret(cmd.inputs.connection);
    assert.equal(secret, true, "connection is a secret input");
    // dialErrorLimit and perDialTimeout are the provider's own defaults.
    assert.deepEqual(value, {
      dialErrorLimit: 10,
      perDialTimeout: 15,
      host: "10.0.0.13",
      port: 22,
      user: "ops",
      privateKey: PRIVATE_KEY,
      hostKey: HOST_KEY,
    });
  });

  it("run the switch launcher and the guard from stdin, through sudo for a non-root user; the guard on delete only", async () => {
    const { renderGuardProgram, renderSwitchLauncher } = await import("../components/nodeScript");
    const { nodeScriptParams } = await import("../components/nodeCommand");
    const s = resolvedSettings({ ...settings, clusterDnsIp: "10.96.0.10" });
    for (const [i, node] of settings.nodes.entries()) {
      const run = node.user === "root" ? "bash -s" : "sudo -n bash -s";
      const params = nodeScriptParams(s, node);
      for (const [cmd, program] of [
        [commands()[i], renderSwitchLauncher(params)],
        [guards()[i], renderGuardProgram(params)],
      ] as const) {
        assert.equal(cmd.inputs.delete, `${run} delete`);
        assert.equal(cmd.inputs.stdin, program);
        assert.deepEqual(cmd.inputs.triggers, [node.host, node.port, s.stateDir]);
      }
      assert.equal(commands()[i].inputs.create, `${run} create`);
      assert.equal(commands()[i].inputs.update, `${run} update`);
      // Without create or update, the command provider records the guard without connecting.
      assert.equal(guards()[i].inputs.create, undefined);
      assert.equal(guards()[i].inputs.update, undefined);
    }
  });

  it("run the cleanup from stdin on delete only: up never connects for it", async () => {
    const { renderCleanupProgram } = await import("../components/nodeScript");
    const { nodeScriptParams } = await import("../components/nodeCommand");
    const s = resolvedSettings({ ...settings, clusterDnsIp: "10.96.0.10" });
    for (const [i, node] of settings.nodes.entries()) {
      const run = node.user === "root" ? "bash -s" : "sudo -n bash -s";
      const cleanup = cleanups()[i];
      assert.equal(cleanup.name, `nodelocaldns-cleanup-${node.name}`);
      assert.equal(cleanup.inputs.create, undefined);
      assert.equal(cleanup.inputs.update, undefined);
      assert.equal(cleanup.inputs.delete, `${run} delete`);
      assert.equal(cleanup.inputs.stdin, renderCleanupProgram(nodeScriptParams(s, node)));
      assert.equal(cleanup.inputs.triggers, undefined);
    }
  });

  it("put no secret in any command text, stdin or other plain input", () => {
    for (const cmd of allCommands()) {
      const { connection, ...plain } = cmd.inputs;
      assert.ok(unwrapSecret(connection).secret);
      const text = JSON.stringify(plain);
      assert.ok(!text.includes("SECRET-MATERIAL"), `${cmd.name} leaks the private key`);
      assert.ok(!text.includes("PRIVATE KEY"), `${cmd.name} leaks the private key`);
    }
  });
});

describe("render equals what the component registers", () => {
  it("manifests.yaml holds exactly the registered Kubernetes objects, in apply order", async () => {
    const { renderStack } = await import("../components/render");
    const files = renderStack(resolvedSettings({ ...settings, clusterDnsIp: "10.96.0.10" }));
    const manifests = files.find((f) => f.path === "manifests.yaml");
    assert.ok(manifests);
    const rendered = parseAllDocuments(manifests.content).map((d) => d.toJSON());
    const registered = regs.filter((r) => r.type.startsWith("kubernetes:")).map((r) => r.inputs);
    const key = (o: Record<string, unknown>) =>
      `${String(o.kind)}/${(o.metadata as { name: string }).name}`;
    assert.deepEqual(
      [...registered].sort((a, b) => key(a).localeCompare(key(b))),
      [...rendered].sort((a, b) => key(a).localeCompare(key(b))),
    );
    assert.deepEqual(rendered.map(key), [
      "ServiceAccount/node-local-dns",
      "Service/kube-dns-upstream",
      "ConfigMap/node-local-dns",
      "ConfigMap/node-local-dns-node-program",
      "DaemonSet/node-local-dns",
      "Service/node-local-dns",
    ]);
  });

  it("each node's rendered programs are its Commands' stdin, byte for byte", async () => {
    const { renderStack } = await import("../components/render");
    const files = renderStack(resolvedSettings({ ...settings, clusterDnsIp: "10.96.0.10" }));
    const content = (path: string) => files.find((f) => f.path === path)?.content;
    for (const [i, node] of settings.nodes.entries()) {
      assert.equal(content(`nodes/${node.name}/switch.bash`), commands()[i].inputs.stdin);
      assert.equal(content(`nodes/${node.name}/guard.bash`), guards()[i].inputs.stdin);
      assert.equal(content(`nodes/${node.name}/cleanup.bash`), cleanups()[i].inputs.stdin);
      const lines = content(`nodes/${node.name}/commands.txt`) ?? "";
      for (const action of ["create", "update", "delete"]) {
        assert.ok(lines.includes(`switch ${action}: ${String(commands()[i].inputs[action])} <`));
      }
      assert.ok(lines.includes(`guard  delete: ${String(guards()[i].inputs.delete)} <`));
      assert.ok(!lines.includes("guard  create"));
      assert.ok(lines.includes(`cleanup delete: ${String(cleanups()[i].inputs.delete)} <`));
    }
  });
});
