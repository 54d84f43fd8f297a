// The offline render CLI: what it writes, and that bad input writes nothing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { main } from "../cli/render";

const ROOT = path.join(__dirname, "..");
const temp: string[] = [];
after(() => temp.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-render-"));
  temp.push(dir);
  return dir;
}

/** A project dir with this Pulumi.yaml and one stack file `test`. */
function project(stackConfig: string[]): string {
  const dir = tempDir();
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  fs.writeFileSync(path.join(dir, "Pulumi.test.yaml"), ["config:", ...stackConfig].join("\n"));
  return dir;
}

function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

const GOLDEN_DIR = path.join(__dirname, "golden", "dev");
const GOLDEN_FILES = [
  "manifests.yaml",
  "rollout.txt",
  "node-program.bash",
  "nodes/node-1/switch.bash",
  "nodes/node-1/guard.bash",
  "nodes/node-1/cleanup.bash",
  "nodes/node-1/commands.txt",
];

function captureStdout(fn: () => number): { code: number; text: string } {
  const original = console.log;
  let text = "";
  console.log = (...args: unknown[]) => void (text += args.join(" ") + "\n");
  try {
    return { code: fn(), text };
  } finally {
    console.log = original;
  }
}

function capture(fn: () => number): { code: number; stderr: string } {
  const original = console.error;
  let stderr = "";
  console.error = (...args: unknown[]) => void (stderr += args.join(" ") + "\n");
  try {
    return { code: fn(), stderr };
  } finally {
    console.error = original;
  }
}

