// `pulumi up` and `pulumi destroy` of this project for real: the Pulumi engine (CLI 3.274.1) and
// the kubernetes provider built from their Go modules, the command provider's stand-in, a local
// control plane, systemd test nodes reached over SSH on loopback, and the node-cache stand-in
// following the DaemonSet on every node (test/e2e/pulumi/cluster.ts). Configured with the real
// CLI's `pulumi config set [--secret] [--path]`, run through the Automation API with the project's
// own Pulumi.yaml and index.ts (the nodejs language host cannot be built here). The scenarios run
// in order on one stack, as an operator's days would.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { main as render } from "../../cli/render";
import { ORIGINAL_ANNOTATION } from "../../components/kubeletConfigMap";
import { addRulesScript, linkScript, nodeCacheRules } from "../support/nodeCacheLeftovers";
import { KUBELET_LAYOUTS } from "../support/systemdNode";
import { E2eCluster, KUBE_DNS_IP, type ClusterNode } from "./pulumi/cluster";
import { PulumiWorkspace } from "./pulumi/workspace";
import { CLUSTER_TOOLS, clusterTestOptions } from "./pulumi/tools";
import { requireTools } from "./support/toolchain";
import { waitFor } from "./support/wait";

const TOOLS = CLUSTER_TOOLS;
const options = clusterTestOptions();

const STACK = "e2e";
const LOCAL_DNS_IP = "169.254.20.10";
/** The default healthPort: node-cache's NOTRACK rules name it. */
const HEALTH_PORT = 9254;
const CONFIG = "/var/lib/kubelet/config.yaml";
const STEP = { timeout: 10 * 60_000 };
const NS = "/api/v1/namespaces/kube-system";
/** kube-system/kubelet-config's `kubelet` key as kubeadm writes it. */
const KUBEADM_KUBELET_CONFIG = fs.readFileSync(
  path.join(__dirname, "..", "fixtures", "kubeadm-kubelet-config.yaml"),
  "utf8",
);

let cluster: E2eCluster;
let ws: PulumiWorkspace;

