import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { CONFIG_KEYS, parseSettings, STRUCTURED_KEYS } from "../components/config";
import { DEFAULTS, SECRET_PLACEHOLDER } from "../components/settings";
import {
  rawConfigFromEngine,
  rawConfigFromFiles,
  settingsFromFiles,
} from "../components/stackConfig";

const ROOT = path.join(__dirname, "..");

const tempDirs: string[] = [];
after(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function projectWith(stackYaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nld-stack-"));
  tempDirs.push(dir);
  fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  fs.writeFileSync(path.join(dir, "Pulumi.test.yaml"), stackYaml);
  return dir;
}

describe("Pulumi.yaml", () => {
  const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));

  it("declares only known keys, with types the project schema allows", () => {
    for (const [key, decl] of Object.entries(project.config as Record<string, { type: string }>)) {
      assert.ok((CONFIG_KEYS as readonly string[]).includes(key), `${key} is not a config key`);
      assert.ok(!STRUCTURED_KEYS.includes(key), `${key} is structured and cannot be typed`);
      assert.ok(["string", "integer", "boolean"].includes(decl.type), `${key}: ${decl.type}`);
    }
  });

  it("declares every scalar key that has a default, with the default the program applies", () => {
    // The real CLI requires every declared key that has no default (found by the end-to-end test):
    // clusterDnsIp, optional, stays undeclared.
    const scalars = CONFIG_KEYS.filter((k) => !STRUCTURED_KEYS.includes(k) && k !== "clusterDnsIp");
    assert.deepEqual(Object.keys(project.config).sort(), [...scalars].sort());
    const defaults = DEFAULTS as unknown as Record<string, unknown>;
    for (const [key, decl] of Object.entries(
      project.config as Record<string, { default?: unknown }>,
    )) {
      assert.equal(decl.default, defaults[key], `default of ${key}`);
    }
  });
});

describe("rawConfigFromFiles", () => {
  it("reads the dev stack as a valid config with every host key pinned", () => {
    const { settings, warnings } = settingsFromFiles(ROOT, "dev");
    assert.deepEqual(warnings, []);
    assert.equal(settings.nodes.length, 3);
    assert.equal(settings.clusterDnsIp, "10.96.0.10");
  });

  it("applies Pulumi.yaml defaults, then stack values; ignores other namespaces", () => {
    const raw = rawConfigFromFiles(
      projectWith("config:\n  nodelocaldns:clusterDomain: corp.example\n  kubernetes:context: x\n"),
      "test",
    );
    assert.equal(raw.values.clusterDomain, "corp.example");
    assert.equal(raw.values.localDnsIp, "169.254.20.10");
    assert.equal("context" in raw.values, false);
  });

  it("replaces secure values without decrypting them, and marks their key secret", () => {
    const dir = projectWith(
      [
        "config:",
        "  nodelocaldns:ssh:",
        "    privateKey:",
        "      secure: v1:AAAABBBB",
        "  nodelocaldns:nodes:",
        "    - name: a",
        "      host: 10.0.0.1",
      ].join("\n"),
    );
    const raw = rawConfigFromFiles(dir, "test");
    assert.deepEqual(raw.values.ssh, { privateKey: SECRET_PLACEHOLDER });
    assert.equal(raw.isSecret("ssh"), true);
    assert.equal(raw.isSecret("nodes"), false);
    assert.equal(parseSettings(raw).settings.nodes[0].privateKey, SECRET_PLACEHOLDER);
  });

  it("names the file, line and column of a YAML error, never the text around it", () => {
    const ciphertext = "v1:MARKERCIPHERTEXT0123456789abcdef==";
    const cases: [string, RegExp][] = [
      [
        `config:\n  nodelocaldns:ssh:\n    privateKey:\n      secure: ${ciphertext}\n     user: ops\n`,
        /Pulumi\.test\.yaml: YAML error at line 5, column 1: All mapping items must start at the same column$/,
      ],
      [
        `config:\n  nodelocaldns:ssh:\n    privateKey:\n\t  secure: ${ciphertext}\n`,
        /Pulumi\.test\.yaml: YAML error at line 4, column 1: Tabs are not allowed as indentation$/,
      ],
      [
        `config:\n  nodelocaldns:ssh: {privateKey: !weird {secure: ${ciphertext}}}\n`,
        /Pulumi\.test\.yaml: YAML warning at line 2, column 34: Unresolved tag: !weird$/,
      ],
    ];
    for (const [text, message] of cases) {
      const dir = projectWith(text);
      assert.throws(
        () => rawConfigFromFiles(dir, "test"),
        (err: Error) => message.test(err.message) && !err.message.includes("MARKER"),
      );
    }
  });

  it("treats any object with a `secure` key as a secret", () => {
    const dir = projectWith("config:\n  nodelocaldns:ssh: {privateKey: {secure: v1:abc, x: 1}}\n");
    const raw = rawConfigFromFiles(dir, "test");
    assert.deepEqual(raw.values.ssh, { privateKey: SECRET_PLACEHOLDER });
    assert.equal(raw.isSecret("ssh"), true);
  });

  it("says which stack file is missing", () => {
    assert.throws(
      () => rawConfigFromFiles(ROOT, "nope"),
      /no stack file .*Pulumi\.nope\.yaml: create the stack \(pulumi stack init nope\)/,
    );
  });
});

describe("rawConfigFromEngine", () => {
  it("keeps this project's keys, decodes structured ones from JSON, asks the engine about secrets", () => {
    const raw = rawConfigFromEngine(
      {
        "nodelocaldns:localDnsIp": "169.254.25.10",
        "nodelocaldns:healthPort": "8181",
        "nodelocaldns:nodes": '[{"name":"a","host":"10.0.0.1"}]',
        "nodelocaldns:rollout": "not json",
        "kubernetes:context": "prod",
      },
      (key) => key === "nodelocaldns:nodes",
    );
    assert.deepEqual(raw.values, {
      localDnsIp: "169.254.25.10",
      healthPort: "8181",
      nodes: [{ name: "a", host: "10.0.0.1" }],
      rollout: "not json",
    });
    assert.equal(raw.isSecret("nodes"), true);
    assert.equal(raw.isSecret("localDnsIp"), false);
  });
});