describe("npm run render", () => {
  it("writes the dev stack's manifests and each node's three programs (the real entry point)", () => {
    const out = path.join(tempDir(), "out");
    const stdout = execFileSync(
      "npm",
      ["run", "--silent", "render", "--", "--stack", "dev", "--out", out],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    assert.match(
      stdout,
      /wrote 15 files to .* \(manifests\.yaml, rollout\.txt, node-program\.bash, 3 node directories\)/,
    );
    assert.match(stdout, /\nrollout: 3 rounds \(batch sizes 1 x 3\)\n/);
    assert.deepEqual(listFiles(out), [
      "manifests.yaml",
      "node-program.bash",
      ...["node-1", "node-2", "node-3"].flatMap((n) =>
        ["cleanup.bash", "commands.txt", "guard.bash", "switch.bash"].map((f) => `nodes/${n}/${f}`),
      ),
      "rollout.txt",
    ]);
    assert.equal(
      fs.readFileSync(path.join(out, "rollout.txt"), "utf8"),
      "# 3 rounds (batch sizes 1 x 3); each round starts when the one before succeeded\n" +
        "round 1: node-1\nround 2: node-2\nround 3: node-3\n",
    );
    const docs = parseAllDocuments(fs.readFileSync(path.join(out, "manifests.yaml"), "utf8"));
    assert.deepEqual(
      docs.map((d) => d.get("kind")),
      ["ServiceAccount", "Service", "ConfigMap", "ConfigMap", "DaemonSet", "Service"],
    );
    // The program file is the ConfigMap's, byte for byte.
    assert.equal(
      docs[3]!.getIn(["data", "node-program.bash"]),
      fs.readFileSync(path.join(out, "node-program.bash"), "utf8"),
    );
    execFileSync("bash", ["-n", path.join(out, "node-program.bash")]);
    for (const file of ["switch.bash", "guard.bash", "cleanup.bash"]) {
      const script = path.join(out, "nodes/node-1", file);
      assert.equal(fs.statSync(script).mode & 0o777, 0o755);
      execFileSync("bash", ["-n", script]);
    }
  });

  it("matches the committed golden files, so every change to what runs on nodes is reviewed", () => {
    // Update them with: UPDATE_GOLDEN=1 node --import tsx --test test/render.test.ts
    const out = tempDir();
    assert.equal(
      capture(() => main(["--stack", "dev", "--out", out, "--project-dir", ROOT])).code,
      0,
    );
    for (const file of GOLDEN_FILES) {
      const rendered = fs.readFileSync(path.join(out, file), "utf8");
      const golden = path.join(GOLDEN_DIR, file);
      if (process.env.UPDATE_GOLDEN === "1") {
        fs.mkdirSync(path.dirname(golden), { recursive: true });
        fs.writeFileSync(golden, rendered);
      }
      assert.equal(
        rendered,
        fs.readFileSync(golden, "utf8"),
        `${file} differs from ${path.relative(ROOT, golden)}: review the change, then update the golden files`,
      );
    }
  });

  it("removes the directories an earlier render left for nodes no longer in the stack", () => {
    const out = tempDir();
    const stale = path.join(out, "nodes", "node-9");
    fs.mkdirSync(stale, { recursive: true });
    fs.writeFileSync(path.join(stale, "create.sh"), "old\n");
    const foreign = path.join(out, "nodes", "notes");
    fs.mkdirSync(foreign, { recursive: true });
    fs.writeFileSync(path.join(foreign, "todo.txt"), "mine\n");
    const stdout = captureStdout(() =>
      main(["--stack", "dev", "--out", out, "--project-dir", ROOT]),
    );
    assert.equal(stdout.code, 0);
    assert.equal(fs.existsSync(stale), false);
    assert.match(stdout.text, /removed .*nodes\/node-9: its node is no longer in the stack/);
    assert.equal(
      fs.existsSync(path.join(foreign, "todo.txt")),
      true,
      "files render did not write stay",
    );
  });

  it("answers --help and names an unknown flag", () => {
    const help = captureStdout(() => main(["--help"]));
    assert.equal(help.code, 0);
    assert.match(help.text, /nodes\/<node>\/switch\.bash/);
    const bad = capture(() => main(["--stack", "dev", "--out", "x", "--bogus"]));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^render: Unknown option '--bogus'/);
  });

  it("leaves only node-cache's own placeholder in the manifests", () => {
    const out = tempDir();
    assert.equal(
      capture(() => main(["--stack", "dev", "--out", out, "--project-dir", ROOT])).code,
      0,
    );
    const text = fs.readFileSync(path.join(out, "manifests.yaml"), "utf8");
    assert.deepEqual(
      [...new Set(text.match(/__PILLAR__[A-Z_]+__/g))],
      ["__PILLAR__UPSTREAM__SERVERS__"],
    );
  });

  it("takes the kube-dns ClusterIP from --cluster-dns-ip when config has none", () => {
    const dir = project(["  nodelocaldns:clusterDomain: corp.example"]);
    const out = path.join(tempDir(), "out");
    const missing = capture(() => main(["--stack", "test", "--out", out, "--project-dir", dir]));
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /the kube-dns ClusterIP is unknown offline: set nodelocaldns:clusterDnsIp or pass --cluster-dns-ip <ip>/,
    );
    assert.equal(fs.existsSync(out), false, "nothing written");

    const ok = capture(() =>
      main([
        "--stack",
        "test",
        "--out",
        out,
        "--project-dir",
        dir,
        "--cluster-dns-ip",
        "10.100.0.10",
      ]),
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      fs.readFileSync(path.join(out, "manifests.yaml"), "utf8"),
      /forward \. 10\.100\.0\.10 \{/,
    );
  });

  it("rejects a --cluster-dns-ip that is not an IP with the same message as pulumi up", () => {
    const dir = project([]);
    const out = path.join(tempDir(), "out");
    const r = capture(() =>
      main(["--stack", "test", "--out", out, "--project-dir", dir, "--cluster-dns-ip", "10.0.0"]),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nodelocaldns:clusterDnsIp: "10\.0\.0" is not an IP address/);
  });

  it("fails on bad config with every key named and writes nothing", () => {
    const dir = project([
      "  nodelocaldns:clusterDnsIp: 10.96.0.10",
      "  nodelocaldns:localDnsIp: 10.96.0.10",
      "  nodelocaldns:nodes:",
      "    - {name: a, host: 'x;y'}",
    ]);
    const out = path.join(tempDir(), "out");
    const r = capture(() => main(["--stack", "test", "--out", out, "--project-dir", dir]));
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      [
        "invalid nodelocaldns configuration (2 problems):",
        "  - nodelocaldns:localDnsIp: must differ from clusterDnsIp (both are 10.96.0.10)",
        '  - nodelocaldns:nodes[0].host: "x;y" is not a hostname or IP address',
        "",
      ].join("\n"),
    );
    assert.equal(fs.existsSync(out), false);
  });

  it("needs no secret and writes none", () => {
    const dir = project([
      "  nodelocaldns:clusterDnsIp: 10.96.0.10",
      "  nodelocaldns:ssh:",
      "    privateKey:",
      "      secure: v1:CIPHERTEXTSHOULDNOTAPPEAR",
      "  nodelocaldns:nodes:",
      "    - {name: a, host: 10.0.0.1}",
    ]);
    const out = tempDir();
    const r = capture(() => main(["--stack", "test", "--out", out, "--project-dir", dir]));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /nodes\[\*\]\.hostKey: not pinned for 1 of 1 nodes \(a\)/);
    for (const file of listFiles(out)) {
      const text = fs.readFileSync(path.join(out, file), "utf8");
      assert.ok(!text.includes("CIPHERTEXT") && !text.includes("[secret]"), file);
    }
  });

  it("explains its usage when --stack or --out is missing", () => {
    const r = capture(() => main(["--stack", "dev"]));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: npm run render -- --stack <name> --out <dir>/);
  });
});

