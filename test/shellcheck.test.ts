// Every shell script of the repository is shellcheck-clean: the node program's sources (each file
// alone, and the rendered program whole in nodeScriptRender.test.ts), the test harnesses' scripts,
// the toolchain build and CI.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.join(__dirname, "..");

function shellcheckSkip(): string | false {
  if (spawnSync("shellcheck", ["--version"]).status === 0) return false;
  if (process.env.CI === "true") throw new Error("shellcheck is not installed (CI=true)");
  return "shellcheck is not installed: apt-get install shellcheck";
}

function tracked(...patterns: string[]): string[] {
  return execFileSync("git", ["ls-files", "--", ...patterns], { cwd: ROOT, encoding: "utf8" })
    .split("\n")
    .filter((f) => f !== "");
}

function shellcheck(args: string[], files: string[]): void {
  const r = spawnSync("shellcheck", [...args, ...files], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

describe("shellcheck", { skip: shellcheckSkip() }, () => {
  it("finds nothing in the node program's source files", () => {
    const files = tracked("components/nodeProgram/*.bash");
    assert.ok(files.length >= 12, files.join(" "));
    // A file alone does not see the values and globals the others define: SC2034 (assigned, not
    // used here) and SC2154 (used, not assigned here) are checked on the rendered program instead.
    shellcheck(["--shell=bash", "--exclude=SC2034,SC2154"], files);
  });

  it("finds nothing in the other shell scripts", () => {
    const files = [...tracked("*.sh"), ".ci/run"];
    assert.ok(files.length >= 6, files.join(" "));
    shellcheck(["--external-sources"], files);
  });
});
