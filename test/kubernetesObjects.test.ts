import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DELIVERED_NODE_PROGRAM, DELIVERED_NODE_PROGRAM_SHA256 } from "../components/nodeScript";
import { renderCorefile } from "../components/corefile";
import { KubernetesObject, nodeLocalDnsObjects } from "../components/kubernetesObjects";
import { renderStack } from "../components/render";
import { ResolvedSettings } from "../components/settings";
import { NON_DEFAULT_NETWORK, resolvedSettings } from "./support/settingsFixture";

const CLUSTER_SERVICE = { "kubernetes.io/cluster-service": "true" };
const RECONCILE = { "addonmanager.kubernetes.io/mode": "Reconcile" };

function expectedServiceAccount(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: {
      name: "node-local-dns",
      namespace: "kube-system",
      labels: { ...CLUSTER_SERVICE, ...RECONCILE },
    },
  };
}

function expectedUpstreamService(): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "kube-dns-upstream",
      namespace: "kube-system",
      annotations: { "pulumi.com/skipAwait": "true" },
      labels: {
        "k8s-app": "kube-dns",
        ...CLUSTER_SERVICE,
        ...RECONCILE,
        "kubernetes.io/name": "KubeDNSUpstream",
      },
    },
    spec: {
      ports: [
        { name: "dns", port: 53, protocol: "UDP", targetPort: 53 },
        { name: "dns-tcp", port: 53, protocol: "TCP", targetPort: 53 },
      ],
      selector: { "k8s-app": "kube-dns" },
    },
  };
}

interface PodVariant {
  localDnsIp: string;
  healthPort: number;
  metricsPort: number;
  image: string;
  resources: unknown;
  tolerations?: unknown;
  nodeSelector?: unknown;
  priorityClassName: string;
}

function expectedDaemonSet(v: PodVariant): KubernetesObject {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: "node-local-dns",
      namespace: "kube-system",
      labels: { "k8s-app": "node-local-dns", ...CLUSTER_SERVICE, ...RECONCILE },
    },
    spec: {
      updateStrategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: "10%", maxUnavailable: 0 },
      },
      selector: { matchLabels: { "k8s-app": "node-local-dns" } },
      template: {
        metadata: {
          labels: { "k8s-app": "node-local-dns" },
          annotations: {
            "prometheus.io/port": String(v.metricsPort),
            "prometheus.io/scrape": "true",
          },
        },
        spec: {
          priorityClassName: v.priorityClassName,
          serviceAccountName: "node-local-dns",
          hostNetwork: true,
          dnsPolicy: "Default",
          ...(v.tolerations !== undefined ? { tolerations: v.tolerations } : {}),
          ...(v.nodeSelector !== undefined ? { nodeSelector: v.nodeSelector } : {}),
          containers: [
            {
              name: "node-cache",
              image: v.image,
              resources: v.resources,
              args: [
                "-localip",
                v.localDnsIp,
                "-conf",
                "/etc/Corefile",
                "-upstreamsvc",
                "kube-dns-upstream",
                "-health-port",
                String(v.healthPort),
                "-reloadwithsignal",
                "-skipteardown",
                "-pidfile",
                "/tmp/node-cache.pid",
              ],
              securityContext: { capabilities: { add: ["NET_ADMIN"] } },
              livenessProbe: {
                httpGet: { host: v.localDnsIp, path: "/health", port: v.healthPort },
                initialDelaySeconds: 60,
                timeoutSeconds: 5,
              },
              readinessProbe: {
                httpGet: { host: v.localDnsIp, path: "/health", port: v.healthPort },
                initialDelaySeconds: 10,
                timeoutSeconds: 5,
              },
              volumeMounts: [
                { mountPath: "/run/xtables.lock", name: "xtables-lock" },
                { name: "config-volume", mountPath: "/etc/coredns" },
                { name: "kube-dns-config", mountPath: "/etc/kube-dns" },
                {
                  name: "node-program",
                  mountPath: "/etc/nodelocaldns/node-program",
                  readOnly: true,
                },
              ],
            },
          ],
          volumes: [
            {
              name: "xtables-lock",
              hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" },
            },
            { name: "kube-dns-config", configMap: { name: "kube-dns", optional: true } },
            {
              name: "config-volume",
              configMap: {
                name: "node-local-dns",
                items: [{ key: "Corefile", path: "Corefile.base" }],
              },
            },
            {
              name: "node-program",
              configMap: { name: "node-local-dns-node-program", defaultMode: 0o400 },
            },
          ],
        },
      },
    },
  };
}