describe("npm run render with discovery", () => {
  const stack = [
    "  nodelocaldns:clusterDnsIp: 10.96.0.10",
    "  nodelocaldns:discover:",
    "    selector: role=worker",
    "  nodelocaldns:ssh:",
    "    knownHosts: |",
    // As `ssh-keyscan -p 2222` prints it: the port is part of the name.
    "      [10.0.0.2]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJ6mRSE4Yq0ZYjHBYFbhNEfWb/oMxQi/HdTqKptvK9V",
    "  nodelocaldns:nodes:",
    "    - name: w2",
    "      port: 2222",
  ];
  const node = (name: string, role: string, ip: string) => ({
    metadata: { name, labels: { role } },
    status: {
      addresses: [{ type: "InternalIP", address: ip }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  });

  it("takes the Nodes from --nodes-from: the selected ones, with overrides and pinned keys", () => {
    const dir = project(stack);
    const nodesFile = path.join(dir, "nodes.json");
    fs.writeFileSync(
      nodesFile,
      JSON.stringify({
        kind: "List",
        items: [
          node("w1", "worker", "10.0.0.1"),
          node("w2", "worker", "10.0.0.2"),
          node("cp", "control-plane", "10.0.0.9"),
        ],
      }),
    );
    const out = path.join(dir, "out");
    let result!: { code: number; stderr: string };
    const stdout = captureStdout(() => {
      result = capture(() =>
        main(["--stack", "test", "--out", out, "--project-dir", dir, "--nodes-from", nodesFile]),
      );
      return result.code;
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(stdout.text, /, 2 node directories\)/);
    assert.deepEqual(fs.readdirSync(path.join(out, "nodes")).sort(), ["w1", "w2"]);
    const commands = fs.readFileSync(path.join(out, "nodes/w2/commands.txt"), "utf8");
    assert.match(commands, /10\.0\.0\.2/);
    assert.match(commands, /2222/);
    assert.equal(
      result.stderr,
      "warning: nodelocaldns:nodes[*].hostKey: not pinned for 1 of 2 nodes (w1): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)\n",
    );
  });

  it("without --nodes-from says where the Nodes come from; a bad file is named", () => {
    const dir = project(stack);
    const out = path.join(dir, "out");
    const missing = capture(() => main(["--stack", "test", "--out", out, "--project-dir", dir]));
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /pass --nodes-from <file> \(kubectl get nodes -o json > nodes\.json\)/,
    );
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, JSON.stringify({ kind: "Node" }));
    const wrong = capture(() =>
      main(["--stack", "test", "--out", out, "--project-dir", dir, "--nodes-from", bad]),
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /--nodes-from .*bad\.json: not a NodeList: no items list/);
    assert.equal(fs.existsSync(out), false, "nothing written");
  });
});

describe("npm run render with kubeadmKubeletConfig", () => {
  const stack = [
    "  nodelocaldns:clusterDnsIp: 10.96.0.10",
    "  nodelocaldns:kubeadmKubeletConfig: true",
    "  nodelocaldns:nodes:",
    "    - name: n1",
    "      host: 10.0.0.1",
  ];
  const kubeadm = fs.readFileSync(
    path.join(__dirname, "fixtures", "kubeadm-kubelet-config.yaml"),
    "utf8",
  );
  /** The ConfigMap as `kubectl -n kube-system get configmap kubelet-config -o json` prints it. */
  const saved = (dir: string, annotations?: Record<string, string>) => {
    const file = path.join(dir, "kubelet-config.json");
    const metadata = { name: "kubelet-config", namespace: "kube-system", annotations };
    fs.writeFileSync(
      file,
      JSON.stringify({ kind: "ConfigMap", metadata, data: { kubelet: kubeadm } }),
    );
    return file;
  };
  const run = (dir: string, ...extra: string[]) => {
    const out = path.join(dir, "out");
    let result!: { code: number; stderr: string };
    const stdout = captureStdout(() => {
      result = capture(() =>
        main(["--stack", "test", "--out", out, "--project-dir", dir, ...extra]),
      );
      return result.code;
    });
    return { ...result, stdout: stdout.text, out };
  };

  it("writes the kubelet document as up would: only the clusterDNS entry changed", () => {
    const dir = project(stack);
    const r = run(dir, "--kubelet-config-from", saved(dir));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /node-program\.bash, kubelet-config\.yaml, 1 node directories\)/);
    assert.equal(
      fs.readFileSync(path.join(r.out, "kubelet-config.yaml"), "utf8"),
      kubeadm.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n"),
    );
  });

  it("takes the original from our annotation on a ConfigMap already switched", () => {
    const dir = project([...stack, "  nodelocaldns:fallbackToKubeDns: true"]);
    const annotation = JSON.stringify({ clusterDNS: "clusterDNS:\n- 10.96.0.10\n" });
    const file = saved(dir, { "node-local-dns.pulumi/original-cluster-dns": annotation });
    const switched = JSON.parse(fs.readFileSync(file, "utf8")) as { data: { kubelet: string } };
    switched.data.kubelet = kubeadm.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n");
    fs.writeFileSync(file, JSON.stringify(switched));
    const r = run(dir, "--kubelet-config-from", file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      fs.readFileSync(path.join(r.out, "kubelet-config.yaml"), "utf8"),
      kubeadm.replace("\n- 10.96.0.10\n", "\n- 169.254.20.10\n- 10.96.0.10\n"),
    );
  });

  it("says where the ConfigMap comes from, and refuses the file without the option", () => {
    const dir = project(stack);
    const missing = run(dir);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /pass --kubelet-config-from <file> \(kubectl -n kube-system get configmap kubelet-config -o json > kubelet-config\.json\)/,
    );
    assert.equal(fs.existsSync(missing.out), false, "nothing written");
    const off = project(stack.filter((line) => !line.includes("kubeadmKubeletConfig")));
    const stray = run(off, "--kubelet-config-from", saved(off));
    assert.equal(stray.code, 1);
    assert.match(stray.stderr, /--kubelet-config-from needs nodelocaldns:kubeadmKubeletConfig/);
  });
});

