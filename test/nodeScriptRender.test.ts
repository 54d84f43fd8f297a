// The node programs as text: how they are put together and how values enter them. Nothing here
// runs a program on a node (test/nodeProgram*.test.ts do); bash only checks syntax and evaluates
// the value assignments, and shellcheck lints the result.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { createHash } from "node:crypto";
import {
  DELIVERED_NODE_PROGRAM,
  DELIVERED_NODE_PROGRAM_SHA256,
  lockTimeoutSeconds,
  renderCleanupProgram,
  renderGuardProgram,
  renderNodeProgram,
  renderNodeScript,
  renderSwitchLauncher,
  type NodeScriptParams,
} from "../components/nodeScript";
import { DEFAULTS } from "../components/settings";
import { shellQuote } from "../components/shell";

const DEFAULT_PARAMS: NodeScriptParams = {
  nodeName: "node-1",
  localDnsIp: DEFAULTS.localDnsIp,
  clusterDnsIp: "10.96.0.10",
  fallbackToKubeDns: DEFAULTS.fallbackToKubeDns,
  clusterDomain: DEFAULTS.clusterDomain,
  kubelet: { ...DEFAULTS.kubelet },
  stateDir: DEFAULTS.stateDir,
  readyTimeoutSeconds: DEFAULTS.rollout.readyTimeoutSeconds,
  kubeletTimeoutSeconds: DEFAULTS.rollout.kubeletTimeoutSeconds,
};

const VALUE_NAMES = [
  "NODE_NAME",
  "LOCAL_DNS_IP",
  "CLUSTER_DNS_IP",
  "FALLBACK_TO_KUBE_DNS",
  "CLUSTER_DOMAIN",
  "STATE_DIR",
  "KUBELET_PATH",
  "KUBELET_FORMAT",
  "READY_TIMEOUT_SECONDS",
  "KUBELET_TIMEOUT_SECONDS",
  "LOCK_TIMEOUT_SECONDS",
];

function bashSyntaxCheck(text: string): void {
  const result = spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
}

/**
 * The program's value assignments (the readonly lines before its first source file), evaluated by
 * bash on their own: the values bash sees.
 */