describe("pulumi up and destroy, for real", { ...options, concurrency: 1 }, () => {
  before(
    async () => {
      cluster = await E2eCluster.start(3);
      ws = await PulumiWorkspace.create(requireTools(TOOLS), cluster.controlPlane.kubeconfigPath);
    },
    { timeout: 20 * 60_000 },
  );
  after(async () => {
    ws?.remove();
    await cluster?.stop();
  });

  it(
    "the real CLI takes Pulumi.yaml's config block and `config set --path` on structured keys",
    STEP,
    async () => {
      ok(await ws.cli(["stack", "init", STACK]));
      const [n1, n2] = cluster.nodes;
      await setNodes([n1!, n2!]);
      ok(await ws.cli(["config", "set", "--path", "ssh.user", "root"]));
      // As a user would: the key on stdin, stored encrypted.
      const key = fs.readFileSync(n1!.program.node.privateKeyPath, "utf8");
      ok(await ws.cli(["config", "set", "--secret", "--path", "ssh.privateKey"], key));
      ok(await ws.cli(["config", "set", "--path", "rollout.batchSize", "1"]));
      ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "60"]));
      ok(await ws.cli(["config", "set", "--path", "rollout.kubeletTimeoutSeconds", "30"]));
      const stackFile = fs.readFileSync(path.join(ws.projectDir, `Pulumi.${STACK}.yaml`), "utf8");
      assert.match(stackFile, /\n {4}privateKey:\n {6}secure: v1:/);
      assert.ok(!stackFile.includes("PRIVATE KEY"), "the key is stored encrypted");
      const shown = ok(await ws.cli(["config", "--json"]));
      assert.equal(
        JSON.parse(shown)["nodelocaldns:localDnsIp"].value,
        LOCAL_DNS_IP,
        "Pulumi.yaml default",
      );
    },
  );

  it(
    "bad config: the real engine fails with the same problems npm run render names",
    STEP,
    async () => {
      ok(await ws.cli(["stack", "init", "bad"]));
      ok(await ws.cli(["config", "set", "--stack", "bad", "localDnsIp", "10.96.0.10"]));
      ok(await ws.cli(["config", "set", "--stack", "bad", "clusterDnsIp", "10.96.0.10"]));
      ok(await ws.cli(["config", "set", "--stack", "bad", "--path", "nodes[0].name", "n1"]));
      ok(await ws.cli(["config", "set", "--stack", "bad", "--path", "nodes[0].host", "x;y"]));
      const up = await ws.operation("up", "bad");
      assert.equal(up.ok, false);
      const stderr = captureStderr(() =>
        render([
          "--stack",
          "bad",
          "--out",
          path.join(ws.dir, "bad-out"),
          "--project-dir",
          ws.projectDir,
        ]),
      );
      const problems = stderr.split("\n").filter((l) => l.startsWith("  - "));
      assert.equal(problems.length, 2, stderr);
      for (const line of problems)
        assert.ok(up.log.includes(line.trim()) || up.error!.includes(line.slice(4)), line);
      ok(await ws.cli(["stack", "rm", "--yes", "--force", "bad"]));
    },
  );

  it(
    "up: every object the API server holds is what render writes; every node switched",
    STEP,
    async () => {
      const sessionsBefore = await sshSessionsOf(cluster.nodes);
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      // One SSH session per switched node, its switch's: the guard and the cleanup have no create.
      const sessionsAfter = await sshSessionsOf(cluster.nodes);
      assert.deepEqual(
        sessionsAfter.map((after, i) => after - sessionsBefore[i]!),
        [1, 1, 0],
        "SSH sessions per node during up",
      );
      assert.equal(up.outputs?.clusterDnsIp, KUBE_DNS_IP, "read from kube-system/kube-dns");
      const switches = up.outputs?.kubeletSwitches as Record<string, string>;
      for (const n of cluster.nodes.slice(0, 2)) {
        assert.match(
          switches[n.name] ?? "",
          /switched: cluster DNS 10\.96\.0\.10 -> 169\.254\.20\.10/,
        );
        assert.deepEqual((await n.program.kubelet()).effective?.clusterDNS, [LOCAL_DNS_IP], n.name);
      }
      assert.deepEqual((await cluster.nodes[2]!.program.kubelet()).effective?.clusterDNS, [
        KUBE_DNS_IP,
      ]);
      // The live view under the real engine: these Nodes advertise loopback addresses, which the
      // API server never proxies to, so each is unknown with the API server's reason, and the
      // run goes on (test/e2e/kubeletLive.test.ts reads real answers in a namespace of its own).
      const live = up.outputs?.kubeletLive as Record<string, { state: string; reason?: string }>;
      for (const n of cluster.nodes.slice(0, 2)) {
        assert.equal(live[n.name]?.state, "unknown", JSON.stringify(live));
        assert.match(live[n.name]?.reason ?? "", /^configz: HTTP \d+: /);
      }
      assert.match(
        up.log,
        /kubelet live view \(configz, before this update\): on the cache 0\/2; unknown: /,
      );
      // render, given the ClusterIP the program read, writes what the API server now holds.
      const out = path.join(ws.dir, "render");
      assert.equal(renderStackTo(out), 0);
      const docs = parseAllDocuments(fs.readFileSync(path.join(out, "manifests.yaml"), "utf8"));
      for (const doc of docs.map((d) => d.toJSON() as K8sObject)) {
        const live = await getObject(doc);
        assertSubset(doc, live, `${doc.kind}/${doc.metadata.name}`);
      }
      for (const n of cluster.nodes.slice(0, 2)) {
        const program = fs.readFileSync(path.join(out, "nodes", n.name, "switch.bash"), "utf8");
        const recorded = switchInputs(n.name).stdin;
        assert.equal(recorded, program, `${n.name}: the program up ran is the one render writes`);
      }
    },
  );

  it(
    "a second up changes nothing and restarts no kubelet; preview runs nothing on a node",
    STEP,
    async () => {
      const before = await startsOf(cluster.nodes);
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      // Only "same", and the read of kube-system/kube-dns.
      assert.deepEqual(Object.keys(up.summary?.resourceChanges ?? {}).sort(), ["read", "same"]);
      const preview = await ws.operation("preview", STACK);
      assert.ok(preview.ok, preview.error);
      assert.deepEqual(Object.keys(preview.changeSummary ?? {}).sort(), ["read", "same"]);
      assert.deepEqual(await startsOf(cluster.nodes), before);
    },
  );

  it(
    "guards of an earlier version (with a create and an update) are updated without connecting",
    STEP,
    async () => {
      // The state an earlier version left: each guard with create and update texts, as it had
      // when its create printed that it was in place.
      const file = path.join(ws.dir, "earlier-guards.json");
      ok(await ws.cli(["stack", "export", "--file", file]));
      const exported = JSON.parse(fs.readFileSync(file, "utf8")) as {
        deployment: { resources: { urn: string; inputs?: object; outputs?: object }[] };
      };
      const guards = exported.deployment.resources.filter((r) => r.urn.includes("-kubelet-guard-"));
      assert.equal(guards.length, 2);
      for (const guard of guards) {
        const texts = { create: "bash -s create", update: "bash -s update" };
        Object.assign(guard.inputs!, texts);
        Object.assign(guard.outputs!, texts);
      }
      fs.writeFileSync(file, JSON.stringify(exported));
      ok(await ws.cli(["stack", "import", "--file", file]));
      const starts = await startsOf(cluster.nodes);
      const sessions = await sshSessionsOf(cluster.nodes);
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error ?? up.log);
      assert.equal(up.summary?.resourceChanges?.update, 2, JSON.stringify(up.summary));
      assert.deepEqual(await sshSessionsOf(cluster.nodes), sessions, "no SSH session");
      assert.deepEqual(await startsOf(cluster.nodes), starts, "no kubelet restart");
      const again = await ws.operation("up", STACK);
      assert.ok(again.ok, again.error);
      assert.deepEqual(Object.keys(again.summary?.resourceChanges ?? {}).sort(), ["read", "same"]);
    },
  );

  it(
    "a DaemonSet of an earlier version (node-cache without -skipteardown) is updated old pod first, once",
    STEP,
    async () => {
      const api = cluster.controlPlane.api;
      const dsPath = "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns";
      // What an earlier version left in the cluster: the same DaemonSet, node-cache without it,
      // applied as that version did (server-side apply, by the provider's own field manager, so
      // that the next apply owns the field as it would).
      const live = await api.get<{
        metadata: Record<string, unknown>;
        spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
        status?: unknown;
      }>(dsPath);
      assert.equal(live.status, 200);
      const { metadata, spec } = live.body;
      const earlier = {
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: metadata.name, namespace: metadata.namespace, labels: metadata.labels },
        spec: {
          ...spec,
          template: {
            ...spec.template,
            spec: {
              ...spec.template.spec,
              containers: spec.template.spec.containers.map((c) => ({
                ...c,
                args: c.args.filter((a) => a !== "-skipteardown"),
              })),
            },
          },
        },
      };
      const manager = daemonSetFieldManager();
      const applied = await api.request(
        "PATCH",
        `${dsPath}?fieldManager=${encodeURIComponent(manager)}&force=true`,
        JSON.stringify(earlier),
        "application/apply-patch+yaml",
      );
      assert.equal(applied.status, 200, JSON.stringify(applied.body).slice(0, 300));
      // Its pods run that template, as an earlier version's would.
      const podNames = await waitFor(
        "the earlier version's pods on every node",
        async () => {
          const ds = await api.get<{
            metadata: { generation: number };
            status?: Record<string, number>;
          }>(dsPath);
          const s = ds.body.status ?? {};
          const rolled =
            s.observedGeneration === ds.body.metadata.generation &&
            s.updatedNumberScheduled === cluster.nodes.length &&
            s.numberAvailable === cluster.nodes.length;
          return rolled ? await nodeLocalDnsPodNames() : undefined;
        },
        120_000,
      );

      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.match(up.log, /runs node-cache without -skipteardown \(an earlier version\)/);
      const updated = await api.get<{
        spec: {
          updateStrategy: unknown;
          template: { spec: { containers: { args: string[] }[] } };
        };
      }>(dsPath);
      assert.deepEqual(updated.body.spec.updateStrategy, {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: 0, maxUnavailable: "10%" },
      });
      assert.ok(updated.body.spec.template.spec.containers[0]!.args.includes("-skipteardown"));
      // Every pod was replaced, and up waited for it.
      const replaced = await nodeLocalDnsPodNames();
      assert.equal(replaced.length, cluster.nodes.length);
      assert.ok(!replaced.some((name) => podNames.includes(name)), `${podNames} -> ${replaced}`);

      // Its pods leave the interface in place now: the next up surges again, and warns no more.
      const next = await ws.operation("up", STACK);
      assert.ok(next.ok, next.error);
      assert.doesNotMatch(next.log, /without -skipteardown/);
      const after = await api.get<{ spec: { updateStrategy: unknown } }>(dsPath);
      assert.deepEqual(after.body.spec.updateStrategy, {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: "10%", maxUnavailable: 0 },
      });
    },
  );

  it(
    "preview warns when kube-system/kube-proxy states another mode than kubeProxyMode",
    STEP,
    async () => {
      const api = cluster.controlPlane.api;
      const silent = await ws.operation("preview", STACK);
      assert.ok(silent.ok, silent.error);
      assert.doesNotMatch(silent.log, /kubeProxyMode/, "no kube-proxy ConfigMap: nothing to say");
      // kubeadm's ConfigMap, in iptables mode; the stack keeps the default, ipvs.
      const created = await api.request("POST", "/api/v1/namespaces/kube-system/configmaps", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "kube-proxy", namespace: "kube-system" },
        data: {
          "config.conf":
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n",
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      try {
        const preview = await ws.operation("preview", STACK);
        assert.ok(preview.ok, preview.error);
        assert.match(
          preview.log,
          /nodelocaldns:kubeProxyMode: ipvs, but kube-system\/kube-proxy \(config\.conf\) says mode: iptables; set kubeProxyMode: iptables/,
        );
        // Only a warning: nothing to change.
        assert.deepEqual(Object.keys(preview.changeSummary ?? {}).sort(), ["read", "same"]);
      } finally {
        const deleted = await api.request(
          "DELETE",
          "/api/v1/namespaces/kube-system/configmaps/kube-proxy",
        );
        assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      }
    },
  );

  it(
    "a config change runs update on each node's Commands, without a kubelet restart",
    STEP,
    async () => {
      const before = await startsOf(cluster.nodes);
      ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "61"]));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      // The guards' program does not hold the timeouts: only the two switches change.
      assert.equal(
        up.summary?.resourceChanges?.update,
        2,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.deepEqual(await startsOf(cluster.nodes), before);
    },
  );

  it("a node added is switched alone", STEP, async () => {
    const before = await startsOf(cluster.nodes);
    await setNodes(cluster.nodes);
    const up = await ws.operation("up", STACK);
    assert.ok(up.ok, up.error);
    // Its switch, its guard and its cleanup (which connects for nothing until destroy).
    assert.equal(
      up.summary?.resourceChanges?.create,
      3,
      JSON.stringify(up.summary?.resourceChanges),
    );
    const after = await startsOf(cluster.nodes);
    assert.deepEqual(after.slice(0, 2), before.slice(0, 2));
    assert.equal(after[2], before[2]! + 1);
    assert.deepEqual((await cluster.nodes[2]!.program.kubelet()).effective?.clusterDNS, [
      LOCAL_DNS_IP,
    ]);
  });

  it(
    "a node removed from config is reverted; its cleanup leaves the running cache alone",
    STEP,
    async () => {
      await setNodes(cluster.nodes.slice(0, 2));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.equal(
        up.summary?.resourceChanges?.delete,
        3,
        JSON.stringify(up.summary?.resourceChanges),
      );
      const n3 = cluster.nodes[2]!;
      // The DaemonSet stays, and its cache on the node: the cleanup leaves everything to it.
      assert.match(
        up.log,
        new RegExp(
          `nodelocaldns cleanup on ${n3.name}: node-cache still runs here; nothing removed`,
        ),
      );
      assert.deepEqual((await n3.program.kubelet()).effective?.clusterDNS, [KUBE_DNS_IP]);
      assert.equal(n3.program.text(CONFIG), originalConfig());
      assert.equal(await n3.program.state(), undefined);
    },
  );

  it(
    "a node's host changed: the old address is reverted before the new one is switched",
    STEP,
    async () => {
      const n2 = cluster.nodes[1]!;
      const port = await cluster.forward(n2, "127.0.0.22");
      const mark = (await n2.program.kubelet()).starts;
      ok(await ws.cli(["config", "set", "--path", "nodes[1].host", "127.0.0.22"]));
      ok(await ws.cli(["config", "set", "--path", "nodes[1].port", String(port)]));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.equal(
        up.summary?.resourceChanges?.replace,
        2,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.deepEqual(
        startsSince(n2, mark),
        [KUBE_DNS_IP, LOCAL_DNS_IP],
        "reverted, then switched",
      );
    },
  );

  it("a wrong pinned host key fails that node and touches nothing on it", STEP, async () => {
    const [n1, n2] = cluster.nodes;
    const before = await startsOf(cluster.nodes);
    ok(await ws.cli(["config", "set", "--path", "nodes[0].hostKey", n2!.program.node.hostKey]));
    ok(await ws.cli(["config", "set", "--path", "rollout.readyTimeoutSeconds", "62"]));
    const up = await ws.operation("up", STACK);
    assert.equal(up.ok, false);
    assert.match(up.error ?? "", /host key mismatch|knownhosts|key mismatch/i);
    assert.deepEqual(await startsOf(cluster.nodes), before);
    assert.equal(n1!.program.text(CONFIG), switchedConfig());
    ok(await ws.cli(["config", "set", "--path", "nodes[0].hostKey", n1!.program.node.hostKey]));
    const fixed = await ws.operation("up", STACK);
    assert.ok(fixed.ok, fixed.error);
  });

  it(
    "a replaced DaemonSet: nodes reverted before it goes, re-switched to the new one (replaceWith)",
    STEP,
    async () => {
      const marks = await startsOf(cluster.nodes);
      const before = await daemonSetUid();
      const ds = urnOf("kubernetes:apps/v1:DaemonSet", "nodelocaldns-daemonset");
      const up = await ws.operation("up", STACK, { replace: [ds] });
      assert.ok(up.ok, up.error);
      // The DaemonSet was deleted and created again (a new object), and is there after the up:
      // with the name fixed, create-before-delete would delete the live object last.
      const after = await daemonSetUid();
      assert.ok(after !== undefined && after !== before, `a new DaemonSet (${before} -> ${after})`);
      const deletedAt = Date.parse(
        cluster.controlPlane
          .auditEvents()
          .filter((e) => e.verb === "delete" && e.objectRef?.resource === "daemonsets")
          .at(-1)!.stageTimestamp!,
      );
      for (const [i, n] of cluster.nodes.slice(0, 2).entries()) {
        const since = startLines(n).slice(marks[i]!);
        assert.deepEqual(
          since.map((s) => s.dns),
          [KUBE_DNS_IP, LOCAL_DNS_IP],
          `${n.name}: reverted, then switched`,
        );
        assert.ok(since[0]!.at < deletedAt, `${n.name} reverted before the old DaemonSet went`);
        assert.ok(since[1]!.at > deletedAt, `${n.name} switched to the new one`);
      }
    },
  );

  it(
    "monitoring: skipped with a warning without the CRDs; once installed, created as rendered",
    STEP,
    async () => {
      ok(await ws.cli(["config", "set", "--path", "monitoring.serviceMonitor", "true"]));
      ok(await ws.cli(["config", "set", "--path", "monitoring.prometheusRule", "true"]));
      ok(await ws.cli(["config", "set", "--path", "monitoring.labels.release", "prom"]));
      const skipped = await ws.operation("up", STACK);
      assert.ok(skipped.ok, skipped.error);
      for (const [key, crd] of [
        ["serviceMonitor", "servicemonitors"],
        ["prometheusRule", "prometheusrules"],
      ]) {
        assert.match(
          skipped.log,
          new RegExp(
            `monitoring\\.${key}: skipped: CRD ${crd}\\.monitoring\\.coreos\\.com is not installed`,
          ),
        );
      }
      assert.equal(skipped.summary?.resourceChanges?.create, undefined, skipped.log);

      // The Prometheus Operator's own CRDs: the API server validates our objects against them.
      await installMonitoringCrds();
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.equal(
        up.summary?.resourceChanges?.create,
        2,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.doesNotMatch(up.log, /skipped: CRD/);
      const out = path.join(ws.dir, "render-monitoring");
      const rendered = renderStackTo(out);
      assert.equal(rendered, 0);
      const docs = parseAllDocuments(fs.readFileSync(path.join(out, "monitoring.yaml"), "utf8"));
      assert.equal(docs.length, 2);
      for (const doc of docs.map((d) => d.toJSON() as K8sObject)) {
        assertSubset(doc, await getObject(doc), `${doc.kind}/${doc.metadata.name}`);
      }
    },
  );

  it(
    "kubeadmKubeletConfig: kubelet-config gets the cache's address and nothing else; no restart",
    STEP,
    async () => {
      const created = await cluster.controlPlane.api.create(`${NS}/configmaps`, {
        metadata: { name: "kubelet-config", namespace: "kube-system" },
        data: { kubelet: KUBEADM_KUBELET_CONFIG },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const before = await startsOf(cluster.nodes);
      ok(await ws.cli(["config", "set", "kubeadmKubeletConfig", "true"]));
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.equal(
        up.summary?.resourceChanges?.create,
        1,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.equal(
        up.summary?.resourceChanges?.update,
        undefined,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.equal(
        up.outputs?.kubeadmKubeletConfig,
        `kube-system/kubelet-config clusterDNS: [10.96.0.10] -> [${LOCAL_DNS_IP}]`,
      );
      const edited = await kubeletConfigMap();
      assert.equal(
        edited.data.kubelet,
        KUBEADM_KUBELET_CONFIG.replace("\n- 10.96.0.10\n", `\n- ${LOCAL_DNS_IP}\n`),
        "only the clusterDNS entry changed",
      );
      assert.deepEqual(JSON.parse(edited.metadata.annotations?.[ORIGINAL_ANNOTATION] ?? "null"), {
        clusterDNS: "clusterDNS:\n- 10.96.0.10\n",
      });
      assert.deepEqual(await startsOf(cluster.nodes), before, "no kubelet restarted");

      // Someone else changes another field; the next up sees nothing to do.
      const theirs = edited.data.kubelet.replace("cgroupDriver: systemd", "cgroupDriver: cgroupfs");
      const put = await cluster.controlPlane.api.update(`${NS}/configmaps/kubelet-config`, {
        ...edited,
        data: { kubelet: theirs },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      const again = await ws.operation("up", STACK);
      assert.ok(again.ok, again.error);
      assert.deepEqual(Object.keys(again.summary?.resourceChanges ?? {}).sort(), ["read", "same"]);
      assert.equal((await kubeletConfigMap()).data.kubelet, theirs);
    },
  );

  it(
    "kubelet-config put back to kube-dns (kubeadm upgrade apply): preview shows it, up repairs it",
    STEP,
    async () => {
      const current = await kubeletConfigMap();
      const putBack = current.data.kubelet.replace(`\n- ${LOCAL_DNS_IP}\n`, "\n- 10.96.0.10\n");
      const put = await cluster.controlPlane.api.update(`${NS}/configmaps/kubelet-config`, {
        ...current,
        metadata: { ...current.metadata, annotations: {} },
        data: { kubelet: putBack },
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      const preview = await ws.operation("preview", STACK);
      assert.ok(preview.ok, preview.error);
      assert.equal(preview.changeSummary?.update, 1, JSON.stringify(preview.changeSummary));
      const before = await startsOf(cluster.nodes);
      const up = await ws.operation("up", STACK);
      assert.ok(up.ok, up.error);
      assert.equal(
        up.summary?.resourceChanges?.update,
        1,
        JSON.stringify(up.summary?.resourceChanges),
      );
      assert.equal((await kubeletConfigMap()).data.kubelet, current.data.kubelet, "repaired");
      assert.deepEqual(await startsOf(cluster.nodes), before, "no kubelet restarted");
      const again = await ws.operation("up", STACK);
      assert.ok(again.ok, again.error);
      assert.deepEqual(Object.keys(again.summary?.resourceChanges ?? {}).sort(), ["read", "same"]);
    },
  );

  it(
    "destroy stops at a node whose revert fails, and keeps the DaemonSet and the ConfigMaps",
    STEP,
    async () => {
      const n1 = cluster.nodes[0]!;
      // kubelet on n1 cannot start with kube-dns: the revert's restart fails and is undone.
      n1.program.node.writeFile("/etc/kubelet-standin/only-with-cluster-dns", `${KUBE_DNS_IP}\n`);
      n1.program.node.writeFile("/etc/kubelet-standin/fail-start", "");
      const down = await ws.operation("destroy", STACK);
      assert.equal(down.ok, false);
      assert.match(down.error ?? "", /kubelet did not come back healthy after the change/);
      for (const object of [
        "daemonsets/node-local-dns",
        "configmaps/node-local-dns",
        "configmaps/node-local-dns-node-program",
      ]) {
        const apiGroup = object.startsWith("daemonsets") ? "/apis/apps/v1" : "/api/v1";
        const r = await cluster.controlPlane.api.get(
          `${apiGroup}/namespaces/kube-system/${object}`,
        );
        assert.equal(r.status, 200, `${object} kept`);
      }
      assert.deepEqual((await n1.program.kubeletRunning()).effective?.clusterDNS, [LOCAL_DNS_IP]);
      n1.program.node.writeFile("/etc/kubelet-standin/only-with-cluster-dns", "none\n");
    },
  );

  it(
    "destroy: every node reverted while the DaemonSet still existed, then every object gone, then each node cleaned",
    STEP,
    async () => {
      // What node-cache (-skipteardown) leaves behind, on the two switched nodes: its 12 rules for
      // the address and its link (the stand-in cache makes none).
      const leftovers = [
        linkScript(LOCAL_DNS_IP),
        addRulesScript("nft", nodeCacheRules(LOCAL_DNS_IP, HEALTH_PORT)),
      ].join("\n");
      for (const n of cluster.nodes.slice(0, 2)) {
        const planted = await n.program.node.run(leftovers);
        assert.equal(planted.code, 0, planted.stderr);
        assert.equal(await nodeCacheLeftovers(n), "12 rule(s), link: yes");
      }
      const down = await ws.operation("destroy", STACK);
      assert.ok(down.ok, down.error);
      // The last DaemonSet delete (the replacement test deleted one before).
      const deleted = cluster.controlPlane
        .auditEvents()
        .filter((e) => e.verb === "delete" && e.objectRef?.resource === "daemonsets")
        .at(-1);
      assert.ok(deleted, "the DaemonSet delete is in the audit log");
      const deletedAt = Date.parse(deleted.stageTimestamp ?? deleted.requestReceivedTimestamp);
      for (const n of cluster.nodes.slice(0, 2)) {
        const last = startLines(n).at(-1)!;
        assert.equal(last.dns, KUBE_DNS_IP, `${n.name} reverted`);
        assert.ok(
          last.at < deletedAt,
          `${n.name} reverted at ${new Date(last.at).toISOString()}, before the DaemonSet went`,
        );
        assert.equal(n.program.text(CONFIG), originalConfig());
        assert.equal(await n.program.state(), undefined);
      }
      for (const p of [
        "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns",
        "/api/v1/namespaces/kube-system/configmaps/node-local-dns",
        "/api/v1/namespaces/kube-system/configmaps/node-local-dns-node-program",
        "/api/v1/namespaces/kube-system/services/kube-dns-upstream",
        "/api/v1/namespaces/kube-system/services/node-local-dns",
        "/api/v1/namespaces/kube-system/serviceaccounts/node-local-dns",
        "/apis/monitoring.coreos.com/v1/namespaces/kube-system/servicemonitors/node-local-dns",
        "/apis/monitoring.coreos.com/v1/namespaces/kube-system/prometheusrules/node-local-dns",
      ]) {
        assert.equal((await cluster.controlPlane.api.get(p)).status, 404, `${p} gone`);
      }
      const kubeDns = await cluster.controlPlane.api.get(
        "/api/v1/namespaces/kube-system/services/kube-dns",
      );
      assert.equal(kubeDns.status, 200, "kube-dns untouched");
      // Each node's cleanup ran after the DaemonSet was gone, when no cache ran there any more.
      const lines = down.log.split("\n");
      const daemonSetDeleted = lines.findIndex((l) =>
        /nodelocaldns-daemonset\b.*\bdeleted\b/.test(l),
      );
      assert.ok(daemonSetDeleted >= 0, "the engine printed the DaemonSet's delete");
      for (const n of cluster.nodes.slice(0, 2)) {
        const cleaned = lines.findIndex((l) =>
          l.includes(
            `nodelocaldns cleanup on ${n.name}: removed 12 iptables rule(s); interface nodelocaldns: removed`,
          ),
        );
        assert.ok(cleaned > daemonSetDeleted, `${n.name} cleaned up after the DaemonSet's delete`);
        assert.equal(await nodeCacheLeftovers(n), "0 rule(s), link: no");
      }
      // kubeadm's ConfigMap: the original clusterDNS text back, the other change kept, our
      // annotation gone; and that before the DaemonSet went.
      const restored = await kubeletConfigMap();
      assert.equal(
        restored.data.kubelet,
        KUBEADM_KUBELET_CONFIG.replace("cgroupDriver: systemd", "cgroupDriver: cgroupfs"),
      );
      assert.equal(restored.metadata.annotations?.[ORIGINAL_ANNOTATION], undefined);
      const restoredAt = cluster.controlPlane
        .auditEvents()
        .filter((e) => e.verb === "update" && e.objectRef?.name === "kubelet-config")
        .at(-1)!;
      assert.ok(
        Date.parse(restoredAt.stageTimestamp ?? restoredAt.requestReceivedTimestamp) < deletedAt,
        "kubelet-config restored before the DaemonSet went",
      );
    },
  );
});

/** How many node-cache rules (nft and legacy) and whether its link are on a node. */
async function nodeCacheLeftovers(n: ClusterNode): Promise<string> {
  const r = await n.program.node.run(
    "rules=$({ iptables-nft-save; iptables-legacy-save; } 2>/dev/null | grep -c 'NodeLocal DNS Cache:')\n" +
      "link=no; ip link show nodelocaldns >/dev/null 2>&1 && link=yes\n" +
      'echo "${rules} rule(s), link: ${link}"',
  );
  return r.stdout.trim();
}

/** The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, installed and established. */
async function installMonitoringCrds(): Promise<void> {
  const files = requireTools(["servicemonitors-crd", "prometheusrules-crd"]);
  const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  for (const file of Object.values(files)) {
    const crd = parseAllDocuments(fs.readFileSync(file, "utf8"))[0]!.toJSON() as K8sObject;
    const created = await cluster.controlPlane.api.create(CRDS, crd);
    assert.equal(created.status, 201, JSON.stringify(created.body).slice(0, 500));
    await waitFor(
      `CRD ${crd.metadata.name} established`,
      async () => {
        const r = await cluster.controlPlane.api.get<{
          status?: { conditions?: { type: string; status: string }[] };
        }>(`${CRDS}/${crd.metadata.name}`);
        const established = r.body.status?.conditions?.some(
          (c) => c.type === "Established" && c.status === "True",
        );
        return established === true ? true : undefined;
      },
      30_000,
    );
  }
}

/** kube-system/kubelet-config as the API server holds it now. */
async function kubeletConfigMap() {
  const r = await cluster.controlPlane.api.get<{
    metadata: { annotations?: Record<string, string>; resourceVersion: string };
    data: { kubelet: string };
  }>(`${NS}/configmaps/kubelet-config`);
  assert.equal(r.status, 200, "kube-system/kubelet-config");
  return r.body;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  [field: string]: unknown;
}

function ok(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

/** nodes[i].name/host/port/hostKey for these nodes (and no others). */
async function setNodes(nodes: ClusterNode[]): Promise<void> {
  await ws.cli(["config", "rm", "nodes"]);
  for (const [i, n] of nodes.entries()) {
    ok(await ws.cli(["config", "set", "--path", `nodes[${i}].name`, n.name]));
    ok(await ws.cli(["config", "set", "--path", `nodes[${i}].host`, n.host]));
    ok(await ws.cli(["config", "set", "--path", `nodes[${i}].port`, String(n.port)]));
    ok(await ws.cli(["config", "set", "--path", `nodes[${i}].hostKey`, n.program.node.hostKey]));
    // Each test node has a key of its own: on stdin, stored encrypted, as a user would.
    const key = fs.readFileSync(n.program.node.privateKeyPath, "utf8");
    ok(await ws.cli(["config", "set", "--secret", "--path", `nodes[${i}].privateKey`], key));
  }
}

/** SSH sessions each node's sshd accepted so far, from its journal. */
async function sshSessionsOf(nodes: ClusterNode[]): Promise<number[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const log = await n.program.node.run("journalctl --no-pager -o cat _COMM=sshd");
      assert.equal(log.code, 0, log.stderr);
      return log.stdout.split("\n").filter((l) => l.startsWith("Accepted ")).length;
    }),
  );
}

async function startsOf(nodes: ClusterNode[]): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => (await n.program.kubelet()).starts));
}

/** Every kubelet start recorded by the stand-in: when, and with which cluster DNS. */
function startLines(n: ClusterNode): { at: number; dns: string }[] {
  return n.program
    .text("/var/lib/kubelet-standin/starts.log")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => ({ at: Date.parse(l.split(" ")[0]!), dns: /clusterDNS=(\S+)/.exec(l)?.[1] ?? "" }));
}

/** The cluster DNS of every kubelet start after the first `mark` starts. */
function startsSince(n: ClusterNode, mark: number): string[] {
  return startLines(n)
    .slice(mark)
    .map((s) => s.dns);
}

/** kubelet's config.yaml on every node of the cluster before a switch, and after it. */
function originalConfig(): string {
  return KUBELET_LAYOUTS.kubeadm.files[CONFIG] as string;
}
function switchedConfig(): string {
  return originalConfig().replace("- 10.96.0.10", `- ${LOCAL_DNS_IP}`);
}

/** The uid of the DaemonSet the API server holds now, or undefined. */
async function daemonSetUid(): Promise<string | undefined> {
  const r = await cluster.controlPlane.api.get<{ metadata: { uid: string } }>(
    "/apis/apps/v1/namespaces/kube-system/daemonsets/node-local-dns",
  );
  return r.status === 200 ? r.body.metadata.uid : undefined;
}

/** The stack's state: the URN of a resource by type and name. */
function urnOf(type: string, name: string): string {
  const resources = (
    ws.checkpoint(STACK) as {
      checkpoint: { latest: { resources: { urn: string; type: string }[] } };
    }
  ).checkpoint.latest.resources;
  const found = resources.find((r) => r.type === type && r.urn.endsWith(`::${name}`));
  assert.ok(found, `${type} ${name} in state`);
  return found.urn;
}

/** The inputs of a node's switch Command as the engine recorded them. */
/** The names of the node-local-dns pods that are not being deleted. */
async function nodeLocalDnsPodNames(): Promise<string[]> {
  const r = await cluster.controlPlane.api.list<{
    metadata: { name: string; deletionTimestamp?: string };
  }>(
    `/api/v1/namespaces/kube-system/pods?labelSelector=${encodeURIComponent("k8s-app=node-local-dns")}`,
  );
  return r.body.items
    .filter((p) => p.metadata.deletionTimestamp === undefined)
    .map((p) => p.metadata.name)
    .sort();
}

/** The field manager the kubernetes provider applies the DaemonSet with (kept in its state). */
function daemonSetFieldManager(): string {
  const resources = (
    ws.checkpoint(STACK) as {
      checkpoint: {
        latest: { resources: { type: string; outputs?: { __fieldManager?: string } }[] };
      };
    }
  ).checkpoint.latest.resources;
  const ds = resources.find((r) => r.type === "kubernetes:apps/v1:DaemonSet");
  const manager = ds?.outputs?.__fieldManager;
  assert.ok(manager, "the DaemonSet's field manager in state");
  return manager;
}

function switchInputs(node: string): { stdin: string } {
  const resources = (
    ws.checkpoint(STACK) as {
      checkpoint: { latest: { resources: { urn: string; inputs: { stdin: string } }[] } };
    }
  ).checkpoint.latest.resources;
  const found = resources.find((r) => r.urn.endsWith(`::nodelocaldns-kubelet-${node}`));
  assert.ok(found, `the switch of ${node} in state`);
  return found.inputs;
}

async function getObject(o: K8sObject): Promise<Record<string, unknown>> {
  const base = o.apiVersion === "v1" ? "/api/v1" : `/apis/${o.apiVersion}`;
  const plural = `${o.kind.toLowerCase()}s`;
  const r = await cluster.controlPlane.api.get<Record<string, unknown>>(
    `${base}/namespaces/${o.metadata.namespace}/${plural}/${o.metadata.name}`,
  );
  assert.equal(r.status, 200, `${o.kind}/${o.metadata.name}`);
  return r.body;
}

/** Every field of `want` is in `got` with the same value (lists element by element). */
function assertSubset(want: unknown, got: unknown, where: string): void {
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got) && got.length === want.length, `${where}: list of ${want.length}`);
    want.forEach((w, i) => assertSubset(w, (got as unknown[])[i], `${where}[${i}]`));
  } else if (want !== null && typeof want === "object") {
    assert.ok(got !== null && typeof got === "object", `${where}: an object`);
    for (const [k, v] of Object.entries(want)) {
      assertSubset(v, (got as Record<string, unknown>)[k], `${where}.${k}`);
    }
  } else {
    assert.equal(got, want, where);
  }
}

function captureStderr(fn: () => number): string {
  const original = console.error;
  let text = "";
  console.error = (...args: unknown[]) => void (text += args.join(" ") + "\n");
  try {
    fn();
  } finally {
    console.error = original;
  }
  return text;
}

/** npm run render of the stack into `out`, with the kube-dns ClusterIP the program reads. */
function renderStackTo(out: string): number {
  const args = ["--stack", STACK, "--out", out, "--project-dir", ws.projectDir];
  return quiet(() => render([...args, "--cluster-dns-ip", KUBE_DNS_IP]));
}

function quiet(fn: () => number): number {
  const [log, error] = [console.log, console.error];
  console.log = () => {};
  console.error = () => {};
  try {
    return fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}