describe("npm run render with --daemonset-from", () => {
  const stack = [
    "  nodelocaldns:clusterDnsIp: 10.96.0.10",
    "  nodelocaldns:nodes:",
    "    - name: n1",
    "      host: 10.0.0.1",
  ];
  /** The DaemonSet as `kubectl -n kube-system get daemonset node-local-dns -o json` prints it. */
  const saved = (dir: string, args: string[]) => {
    const file = path.join(dir, "daemonset.json");
    const containers = [{ name: "node-cache", image: "x", args }];
    fs.writeFileSync(
      file,
      JSON.stringify({ kind: "DaemonSet", spec: { template: { spec: { containers } } } }),
    );
    return file;
  };
  const strategyOf = (out: string) => {
    const docs = parseAllDocuments(fs.readFileSync(path.join(out, "manifests.yaml"), "utf8"));
    const ds = docs.find((d) => d.get("kind") === "DaemonSet")!;
    return ds.getIn(["spec", "updateStrategy"], false) as { toJSON(): unknown };
  };

  it("renders an update of an earlier version's DaemonSet the old way; of this one's a surge", () => {
    for (const [args, rollingUpdate] of [
      [["-localip", "169.254.20.10"], { maxSurge: 0, maxUnavailable: "10%" }],
      [["-localip", "169.254.20.10", "-skipteardown"], { maxSurge: "10%", maxUnavailable: 0 }],
    ] as const) {
      const dir = project(stack);
      const out = path.join(dir, "out");
      const argv = ["--stack", "test", "--out", out, "--project-dir", dir];
      const r = capture(
        () => captureStdout(() => main([...argv, "--daemonset-from", saved(dir, [...args])])).code,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(strategyOf(out).toJSON(), { type: "RollingUpdate", rollingUpdate });
    }
  });

  it("names a file that is not a DaemonSet", () => {
    const dir = project(stack);
    const file = path.join(dir, "cm.json");
    fs.writeFileSync(file, JSON.stringify({ kind: "ConfigMap" }));
    const argv = ["--stack", "test", "--out", path.join(dir, "out"), "--project-dir", dir];
    const r = capture(() => main([...argv, "--daemonset-from", file]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--daemonset-from .*cm\.json: not a DaemonSet/);
  });
});
