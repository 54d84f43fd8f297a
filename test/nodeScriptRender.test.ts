// The node program as text: how it is put together and how values enter it. Nothing here runs the
// program; bash only checks its syntax and evaluates the parameter assignments.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import {
  renderNodeProgram,
  renderNodeScript,
  type NodeAction,
  type NodeScriptParams,
} from "../components/nodeScript";
import { DEFAULTS } from "../components/settings";
import { shellQuote } from "../components/shell";

const DEFAULT_PARAMS: NodeScriptParams = {
  nodeName: "node-1",
  localDnsIp: DEFAULTS.localDnsIp,
  clusterDnsIp: "10.96.0.10",
  kubelet: { ...DEFAULTS.kubelet },
  stateDir: DEFAULTS.stateDir,
  readyTimeoutSeconds: DEFAULTS.rollout.readyTimeoutSeconds,
  kubeletTimeoutSeconds: DEFAULTS.rollout.kubeletTimeoutSeconds,
};

const ACTIONS: NodeAction[] = ["create", "update", "delete"];

function bashSyntaxCheck(text: string): void {
  const result = spawnSync("bash", ["-n"], { input: text, encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
}

/** The program's parameter assignments, evaluated by bash on their own: the values bash sees. */
function bashParams(program: string): Record<string, string> {
  const line = program.split("\n").find((l) => l.startsWith("readonly N="));
  assert.ok(line !== undefined, "no parameter line");
  const names = ["N", "L", "C", "F", "KP", "S", "RT", "KT"];
  const result = spawnSync(
    "bash",
    ["-c", `${line}\nprintf '%s\\0' ${names.map((n) => `"$${n}"`).join(" ")}`],
    { encoding: "utf8", env: {} },
  );
  assert.equal(result.status, 0, result.stderr);
  const values = result.stdout.split("\0").slice(0, -1);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

describe("renderNodeScript", () => {
  it("is the shebang, `set -- <action>` and the program", () => {
    for (const action of ACTIONS) {
      assert.equal(
        renderNodeScript(DEFAULT_PARAMS, action),
        `#!/usr/bin/env bash\nset -- ${action}\n${renderNodeProgram(DEFAULT_PARAMS)}`,
      );
      bashSyntaxCheck(renderNodeScript(DEFAULT_PARAMS, action));
    }
  });
});

describe("renderNodeProgram", () => {
  it("is one bash group that detaches stdin first, then sets strict mode and a private umask", () => {
    const program = renderNodeProgram(DEFAULT_PARAMS);
    assert.ok(program.startsWith("{\nexec </dev/null\nset -Eeuo pipefail\numask 077\n"), program);
    assert.ok(program.endsWith("\n}\n"));
    bashSyntaxCheck(program);
  });

  it("puts the parameters at the top as readonly assignments, with the values given", () => {
    const program = renderNodeProgram({
      ...DEFAULT_PARAMS,
      kubelet: { format: "env-file", path: "/etc/kubernetes/kubelet" },
    });
    assert.match(
      program,
      /\nreadonly N=node-1 L=169\.254\.20\.10 C=10\.96\.0\.10 F=env-file KP=\/etc\/kubernetes\/kubelet S=\/var\/lib\/nodelocaldns RT=120 KT=60\n/,
    );
    assert.deepEqual(bashParams(program), {
      N: "node-1",
      L: "169.254.20.10",
      C: "10.96.0.10",
      F: "env-file",
      KP: "/etc/kubernetes/kubelet",
      S: "/var/lib/nodelocaldns",
      RT: "120",
      KT: "60",
    });
    assert.equal(bashParams(renderNodeProgram(DEFAULT_PARAMS)).KP, "");
  });

  it("quotes every value with shellQuote, even values that should never get this far", () => {
    const odd: NodeScriptParams = {
      ...DEFAULT_PARAMS,
      nodeName: `a'b $(touch /tmp/pwned) "c" \`d\``,
      kubelet: { format: "auto", path: "/etc/kube let/it's;rm -rf ~" },
      stateDir: "/var/lib/node local'dns",
      localDnsIp: "fd00::10",
    };
    const program = renderNodeProgram(odd);
    bashSyntaxCheck(program);
    for (const action of ACTIONS) {
      bashSyntaxCheck(renderNodeScript(odd, action));
    }
    const line = program.split("\n").find((l) => l.startsWith("readonly N="));
    assert.equal(
      line,
      `readonly N=${shellQuote(odd.nodeName)} L=fd00::10 C=10.96.0.10 F=auto` +
        ` KP=${shellQuote(odd.kubelet.path!)} S=${shellQuote(odd.stateDir)} RT=120 KT=60`,
    );
    assert.ok(line!.includes(`N='a'\\''b $(touch /tmp/pwned) "c" \`d\`'`));
    assert.deepEqual(bashParams(program), {
      N: odd.nodeName,
      L: "fd00::10",
      C: "10.96.0.10",
      F: "auto",
      KP: odd.kubelet.path,
      S: odd.stateDir,
      RT: "120",
      KT: "60",
    });
  });

  it("names each value once, in the parameter line; the rest of the program refers to it", () => {
    const params: NodeScriptParams = {
      nodeName: "worker-zq7",
      localDnsIp: "169.254.99.77",
      clusterDnsIp: "10.111.222.33",
      kubelet: { format: "config-file", path: "/srv/kubelet-zq7.yaml" },
      stateDir: "/srv/nld-state-zq7",
      readyTimeoutSeconds: 4321,
      kubeletTimeoutSeconds: 8765,
    };
    const program = renderNodeProgram(params);
    for (const value of [
      params.nodeName,
      params.localDnsIp,
      params.clusterDnsIp,
      params.kubelet.path!,
      params.stateDir,
      "4321",
      "8765",
    ]) {
      assert.equal(program.split(value).length - 1, 1, `${value} appears more than once`);
    }
  });

  it("uses no text tools: the files are parsed and rewritten by bash itself", () => {
    const program = renderNodeProgram(DEFAULT_PARAMS);
    for (const tool of ["sed", "awk", "grep", "python", "perl", "dig", "curl", "nc", "source"]) {
      assert.doesNotMatch(program, new RegExp(`(^|[\\s;|&({])${tool}\\b`), tool);
    }
    assert.doesNotMatch(program, /(^|[\s;])\.\s/, "sources a file");
  });

  it("stays under 7000 bytes with the default settings", () => {
    assert.ok(Buffer.byteLength(renderNodeProgram(DEFAULT_PARAMS)) < 7000);
  });

  it("refuses parameters the program's safety rests on", () => {
    const bad: [Partial<NodeScriptParams>, RegExp][] = [
      [{ stateDir: "/" }, /stateDir/],
      [{ stateDir: "var/lib/nodelocaldns" }, /stateDir/],
      [{ stateDir: "/var/lib/../lib/nodelocaldns" }, /stateDir/],
      [{ stateDir: "/var/lib/nodelocaldns/" }, /stateDir/],
      [{ kubelet: { format: "env-file", path: "kubelet" } }, /kubelet\.path/],
      [{ readyTimeoutSeconds: 0 }, /readyTimeoutSeconds/],
      [{ kubeletTimeoutSeconds: 1.5 }, /kubeletTimeoutSeconds/],
      [{ localDnsIp: "169.254.20.10,169.254.20.11" }, /IP address/],
      [{ localDnsIp: "$(reboot)" }, /IP address/],
      [{ clusterDnsIp: "" }, /IP address/],
    ];
    for (const [over, message] of bad) {
      assert.throws(() => renderNodeProgram({ ...DEFAULT_PARAMS, ...over }), message);
    }
  });
});
