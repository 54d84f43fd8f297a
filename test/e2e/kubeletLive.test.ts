// The live view's configz reads (components/fleetSources.ts readKubeletClusterDns) through a real
// kube-apiserver's node proxy to stand-in kubelets over verified HTTPS. kube-apiserver refuses to
// proxy to loopback addresses, so the whole scenario (kubeletLive/scenario.ts: control plane,
// stand-ins, reads) runs in a network namespace this test makes (`unshare --net`), with the node
// addresses on that namespace's lo; `--kill-child` and the control plane's parent-death signals
// end every process with it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";
import type { ScenarioResult } from "./kubeletLive/scenario";
import { CONTROL_PLANE_TOOLS, toolchainTestOptions } from "./support/toolchain";

const options = toolchainTestOptions(CONTROL_PLANE_TOOLS);
const SCENARIO = path.join(__dirname, "kubeletLive", "scenario.ts");
const SCENARIO_TIMEOUT_MS = 4 * 60_000;

/** Runs the scenario in a new network namespace; its result, or its stderr in the error. */
function runScenario(): Promise<ScenarioResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "unshare",
      ["--net", "--kill-child", "--", process.execPath, "--import", "tsx", SCENARIO],
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      // The whole process group: unshare, node and what it started.
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, SCENARIO_TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(stdout) as ScenarioResult);
      else reject(new Error(`scenario ended with ${code ?? signal}:\n${stderr.slice(-4000)}`));
    });
  });
}

describe("the live view through a real API server's configz proxy", options, () => {
  let result: ScenarioResult;

  it(
    "runs the scenario in its own network namespace",
    { timeout: SCENARIO_TIMEOUT_MS },
    async () => {
      result = await runScenario();
    },
  );

  it("reads each kubelet's live clusterDNS over the API server's verified HTTPS", () => {
    assert.deepEqual(result.reads["on-cache"], { clusterDns: ["169.254.20.10"] });
    assert.deepEqual(result.reads["on-kube-dns"], { clusterDns: ["10.96.0.10"] });
    // The API server asked the stand-ins for /configz, with its kubelet client certificate.
    const asked = result.seen.map((s) => `${s.node} ${s.path} ${s.client}`).sort();
    assert.deepEqual(asked, [
      "on-cache /configz e2e-admin",
      "on-kube-dns /configz e2e-admin",
      "silent /configz e2e-admin",
    ]);
  });

  it("makes a node that cannot be read unknown, with the API server's reason", () => {
    assert.deepEqual(result.reads.silent, { unknown: "configz: no answer within 2000ms" });
    assert.match(
      JSON.stringify(result.reads["no-kubelet"]),
      /"configz: HTTP 503: error trying to reach service: .*connection refused"/,
    );
    assert.deepEqual(result.reads["no-such-node"], {
      unknown: 'configz: HTTP 404: nodes "no-such-node" not found',
    });
  });

  it("tells switched from drifted, and says so in one line", () => {
    assert.equal(result.view.nodes["on-cache"]!.state, "switched");
    assert.equal(result.view.nodes["on-kube-dns"]!.state, "drifted");
    assert.match(
      result.view.summary,
      /^kubelet live view \(configz, before this update\): on the cache 1\/5; drifted: on-kube-dns; unknown: silent /,
    );
  });
});
