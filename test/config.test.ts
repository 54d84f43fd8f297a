import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseSettings, RawConfig } from "../components/config";
import { DEFAULTS } from "../components/settings";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnFbvm4BNwc0sBhv3ZN1fQpaCtbDYIvZrQuQmPNDi5C";

function raw(values: Record<string, unknown>, secretKeys: string[] = []): RawConfig {
  return { values, isSecret: (k) => secretKeys.includes(k) };
}

function problems(values: Record<string, unknown>, secretKeys: string[] = []): string[] {
  try {
    parseSettings(raw(values, secretKeys));
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail("expected the config to be rejected");
}

describe("parseSettings defaults", () => {
  it("applies upstream defaults to an empty config", () => {
    const { settings, warnings } = parseSettings(raw({}));
    assert.deepEqual(warnings, [
      "nodelocaldns:nodes: no nodes: the cache is deployed, but no kubelet is switched to it",
    ]);
    assert.equal(settings.clusterDnsIp, undefined);
    assert.equal(settings.localDnsIp, "169.254.20.10");
    assert.equal(settings.fallbackToKubeDns, false);
    assert.equal(settings.clusterDomain, "cluster.local");
    assert.equal(settings.dnsServiceName, "kube-dns");
    assert.equal(settings.image, "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8");
    assert.deepEqual(settings.cache, DEFAULTS.cache);
    assert.equal(settings.healthPort, 9254);
    assert.equal(settings.metricsPort, 9253);
    assert.deepEqual(settings.resources, {
      requests: { cpu: "25m", memory: "50Mi" },
      limits: { memory: "400Mi" },
    });
    assert.equal(settings.priorityClassName, "system-node-critical");
    assert.deepEqual(settings.tolerations, DEFAULTS.tolerations);
    assert.notEqual(settings.tolerations, DEFAULTS.tolerations, "defaults are copied, not shared");
    assert.deepEqual(settings.nodeSelector, {});
    assert.deepEqual(settings.nodes, []);
    assert.deepEqual(settings.rollout, {
      canary: 1,
      maxBatch: { percent: 10 },
      growth: 2,
      readyTimeoutSeconds: 120,
      kubeletTimeoutSeconds: 60,
    });
    assert.equal(settings.stateDir, "/var/lib/nodelocaldns");
  });

  it("accepts integers as strings, the way `pulumi config set` stores them", () => {
    const { settings } = parseSettings(
      raw({ healthPort: "8181", metricsPort: 9254, rollout: { batchSize: "10" } }),
    );
    assert.equal(settings.healthPort, 8181);
    assert.equal(settings.metricsPort, 9254);
    assert.equal(settings.rollout.batchSize, 10);
  });

  for (const key of ["fallbackToKubeDns", "kubeadmKubeletConfig"] as const) {
    it(`takes ${key} as a boolean or as the text \`pulumi config set\` stores`, () => {
      assert.equal(parseSettings(raw({})).settings[key], false, "off by default");
      for (const value of [true, "true"]) {
        assert.equal(parseSettings(raw({ [key]: value })).settings[key], true);
      }
      assert.equal(parseSettings(raw({ [key]: "false" })).settings[key], false);
      assert.throws(
        () => parseSettings(raw({ [key]: "yes" })),
        new RegExp(`nodelocaldns:${key}: must be true or false, got "yes"`),
      );
    });
  }

  it("accepts every kube-proxy mode, ipvs when unset", () => {
    assert.equal(parseSettings(raw({})).settings.kubeProxyMode, "ipvs");
    for (const mode of ["ipvs", "iptables", "nftables"]) {
      assert.equal(parseSettings(raw({ kubeProxyMode: mode })).settings.kubeProxyMode, mode);
    }
  });

  it("takes maxBatch as a share or a count, as `pulumi config set --path` stores them", () => {
    const rollout = (maxBatch: unknown) =>
      parseSettings(raw({ rollout: { maxBatch } })).settings.rollout;
    assert.deepEqual(rollout("25%").maxBatch, { percent: 25 });
    assert.deepEqual(rollout("7").maxBatch, { count: 7 });
    assert.deepEqual(rollout(7).maxBatch, { count: 7 });
  });

  it("writes IPv6 addresses in canonical form, as `ip addr` prints them", () => {
    const { settings } = parseSettings(
      raw({ localDnsIp: "FD00:0:0::0010", clusterDnsIp: "FD00::A" }),
    );
    assert.equal(settings.localDnsIp, "fd00::10");
    assert.equal(settings.clusterDnsIp, "fd00::a");
    assert.deepEqual(problems({ localDnsIp: "FD00::10", clusterDnsIp: "fd00:0::10" }), [
      "nodelocaldns:localDnsIp: must differ from clusterDnsIp (both are fd00::10)",
    ]);
  });

  it("applies ssh and kubelet defaults to every node and lets a node override them", () => {
    const { settings, warnings } = parseSettings(
      raw(
        {
          ssh: { user: "ops", port: 2222, privateKey: "KEY", hostKey: HOST_KEY, sudo: false },
          kubelet: { format: "env-file", path: "/etc/default/kubelet" },
          nodes: [
            { name: "a", host: "10.0.0.1" },
            {
              name: "b",
              host: "node-b.example.com",
              port: 22,
              user: "root",
              kubelet: { format: "config-file" },
              proxy: { host: "bastion", hostKey: HOST_KEY },
            },
          ],
        },
        ["ssh"],
      ),
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(settings.nodes[0], {
      name: "a",
      host: "10.0.0.1",
      port: 2222,
      user: "ops",
      sudo: false,
      privateKey: "KEY",
      hostKey: HOST_KEY,
      kubelet: { format: "env-file", path: "/etc/default/kubelet" },
    });
    assert.deepEqual(settings.nodes[1].kubelet, {
      format: "config-file",
      path: "/etc/default/kubelet",
    });
    assert.deepEqual(settings.nodes[1].proxy, {
      host: "bastion",
      port: 22,
      user: "root",
      hostKey: HOST_KEY,
    });
    assert.equal(settings.nodes[1].user, "root");
    assert.equal(settings.nodes[1].port, 22);
  });
});

describe("parseSettings rejects bad config, naming each key", () => {
  const table: [string, Record<string, unknown>, string[]][] = [
    [
      "malformed IPs",
      { clusterDnsIp: "10.96.0.300", localDnsIp: "169.254.20" },
      [
        'nodelocaldns:clusterDnsIp: "10.96.0.300" is not an IP address',
        'nodelocaldns:localDnsIp: "169.254.20" is not an IP address',
      ],
    ],
    [
      "localDnsIp equal to clusterDnsIp",
      { clusterDnsIp: "169.254.20.10", localDnsIp: "169.254.20.10" },
      ["nodelocaldns:localDnsIp: must differ from clusterDnsIp (both are 169.254.20.10)"],
    ],
    [
      "a cluster domain that is not a DNS name",
      { clusterDomain: "cluster local" },
      ['nodelocaldns:clusterDomain: "cluster local" is not a DNS name'],
    ],
    [
      "an unknown mode",
      { kubeProxyMode: "userspace" },
      ['nodelocaldns:kubeProxyMode: "userspace" is not one of ipvs, iptables, nftables'],
    ],
    [
      "ports out of range or clashing",
      { healthPort: 70000, metricsPort: "0" },
      [
        "nodelocaldns:healthPort: 70000 is out of range (1 to 65535)",
        "nodelocaldns:metricsPort: 0 is out of range (1 to 65535)",
      ],
    ],
    [
      "health and metrics on one port",
      { healthPort: 9000, metricsPort: 9000 },
      ["nodelocaldns:metricsPort: must differ from healthPort (both are 9000)"],
    ],
    [
      "node-cache's own metrics port",
      { metricsPort: 9353 },
      ["nodelocaldns:metricsPort: 9353 is node-cache's own metrics listener on the host network"],
    ],
    [
      "a port that is not a number",
      { healthPort: "80a" },
      ['nodelocaldns:healthPort: must be a whole number, got "80a"'],
    ],
    [
      "unknown keys at every level",
      { locaDnsIp: "1.2.3.4", cache: { ttl: 30, tll: 5 }, rollout: { batch: 2 } },
      [
        "nodelocaldns:locaDnsIp: unknown key (known keys: clusterDnsIp, dnsServiceName, localDnsIp, fallbackToKubeDns, kubeadmKubeletConfig, liveView, restartWorkloads, clusterDomain, kubeProxyMode, image, cache, healthPort, metricsPort, resources, priorityClassName, tolerations, nodeSelector, monitoring, nodes, discover, ssh, kubelet, rollout, stateDir)",
        "nodelocaldns:cache.tll: unknown key (known keys: successSize, successTtl, denialSize, denialTtl, ttl)",
        "nodelocaldns:rollout.batch: unknown key (known keys: batchSize, canary, maxBatch, growth, readyTimeoutSeconds, kubeletTimeoutSeconds)",
      ],
    ],
    [
      "an image with shell metacharacters",
      { image: "registry.example.com/node-cache:1.26.4;reboot" },
      [
        'nodelocaldns:image: "registry.example.com/node-cache:1.26.4;reboot" is not a container image reference',
      ],
    ],
    [
      "a stateDir that climbs",
      { stateDir: "/var/lib/../../etc" },
      [
        'nodelocaldns:stateDir: "/var/lib/../../etc" is not a directory of its own under /var/lib, /var/opt, /opt, /srv (plain names only)',
      ],
    ],
    [
      "resources that are not quantities",
      { resources: { requests: { cpu: "lots" }, limit: {} } },
      [
        "nodelocaldns:resources.limit: unknown key (known keys: requests, limits)",
        'nodelocaldns:resources.requests.cpu: "lots" is not a quantity (e.g. 100m, 64Mi)',
      ],
    ],
    [
      "tolerations with unknown operators and effects",
      { tolerations: [{ operator: "Maybe", effect: "Never" }] },
      [
        'nodelocaldns:tolerations[0].operator: "Maybe" is not one of Exists, Equal',
        'nodelocaldns:tolerations[0].effect: "Never" is not one of NoSchedule, PreferNoSchedule, NoExecute',
      ],
    ],
    [
      "a kubelet format that does not exist and a relative path",
      { kubelet: { format: "ini", path: "etc/kubelet" } },
      [
        'nodelocaldns:kubelet.format: "ini" is not one of auto, env-file, config-file, unit-file',
        'nodelocaldns:kubelet.path: "etc/kubelet" is not an absolute path of plain [A-Za-z0-9._-] names',
      ],
    ],
    [
      "a rollout with fixed and growing batches at once, and shares out of range",
      { rollout: { batchSize: 5, canary: 2, maxBatch: "0%" } },
      [
        "nodelocaldns:rollout.batchSize: fixed batches cannot be combined with canary, maxBatch: set one or the other",
        "nodelocaldns:rollout.maxBatch: 0% is out of range (1% to 100%)",
      ],
    ],
    [
      "a maxBatch that is neither a count nor a share",
      { rollout: { maxBatch: "ten" } },
      ['nodelocaldns:rollout.maxBatch: "ten" is not a number of nodes or a share ("10%")'],
    ],
    [
      "rollout numbers out of range",
      { rollout: { batchSize: 0, readyTimeoutSeconds: 0, kubeletTimeoutSeconds: 601 } },
      [
        "nodelocaldns:rollout.batchSize: 0 is out of range (1 to 10000)",
        "nodelocaldns:rollout.readyTimeoutSeconds: 0 is out of range (1 to 3600)",
        "nodelocaldns:rollout.kubeletTimeoutSeconds: 601 is out of range (1 to 600)",
      ],
    ],
    [
      "nodes: hosts with shell metacharacters or spaces, duplicates, missing keys",
      {
        nodes: [
          { name: "a", host: "10.0.0.1;reboot", hostKey: HOST_KEY },
          { name: "a", host: "node b", hostKey: HOST_KEY },
          { host: "10.0.0.3", hostKey: HOST_KEY },
          { name: "d", host: "10.0.0.4", hostKey: HOST_KEY, sudo: true },
          { name: "e", host: "10.0.0.4", hostKey: "not a key" },
          "f",
        ],
      },
      [
        'nodelocaldns:nodes[0].host: "10.0.0.1;reboot" is not a hostname or IP address',
        'nodelocaldns:nodes[1].host: "node b" is not a hostname or IP address',
        'nodelocaldns:nodes[1].name: duplicate node name "a" (also nodes[0])',
        "nodelocaldns:nodes[2].name: is required",
        "nodelocaldns:nodes[3].sudo: unknown key (known keys: name, host, port, user, privateKey, hostKey, proxy, kubelet)",
        'nodelocaldns:nodes[4].hostKey: "not a key" is not an SSH public host key ("ssh-ed25519 AAAA...")',
        "nodelocaldns:nodes[4].host: 10.0.0.4:22 is also nodes[3]: one node, one entry",
        'nodelocaldns:nodes[5]: must be an object, got "f"',
      ],
    ],
    [
      "a node name that cannot name a resource or a directory",
      { nodes: [{ name: "../etc", host: "10.0.0.1" }] },
      ['nodelocaldns:nodes[0].name: "../etc" is not a node name (lower-case DNS name)'],
    ],
    [
      "private keys in plain text",
      {
        ssh: { privateKey: "KEY" },
        nodes: [{ name: "a", host: "10.0.0.1", privateKey: "KEY", hostKey: HOST_KEY }],
      },
      [
        "nodelocaldns:ssh.privateKey: is not stored as a secret: set it with `pulumi config set --secret --path 'ssh.privateKey'`",
        "nodelocaldns:nodes[0].privateKey: is not stored as a secret: set it with `pulumi config set --secret --path 'nodes[0].privateKey'`",
      ],
    ],
    [
      "an ssh user and proxy that could inject",
      { ssh: { user: "root; id", proxy: { port: 22 } } },
      [
        'nodelocaldns:ssh.user: "root; id" is not a user name',
        "nodelocaldns:ssh.proxy.host: is required",
      ],
    ],
  ];

  for (const [what, values, expected] of table) {
    it(what, () => {
      assert.deepEqual(problems(values).sort(), [...expected].sort());
    });
  }

  it("reports every problem of a config at once, in one error message", () => {
    const err = (() => {
      try {
        parseSettings(raw({ localDnsIp: "x", healthPort: -1, nodes: [{ name: "a" }] }));
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      [
        "invalid nodelocaldns configuration (3 problems):",
        '  - nodelocaldns:localDnsIp: "x" is not an IP address',
        "  - nodelocaldns:healthPort: -1 is out of range (1 to 65535)",
        "  - nodelocaldns:nodes[0].host: is required",
      ].join("\n"),
    );
  });

  it("never echoes a private key in a message", () => {
    const messages = problems({ ssh: { privateKey: "-----BEGIN SECRET-----" } }).join("\n");
    assert.ok(!messages.includes("BEGIN SECRET"), messages);
  });
});

describe("parseSettings warnings", () => {
  it("warns when localDnsIp is not link-local", () => {
    const { warnings } = parseSettings(
      raw({
        localDnsIp: "10.255.255.10",
        nodes: [{ name: "a", host: "10.0.0.1", hostKey: HOST_KEY }],
      }),
    );
    assert.deepEqual(warnings, [
      "nodelocaldns:localDnsIp: 10.255.255.10 is not link-local (169.254.0.0/16) as upstream recommends",
    ]);
  });

  it("warns once for every node whose host key is not pinned, naming a few", () => {
    const nodes = Array.from({ length: 8 }, (_, i) => ({ name: `n${i}`, host: `10.0.0.${i + 1}` }));
    nodes[2] = { ...nodes[2]!, hostKey: HOST_KEY } as (typeof nodes)[number];
    const { warnings } = parseSettings(raw({ nodes }));
    assert.deepEqual(warnings, [
      "nodelocaldns:nodes[*].hostKey: not pinned for 7 of 8 nodes (n0, n1, n3, n4, n5 and 2 more): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)",
    ]);
  });

  it("warns when there are no nodes", () => {
    assert.deepEqual(parseSettings(raw({ nodes: [] })).warnings, [
      "nodelocaldns:nodes: no nodes: the cache is deployed, but no kubelet is switched to it",
    ]);
  });

  it("accepts a private key stored as a secret", () => {
    const { settings } = parseSettings(
      raw({ nodes: [{ name: "a", host: "10.0.0.1", privateKey: "KEY", hostKey: HOST_KEY }] }, [
        "nodes",
      ]),
    );
    assert.equal(settings.nodes[0].privateKey, "KEY");
  });
});

describe("stateDir: only a directory that only root can write, and that survives reboots", () => {
  const refused = (stateDir: string) => [
    `nodelocaldns:stateDir: ${JSON.stringify(stateDir)} is not a directory of its own under /var/lib, /var/opt, /opt, /srv (plain names only)`,
  ];
  // Each of these once passed: a symlink-free check on the node is the second line of defence,
  // these names never reach it.
  for (const stateDir of [
    "/",
    "/.",
    "/etc/.",
    "/etc",
    "/etc/kubernetes/kubelet",
    "/tmp/x",
    "/var/tmp/nld",
    "/run/nodelocaldns",
    "/var/lib",
    "/var/lib/",
    "/var/lib//x",
    "/var/lib/./x",
    "/var/lib/.hidden",
    "relative/dir",
    "/var/lib/x y",
  ]) {
    it(`refuses ${JSON.stringify(stateDir)}`, () => {
      assert.deepEqual(problems({ stateDir }), refused(stateDir));
    });
  }
  for (const stateDir of [
    "/var/lib/nodelocaldns",
    "/var/opt/nld/state",
    "/opt/nodelocaldns",
    "/srv/x",
  ]) {
    it(`accepts ${stateDir}`, () => {
      assert.equal(parseSettings(raw({ stateDir })).settings.stateDir, stateDir);
    });
  }
});

describe("address families", () => {
  it("refuses a localDnsIp of another family than clusterDnsIp", () => {
    assert.deepEqual(problems({ localDnsIp: "fd00::10", clusterDnsIp: "10.96.0.10" }), [
      "nodelocaldns:localDnsIp: fd00::10 and clusterDnsIp 10.96.0.10 must be of one address family (the cache replaces the kube-dns entry of its own family)",
    ]);
  });
});

describe("no secret and no long value in any message", () => {
  const KEY =
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ MARKER\n-----END OPENSSH PRIVATE KEY-----\n";
  const CIPHERTEXT = "v1:MARKERCIPHERTEXT0123456789abcdef0123456789abcdef==";
  // Where a key lands when `pulumi config set --secret [--path ...] < key` names the wrong key.
  const cases: [string, Record<string, unknown>, string[], string][] = [
    [
      "the whole ssh object",
      { ssh: KEY },
      ["ssh"],
      "nodelocaldns:ssh: must be an object, got a secret value",
    ],
    [
      "a node",
      { nodes: [KEY] },
      ["nodes"],
      "nodelocaldns:nodes[0]: must be an object, got a secret value",
    ],
    [
      "a node's hostKey",
      { nodes: [{ name: "a", host: "10.0.0.1", hostKey: KEY }] },
      ["nodes"],
      'nodelocaldns:nodes[0].hostKey: a secret value is not an SSH public host key ("ssh-ed25519 AAAA...")',
    ],
    [
      "ssh.proxy",
      { ssh: { proxy: KEY } },
      ["ssh"],
      "nodelocaldns:ssh.proxy: must be an object, got a secret value",
    ],
    [
      "ssh.user",
      { ssh: { user: KEY } },
      ["ssh"],
      "nodelocaldns:ssh.user: a secret value is not a user name",
    ],
    [
      "hostKey, not stored as a secret",
      { ssh: { hostKey: KEY } },
      [],
      'nodelocaldns:ssh.hostKey: a string of 120 characters (not shown) is not an SSH public host key ("ssh-ed25519 AAAA...")',
    ],
    [
      "a ciphertext in a plain field",
      { image: CIPHERTEXT },
      [],
      "nodelocaldns:image: a string of 53 characters (not shown) is not a container image reference",
    ],
    [
      "a secret clusterDnsIp",
      { clusterDnsIp: "not an ip" },
      ["clusterDnsIp"],
      "nodelocaldns:clusterDnsIp: a secret value is not an IP address",
    ],
  ];
  for (const [what, values, secretKeys, message] of cases) {
    it(`a key pasted into ${what}`, () => {
      const got = problems(values, secretKeys);
      assert.ok(got.includes(message), got.join("\n"));
      for (const line of got) {
        assert.ok(!line.includes("MARKER") && !line.includes("PRIVATE KEY"), line);
      }
    });
  }
});

describe("pod settings are checked as the API server checks them", () => {
  const table: [string, Record<string, unknown>, string[]][] = [
    [
      "a misspelt resource, a negative quantity, a request above its limit",
      {
        resources: {
          requests: { memroy: "5Mi", cpu: "-1", memory: "64Mi" },
          limits: { memory: "32Mi", "vendor.example/gpu": "1" },
        },
      },
      [
        "nodelocaldns:resources.requests.memroy: unknown resource (known: cpu, memory, ephemeral-storage, hugepages-<size>, or a domain/name extended resource)",
        "nodelocaldns:resources.requests.cpu: -1 must be greater than or equal to 0",
        "nodelocaldns:resources.requests.memory: 64Mi must be less than or equal to the limit 32Mi",
      ],
    ],
    [
      "quantities in every form the API server accepts",
      {
        resources: {
          requests: { cpu: "0.5", memory: "1e6", "hugepages-2Mi": "2Mi" },
          limits: { cpu: "1500m" },
        },
      },
      [],
    ],
    [
      "tolerations the API server refuses",
      {
        tolerations: [
          { operator: "Equal", value: "x" },
          { key: "k", operator: "Exists", value: "v" },
          { key: "k", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 },
        ],
      },
      [
        "nodelocaldns:tolerations[0].operator: must be Exists when key is empty",
        "nodelocaldns:tolerations[1].value: must be empty when operator is Exists",
        "nodelocaldns:tolerations[2].tolerationSeconds: is only allowed with effect NoExecute",
      ],
    ],
    [
      "a node selector whose key is a value and whose value is a key",
      { nodeSelector: { "not a key": "x", "kubernetes.io/os": "linux/amd64" } },
      [
        "nodelocaldns:nodeSelector.not a key: the key is not a label key (prefix/name, name of [A-Za-z0-9._-], at most 63)",
        'nodelocaldns:nodeSelector.kubernetes.io/os: "linux/amd64" is not a label value',
      ],
    ],
    [
      "an image without a tag or digest",
      { image: "registry.example:5000/dns/k8s-dns-node-cache" },
      [
        'nodelocaldns:image: "registry.example:5000/dns/k8s-dns-node-cache" has no tag or digest: a system-node-critical DaemonSet must not run an implicit :latest',
      ],
    ],
  ];
  for (const [what, values, expected] of table) {
    it(what, () => {
      const got = expected.length === 0 ? [] : problems(values);
      if (expected.length === 0) parseSettings(raw(values));
      assert.deepEqual(got.sort(), [...expected].sort());
    });
  }

  it("accepts an image pinned by digest only, or by tag and digest", () => {
    const digest = `@sha256:${"a".repeat(64)}`;
    for (const image of [
      `registry.k8s.io/dns/k8s-dns-node-cache${digest}`,
      `r.example/n:1.26.8${digest}`,
    ]) {
      assert.equal(parseSettings(raw({ image })).settings.image, image);
    }
  });
});

describe("discover and ssh.knownHosts", () => {
  const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V";

  it("names every bad discover key at once", () => {
    assert.deepEqual(
      problems({
        clusterDnsIp: "10.96.0.10",
        discover: { selector: "role in (a b)", addressType: "PodIP", exclude: ["Bad_Name"], x: 1 },
      }).sort(),
      [
        "nodelocaldns:discover.x: unknown key (known keys: selector, exclude, addressType)",
        'nodelocaldns:discover.selector: "role in (a b)": not a label value list',
        'nodelocaldns:discover.addressType: "PodIP" is not one of InternalIP, ExternalIP, Hostname',
        'nodelocaldns:discover.exclude[0]: "Bad_Name" is not a node name',
      ].sort(),
    );
  });

  it("with discover, a nodes entry may leave out host; without, it may not", () => {
    const values = { clusterDnsIp: "10.96.0.10", nodes: [{ name: "n1", port: 2222 }] };
    const { settings, warnings } = parseSettings(raw({ ...values, discover: {} }));
    assert.deepEqual(settings.discover?.selector, []);
    assert.equal(settings.discover?.addressType, "InternalIP");
    assert.equal(settings.nodes[0]!.host, "");
    assert.equal(settings.nodes[0]!.port, 2222);
    assert.deepEqual(warnings, [], "unpinned keys are counted once the Nodes are known");
    assert.deepEqual(problems(values), ["nodelocaldns:nodes[0].host: is required"]);
    // `discover: null` is discovery off, as when the key is absent: host stays required.
    assert.deepEqual(problems({ ...values, discover: null }), [
      "nodelocaldns:nodes[0].host: is required",
    ]);
  });

  it("pins nodes and the bastion from known_hosts: a node's own key first, ssh.hostKey last", () => {
    const { settings } = parseSettings(
      raw({
        clusterDnsIp: "10.96.0.10",
        ssh: {
          knownHosts: `10.0.0.1 ${KEY}\n[10.0.0.2]:2222 ${KEY}\nbastion,node-d.example ${KEY}\n`,
          hostKey: HOST_KEY,
          proxy: { host: "bastion" },
        },
        nodes: [
          { name: "a", host: "10.0.0.1" },
          { name: "b", host: "10.0.0.2", port: 2222 },
          { name: "c", host: "10.0.0.2" },
          { name: "d", host: "node-d.example", hostKey: HOST_KEY },
        ],
      }),
    );
    assert.deepEqual(
      settings.nodes.map((n) => n.hostKey),
      [KEY, KEY, HOST_KEY, HOST_KEY],
    );
    assert.equal(settings.nodes[0]!.proxy?.hostKey, KEY);
  });

  it("names bad known_hosts lines by number, never by content", () => {
    const got = problems({
      clusterDnsIp: "10.96.0.10",
      ssh: { knownHosts: `# fleet\n*.example ${KEY}\n@cert-authority x ${KEY}\nh ssh-rsa !!!\n` },
    });
    assert.deepEqual(got, [
      "nodelocaldns:ssh.knownHosts: line 2: host pattern wildcards and negations are not supported: list each host",
      "nodelocaldns:ssh.knownHosts: line 3: @cert-authority: a CA cannot be pinned as a host key; list the hosts' own keys",
      "nodelocaldns:ssh.knownHosts: line 4: the key is not valid base64",
    ]);
    assert.ok(!got.join("\n").includes("AAAA"), "no key in a message");
  });
});