function bashValues(program: string): Record<string, string> {
  const head = program.slice(0, program.indexOf("\n# ----"));
  const lines = head.split("\n").filter((l) => /^readonly [A-Z0-9_]+=/.test(l));
  const names = lines.map((l) => l.slice("readonly ".length, l.indexOf("=")));
  const result = spawnSync(
    "bash",
    ["-c", `${lines.join("\n")}\nprintf '%s\\0' ${names.map((n) => `"$${n}"`).join(" ")}`],
    { encoding: "utf8", env: {} },
  );
  assert.equal(result.status, 0, result.stderr);
  const values = result.stdout.split("\0").slice(0, -1);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

describe("renderNodeProgram", () => {
  const program = renderNodeProgram(DEFAULT_PARAMS);

  it("is one bash group that detaches stdin first and ends by calling main", () => {
    assert.ok(
      program.startsWith("{\nexec </dev/null\n# nodelocaldns node program for node node-1\n"),
    );
    assert.ok(program.endsWith('\nmain "$@"\n}\n'));
    bashSyntaxCheck(program);
  });

  it("starts with a header an operator can read: what, how to run it, what it leaves", () => {
    const header = program.slice(0, program.indexOf("bash_variables_at_start"));
    for (const phrase of [
      "Points this node's kubelet at the node-local DNS cache (create, update)",
      "bash -s create < program",
      "While switched it keeps /var/lib/nodelocaldns (mode 0700)",
      "Source: components/nodeProgram/*.bash",
    ]) {
      assert.ok(header.includes(phrase), phrase);
    }
  });

  it("puts each value first, as a readonly assignment, with the value given", () => {
    assert.deepEqual(bashValues(program), {
      NODE_NAME: "node-1",
      LOCAL_DNS_IP: "169.254.20.10",
      CLUSTER_DNS_IP: "10.96.0.10",
      FALLBACK_TO_KUBE_DNS: "no",
      CLUSTER_DOMAIN: "cluster.local",
      STATE_DIR: "/var/lib/nodelocaldns",
      KUBELET_PATH: "",
      KUBELET_FORMAT: "auto",
      READY_TIMEOUT_SECONDS: "120",
      KUBELET_TIMEOUT_SECONDS: "60",
      LOCK_TIMEOUT_SECONDS: String(lockTimeoutSeconds(DEFAULT_PARAMS)),
    });
    assert.equal(lockTimeoutSeconds(DEFAULT_PARAMS), 120 + 2 * 60 + 30);
  });

  it("quotes every value with shellQuote, even a value that should never get this far", () => {
    const odd = { ...DEFAULT_PARAMS, nodeName: `a'b $(touch /tmp/pwned) "c" \`d\`` };
    const text = renderNodeProgram(odd);
    bashSyntaxCheck(text);
    assert.ok(text.includes(`\nreadonly NODE_NAME=${shellQuote(odd.nodeName)}\n`));
    assert.equal(bashValues(text).NODE_NAME, odd.nodeName);
  });

  it("names each value once, in its assignment; the rest of the program refers to it", () => {
    const params: NodeScriptParams = {
      nodeName: "worker-zq7",
      localDnsIp: "169.254.99.77",
      clusterDnsIp: "10.111.222.33",
      fallbackToKubeDns: true,
      clusterDomain: "corp-zq7.example",
      kubelet: { format: "config-file", path: "/srv/kubelet-zq7.yaml" },
      stateDir: "/srv/nld-state-zq7",
      readyTimeoutSeconds: 4321,
      kubeletTimeoutSeconds: 8765,
    };
    // After the header, which names the node and the state directory for the reader.
    const text = renderNodeProgram(params).split("bash_variables_at_start=")[1]!;
    for (const value of [
      params.nodeName,
      params.localDnsIp,
      params.clusterDnsIp,
      params.clusterDomain,
      params.kubelet.path!,
      params.stateDir,
      "4321",
      "8765",
    ]) {
      assert.equal(text.split(value).length - 1, 1, `${value} appears more than once`);
    }
    assert.deepEqual(Object.keys(bashValues(renderNodeProgram(params))), VALUE_NAMES);
  });

  it("is the bash files under components/nodeProgram, each whole and in order", () => {
    const dir = path.join(__dirname, "..", "components", "nodeProgram");
    let at = 0;
    for (const name of [
      "output",
      "addresses",
      "files",
      "statedir",
      "systemd",
      "kubelet",
      "settings",
      "readiness",
      "steps",
      "actions",
      "main",
    ]) {
      const body = fs
        .readFileSync(path.join(dir, `${name}.bash`), "utf8")
        .replace(/^# shellcheck shell=bash\n/, "");
      const found = program.indexOf(body, at);
      assert.ok(found >= at, `${name}.bash is in the program, after the files before it`);
      at = found + body.length;
    }
  });

  it("needs no text tools, no dig, curl or python on the node", () => {
    const code = program
      .split("\n")
      .filter((l) => !/^\s*#/.test(l))
      .join("\n");
    for (const tool of [
      "sed",
      "awk",
      "grep",
      "python3?",
      "perl",
      "dig",
      "curl",
      "nc",
      "source",
      "\\.",
    ]) {
      // At a command's position: a line's start, or after | ; & or $(.
      assert.doesNotMatch(code, new RegExp(`(^\\s*|[|;&]\\s*|\\$\\(\\s*)${tool}\\s`, "m"), tool);
    }
  });

  it("has no line longer than 100 characters and no minified names", () => {
    for (const line of program.split("\n")) assert.ok(line.length <= 100, line);
    const functions = [...program.matchAll(/^([a-z_]+)\(\) \{$/gm)].map((m) => m[1]!);
    assert.ok(functions.length > 40);
    // Words, not the old minified names (rd, pf, sv, rs, mk, up, ck, loc, sw, rv, ...).
    for (const name of functions) {
      assert.ok(
        name.length >= 3 &&
          (name.includes("_") || ["log", "fail", "refuse", "main"].includes(name)),
        name,
      );
    }
  });

  it("refuses values the program's safety rests on", () => {
    const bad: [Partial<NodeScriptParams>, RegExp][] = [
      [{ stateDir: "/" }, /stateDir/],
      [{ stateDir: "var/lib/nodelocaldns" }, /stateDir/],
      [{ stateDir: "/var/lib/../lib/nodelocaldns" }, /stateDir/],
      [{ stateDir: "/var/lib/nodelocaldns/" }, /stateDir/],
      [{ stateDir: "/var/lib/./x" }, /stateDir/],
      [{ kubelet: { format: "env-file", path: "kubelet" } }, /kubelet\.path/],
      [{ readyTimeoutSeconds: 0 }, /readyTimeoutSeconds/],
      [{ kubeletTimeoutSeconds: 1.5 }, /kubeletTimeoutSeconds/],
      [{ localDnsIp: "169.254.20.10,169.254.20.11" }, /IP address/],
      [{ localDnsIp: "$(reboot)" }, /IP address/],
      [{ clusterDnsIp: "" }, /IP address/],
      [{ clusterDomain: "a b" }, /clusterDomain/],
    ];
    for (const [over, message] of bad) {
      assert.throws(() => renderNodeProgram({ ...DEFAULT_PARAMS, ...over }), message);
    }
  });
});

describe("renderGuardProgram", () => {
  it("is a group with its values that ends by calling guard_main", () => {
    const guard = renderGuardProgram(DEFAULT_PARAMS);
    bashSyntaxCheck(guard);
    assert.ok(guard.endsWith('\nguard_main "$@"\n}\n'));
    assert.deepEqual(bashValues(guard), {
      NODE_NAME: "node-1",
      STATE_DIR: "/var/lib/nodelocaldns",
      LAUNCHER_LOG_PREFIX: "nodelocaldns-guard",
    });
  });
});

describe("renderCleanupProgram", () => {
  it("is a group with its values that ends by calling cleanup_main", () => {
    const cleanup = renderCleanupProgram(DEFAULT_PARAMS);
    bashSyntaxCheck(cleanup);
    assert.ok(cleanup.endsWith('\ncleanup_main "$@"\n}\n'));
    assert.deepEqual(bashValues(cleanup), { NODE_NAME: "node-1", LOCAL_DNS_IP: "169.254.20.10" });
  });
});

describe("the delivered program and the switch launcher", () => {
  const launcher = renderSwitchLauncher(DEFAULT_PARAMS);

  it("delivers the program with no node's values in it, and its digest", () => {
    bashSyntaxCheck(DELIVERED_NODE_PROGRAM);
    const body = renderNodeProgram(DEFAULT_PARAMS);
    // The whole program is the same code: the delivered text's functions, in the same order.
    const functions = (text: string) => text.match(/^[a-z_]+\(\) \{$/gm) ?? [];
    assert.deepEqual(functions(DELIVERED_NODE_PROGRAM), functions(body));
    assert.ok(functions(body).length > 50);
    for (const value of ["node-1", "10.96.0.10", "/var/lib/nodelocaldns"]) {
      assert.ok(!DELIVERED_NODE_PROGRAM.includes(value), value);
    }
    assert.equal(
      DELIVERED_NODE_PROGRAM_SHA256,
      createHash("sha256").update(DELIVERED_NODE_PROGRAM).digest("hex"),
    );
  });

  it("sends the node's values and the digest, and none of the program", () => {
    bashSyntaxCheck(launcher);
    assert.deepEqual(bashValues(launcher), {
      ...bashValues(renderNodeProgram(DEFAULT_PARAMS)),
      PROGRAM_SHA256: DELIVERED_NODE_PROGRAM_SHA256,
      PROGRAM_VOLUME: "node-program",
      PROGRAM_FILE: "node-program.bash",
      LAUNCHER_LOG_PREFIX: "nodelocaldns",
    });
    assert.ok(!launcher.includes("switch_fresh_node"));
    assert.ok(
      launcher.endsWith(
        '\nlaunch "$@"\neval "${delivered_program}"\nunset delivered_program\nmain "$@"\n}\n',
      ),
    );
  });

  it("is a small fraction of the whole program", () => {
    const whole = renderNodeProgram(DEFAULT_PARAMS).length;
    assert.ok(launcher.length * 5 < whole, `${launcher.length} B of ${whole} B`);
  });
});

describe("renderNodeScript", () => {
  it("is a shebang, a line saying what it does, `set -- <action>` and the program", () => {
    for (const action of ["create", "update", "delete", "check"] as const) {
      const script = renderNodeScript(DEFAULT_PARAMS, action);
      assert.equal(
        script,
        "#!/usr/bin/env bash\n" +
          `# ${action} on node node-1: exactly what its Command runs. As root: bash ${action}.sh\n` +
          `set -- ${action}\n` +
          renderNodeProgram(DEFAULT_PARAMS),
      );
      bashSyntaxCheck(script);
    }
  });
});

describe("shellcheck", { skip: shellcheckSkip() }, () => {
  it("finds nothing in the rendered programs", () => {
    const dir = fs.mkdtempSync("/tmp/nld-shellcheck-");
    try {
      const files = {
        "program.bash": `#!/usr/bin/env bash\n${renderNodeProgram(DEFAULT_PARAMS)}`,
        "switch.bash": `#!/usr/bin/env bash\n${renderSwitchLauncher(DEFAULT_PARAMS)}`,
        "guard.bash": `#!/usr/bin/env bash\n${renderGuardProgram(DEFAULT_PARAMS)}`,
        "cleanup.bash": `#!/usr/bin/env bash\n${renderCleanupProgram(DEFAULT_PARAMS)}`,
        "node-program.bash": `#!/usr/bin/env bash\n${DELIVERED_NODE_PROGRAM}`,
      };
      for (const [name, text] of Object.entries(files))
        fs.writeFileSync(path.join(dir, name), text);
      const r = spawnSync("shellcheck", Object.keys(files), { cwd: dir, encoding: "utf8" });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

function shellcheckSkip(): string | false {
  const found = spawnSync("shellcheck", ["--version"]).status === 0;
  if (found) return false;
  if (process.env.CI === "true") throw new Error("shellcheck is not installed (CI=true)");
  return "shellcheck is not installed: apt-get install shellcheck";
}
