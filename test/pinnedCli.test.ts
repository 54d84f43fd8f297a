// `npx pulumi` runs the CLI this project pins: the official `pulumi` npm package (a devDependency)
// at the SDK's version, resolved from node_modules without a prompt. The package downloads that
// CLI version into $PULUMI_HOME/versions/<version> on first use; no download can happen here, so
// the test puts a stand-in executable where the pinned version lives and checks that npx runs
// exactly that one. Any network access from the package is made to fail (fetch is replaced).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";

const ROOT = path.join(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const home = fs.mkdtempSync(path.join(os.tmpdir(), "nld-pinned-cli-"));
after(() => fs.rmSync(home, { recursive: true, force: true }));

describe("the pinned Pulumi CLI", () => {
  it("is the official package, pinned exactly, at the SDK's version", () => {
    const cli = manifest.devDependencies.pulumi;
    const sdk = manifest.dependencies["@pulumi/pulumi"];
    assert.match(cli ?? "", /^\d+\.\d+\.\d+$/, "an exact version, not a range");
    assert.equal(cli, sdk, "the CLI at the SDK's version (>= the SDK)");
    const installed = JSON.parse(
      fs.readFileSync(path.join(ROOT, "node_modules", "pulumi", "package.json"), "utf8"),
    ) as { version: string; repository: { url: string } };
    assert.equal(installed.version, cli);
    assert.match(installed.repository.url, /github\.com\/pulumi\/pulumi\.git$/);
  });

  it("npx pulumi runs that version's binary, without a prompt, with stdin closed", () => {
    const version = manifest.devDependencies.pulumi!;
    const bin = path.join(home, "versions", version, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\necho "pinned pulumi ${version}: $*"\n`, {
      mode: 0o755,
    });
    const noNetwork = path.join(home, "no-network.js");
    fs.writeFileSync(
      noNetwork,
      'globalThis.fetch = () => Promise.reject(new Error("no network in this test"));\n',
    );
    const r = spawnSync("npx", ["pulumi", "version"], {
      cwd: ROOT,
      encoding: "utf8",
      input: "",
      timeout: 60_000,
      env: {
        ...process.env,
        PULUMI_HOME: home,
        PULUMI_VERSION: "",
        NODE_OPTIONS: `--require ${noNetwork}`,
        CI: "true",
      },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `pinned pulumi ${version}: version\n`);
    assert.doesNotMatch(r.stderr, /Need to install|Downloading/);
  });
});