function expectedMetricsService(metricsPort: number): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "node-local-dns",
      namespace: "kube-system",
      labels: { "k8s-app": "node-local-dns" },
      annotations: { "prometheus.io/port": String(metricsPort), "prometheus.io/scrape": "true" },
    },
    spec: {
      clusterIP: "None",
      ports: [{ name: "metrics", port: metricsPort, targetPort: metricsPort }],
      selector: { "k8s-app": "node-local-dns" },
    },
  };
}

/** Paths of every `undefined`, function, symbol, bigint or non-finite number under `value`. */
function nonJsonPaths(value: unknown, path = "$"): string[] {
  if (value === undefined) return [path];
  if (value === null || typeof value === "string" || typeof value === "boolean") return [];
  if (typeof value === "number") return Number.isFinite(value) ? [] : [path];
  if (typeof value !== "object") return [path];
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => nonJsonPaths(item, `${path}[${i}]`));
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return [`${path} (not a plain object)`];
  return Object.entries(value).flatMap(([key, item]) => nonJsonPaths(item, `${path}.${key}`));
}

/** `obj.spec.template.spec` of the DaemonSet, for targeted checks. */
function podSpec(s: ResolvedSettings): Record<string, unknown> {
  const spec = nodeLocalDnsObjects(s).daemonSet.spec as {
    template: { spec: Record<string, unknown> };
  };
  return spec.template.spec;
}

function nodeCache(s: ResolvedSettings): Record<string, unknown> {
  const containers = podSpec(s).containers as Record<string, unknown>[];
  assert.equal(containers.length, 1);
  return containers[0];
}

const NON_DEFAULT = resolvedSettings({
  ...NON_DEFAULT_NETWORK,
  image: "mirror.example.com/dns/k8s-dns-node-cache:1.26.4",
  resources: {
    requests: { cpu: "50m", memory: "20Mi" },
    limits: { memory: "64Mi" },
  },
  priorityClassName: "custom-critical",
  tolerations: [
    { key: "dedicated", operator: "Equal", value: "dns", effect: "NoSchedule" },
    { key: "node.kubernetes.io/unreachable", effect: "NoExecute", tolerationSeconds: 300 },
  ],
  nodeSelector: { "kubernetes.io/os": "linux", pool: "system" },
});

describe("nodeLocalDnsObjects", () => {
  it("builds every default object field by field", () => {
    const s = resolvedSettings();
    const o = nodeLocalDnsObjects(s);
    assert.deepEqual(o.serviceAccount, expectedServiceAccount());
    assert.deepEqual(o.upstreamService, expectedUpstreamService());
    assert.deepEqual(o.configMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "node-local-dns", namespace: "kube-system", labels: RECONCILE },
      data: { Corefile: renderCorefile(s) },
    });
    assert.deepEqual(o.nodeProgramConfigMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "node-local-dns-node-program",
        namespace: "kube-system",
        labels: RECONCILE,
      },
      data: { "node-program.bash": DELIVERED_NODE_PROGRAM },
    });
    assert.deepEqual(
      o.daemonSet,
      expectedDaemonSet({
        localDnsIp: "169.254.20.10",
        healthPort: 9254,
        metricsPort: 9253,
        image: "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8",
        resources: { requests: { cpu: "25m", memory: "50Mi" }, limits: { memory: "400Mi" } },
        priorityClassName: "system-node-critical",
        tolerations: [
          { key: "CriticalAddonsOnly", operator: "Exists" },
          { effect: "NoExecute", operator: "Exists" },
          { effect: "NoSchedule", operator: "Exists" },
        ],
      }),
    );
    assert.deepEqual(o.metricsService, expectedMetricsService(9253));
  });

  it("renders the same objects and node programs in every kube-proxy mode", () => {
    const nodes = [
      {
        name: "node-1",
        host: "10.0.0.11",
        port: 22,
        user: "root",
        sudo: false,
        kubelet: { format: "auto" as const },
      },
    ];
    const ipvs = renderStack(resolvedSettings({ kubeProxyMode: "ipvs", nodes }));
    assert.ok(
      ipvs.some((file) => file.path.endsWith("/switch.bash")),
      "node programs rendered",
    );
    for (const kubeProxyMode of ["iptables", "nftables"] as const) {
      assert.deepEqual(renderStack(resolvedSettings({ kubeProxyMode, nodes })), ipvs);
    }
  });

  it("with discovery, records the declared nodes in a ConfigMap applied before the DaemonSet", () => {
    const node = (name: string, host: string) => ({
      name,
      host,
      port: 22,
      user: "root",
      sudo: false,
      kubelet: { format: "auto" as const },
    });
    const discover = {
      selectorText: "",
      selector: [],
      exclude: [],
      addressType: "InternalIP" as const,
      template: { port: 22, user: "root", sudo: false, kubelet: { format: "auto" as const } },
    };
    const nodes = [node("w1", "10.0.0.1"), node("w2", "10.0.0.2")];
    const objects = nodeLocalDnsObjects(resolvedSettings({ nodes, discover }));
    assert.deepEqual(objects.managedNodesConfigMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "node-local-dns-managed-nodes",
        namespace: "kube-system",
        labels: { "k8s-app": "node-local-dns" },
        annotations: {
          "nodelocaldns.io/managed-nodes":
            '[\n{"name":"w1","host":"10.0.0.1","port":22},\n{"name":"w2","host":"10.0.0.2","port":22}\n]\n',
        },
      },
    });
    assert.deepEqual(
      objects.all.map((o) => o.metadata.name),
      [
        "node-local-dns",
        "kube-dns-upstream",
        "node-local-dns",
        "node-local-dns-node-program",
        "node-local-dns-managed-nodes",
        "node-local-dns",
        "node-local-dns",
      ],
    );
    assert.equal(nodeLocalDnsObjects(resolvedSettings({ nodes })).managedNodesConfigMap, undefined);
  });

  it("carries non-default settings into every object", () => {
    const o = nodeLocalDnsObjects(NON_DEFAULT);
    assert.deepEqual(o.serviceAccount, expectedServiceAccount());
    assert.deepEqual(o.upstreamService, expectedUpstreamService());
    assert.deepEqual(o.configMap.data, { Corefile: renderCorefile(NON_DEFAULT) });
    assert.match((o.configMap.data as { Corefile: string }).Corefile, /^corp\.example:53 \{$/m);
    assert.deepEqual(
      o.daemonSet,
      expectedDaemonSet({
        localDnsIp: "169.254.25.10",
        healthPort: 8181,
        metricsPort: 9354,
        image: "mirror.example.com/dns/k8s-dns-node-cache:1.26.4",
        resources: { requests: { cpu: "50m", memory: "20Mi" }, limits: { memory: "64Mi" } },
        priorityClassName: "custom-critical",
        tolerations: [
          { key: "dedicated", operator: "Equal", value: "dns", effect: "NoSchedule" },
          { key: "node.kubernetes.io/unreachable", effect: "NoExecute", tolerationSeconds: 300 },
        ],
        nodeSelector: { "kubernetes.io/os": "linux", pool: "system" },
      }),
    );
    assert.deepEqual(o.metricsService, expectedMetricsService(9354));
  });

  it("passes exactly one -localip, without a comma, and the same IP to the probe", () => {
    for (const s of [
      resolvedSettings(),
      NON_DEFAULT,
      resolvedSettings({ localDnsIp: "fd00::10", clusterDnsIp: "fd00:96::a" }),
    ]) {
      const args = nodeCache(s).args as string[];
      const at = args.flatMap((arg, i) => (arg === "-localip" ? [i] : []));
      assert.equal(at.length, 1);
      assert.equal(args[at[0] + 1], s.localDnsIp);
      assert.ok(!args[at[0] + 1].includes(","));
      assert.ok(!args.some((arg) => arg.includes(",")));
      assert.ok(!args.includes(s.clusterDnsIp));
      assert.ok(!args.some((arg) => arg.includes("__PILLAR__")));
      const probe = nodeCache(s).livenessProbe as { httpGet: { host: string } };
      assert.equal(probe.httpGet.host, s.localDnsIp);
    }
  });

  it("omits nodeSelector when empty and tolerations and resources when there are none", () => {
    const defaults = podSpec(resolvedSettings());
    assert.ok(!("nodeSelector" in defaults));
    const bare = resolvedSettings({ tolerations: [], resources: {} });
    assert.ok(!("tolerations" in podSpec(bare)));
    assert.ok(!("resources" in nodeCache(bare)));
    const limitsOnly = resolvedSettings({ resources: { limits: { memory: "30Mi" } } });
    assert.deepEqual(nodeCache(limitsOnly).resources, { limits: { memory: "30Mi" } });
  });

  it("drops toleration keys that are set to undefined", () => {
    const s = resolvedSettings({
      tolerations: [{ key: "a", operator: "Exists", value: undefined, effect: undefined }],
      resources: { requests: { cpu: "10m" }, limits: undefined },
    });
    assert.deepEqual(podSpec(s).tolerations, [{ key: "a", operator: "Exists" }]);
    assert.deepEqual(nodeCache(s).resources, { requests: { cpu: "10m" } });
    assert.deepEqual(nonJsonPaths(nodeLocalDnsObjects(s)), []);
  });

  it("keeps the node program out of the DaemonSet: a new program changes only its ConfigMap", () => {
    const o = nodeLocalDnsObjects(resolvedSettings());
    const daemonSet = JSON.stringify(o.daemonSet);
    // The pod template names the ConfigMap, never its content or digest, so a program change
    // does not roll the node-cache pods.
    assert.ok(daemonSet.includes('"name":"node-local-dns-node-program"'));
    assert.ok(!daemonSet.includes(DELIVERED_NODE_PROGRAM_SHA256));
    assert.ok(!daemonSet.includes(DELIVERED_NODE_PROGRAM.slice(0, 80)));
    const others = o.all.filter((obj) => obj !== o.nodeProgramConfigMap);
    assert.ok(others.every((obj) => !JSON.stringify(obj).includes("switch_fresh_node")));
  });

  it("lists the objects in apply order: DaemonSet after kube-dns-upstream and the ConfigMaps", () => {
    const o = nodeLocalDnsObjects(resolvedSettings());
    assert.deepEqual(o.all, [
      o.serviceAccount,
      o.upstreamService,
      o.configMap,
      o.nodeProgramConfigMap,
      o.daemonSet,
      o.metricsService,
    ]);
    const ids = o.all.map((obj) => `${obj.kind}/${obj.metadata.name}`);
    assert.equal(new Set(ids).size, 6);
    const ds = ids.indexOf("DaemonSet/node-local-dns");
    assert.ok(ds > ids.indexOf("Service/kube-dns-upstream"));
    assert.ok(ds > ids.indexOf("ConfigMap/node-local-dns"));
    assert.ok(ds > ids.indexOf("ConfigMap/node-local-dns-node-program"));
    assert.ok(ids.indexOf("ServiceAccount/node-local-dns") < ds);
  });

  it("puts every object in kube-system under the expected name", () => {
    const o = nodeLocalDnsObjects(NON_DEFAULT);
    assert.deepEqual(
      o.all.map((obj) => [obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name]),
      [
        ["v1", "ServiceAccount", "kube-system", "node-local-dns"],
        ["v1", "Service", "kube-system", "kube-dns-upstream"],
        ["v1", "ConfigMap", "kube-system", "node-local-dns"],
        ["v1", "ConfigMap", "kube-system", "node-local-dns-node-program"],
        ["apps/v1", "DaemonSet", "kube-system", "node-local-dns"],
        ["v1", "Service", "kube-system", "node-local-dns"],
      ],
    );
  });

  it("is plain JSON data with no undefined anywhere", () => {
    for (const s of [resolvedSettings(), NON_DEFAULT]) {
      const o = nodeLocalDnsObjects(s);
      assert.deepEqual(nonJsonPaths(o), []);
      assert.deepEqual(JSON.parse(JSON.stringify(o.all)), o.all);
    }
  });

  it("the deep walk finds undefined (self-check)", () => {
    assert.deepEqual(nonJsonPaths({ a: [{ b: undefined }], c: 1 }), ["$.a[0].b"]);
  });

  it("shares no object with the settings", () => {
    const s = resolvedSettings({ nodeSelector: { pool: "system" } });
    const o = nodeLocalDnsObjects(s);
    const pod = podSpec(s);
    (pod.nodeSelector as Record<string, string>).pool = "changed";
    (pod.tolerations as Record<string, string>[])[0].key = "changed";
    (nodeCache(s).resources as { requests: Record<string, string> }).requests.cpu = "changed";
    assert.deepEqual(s.nodeSelector, { pool: "system" });
    assert.equal(s.tolerations[0].key, "CriticalAddonsOnly");
    assert.equal(s.resources.requests?.cpu, "25m");
    assert.deepEqual(nodeLocalDnsObjects(s), o);
  });
});
