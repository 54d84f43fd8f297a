// End to end with the Automation API: `pulumi up` then `pulumi destroy` of this project against a
// real cluster and real nodes. It runs only when all of these are given, and is reported as
// skipped (not passed) otherwise:
//
//   NODELOCALDNS_E2E_NODES     JSON list of nodes, as in nodelocaldns:nodes
//                              ([{"name":"n1","host":"10.0.0.11","hostKey":"ssh-ed25519 AAAA..."}])
//   NODELOCALDNS_E2E_SSH_KEY   path of the private key for those nodes
//   NODELOCALDNS_E2E_SSH_USER  optional, default root (another user needs passwordless sudo)
//   KUBECONFIG                 the cluster (kube-proxy in IPVS mode)
//   the `pulumi` CLI on PATH, with the command and kubernetes provider plugins installable
//
// State goes to a temporary local backend, so nothing outside this run is touched.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { it } from "node:test";

function missing(): string | undefined {
  const need: string[] = [];
  for (const name of ["NODELOCALDNS_E2E_NODES", "NODELOCALDNS_E2E_SSH_KEY", "KUBECONFIG"]) {
    if (!process.env[name]) need.push(name);
  }
  try {
    execFileSync("pulumi", ["version"], { stdio: "ignore" });
  } catch {
    need.push("the pulumi CLI on PATH");
  }
  return need.length > 0 ? `end-to-end test skipped: set ${need.join(", ")}` : undefined;
}

const skip = missing();

it("pulumi up switches every node, pulumi destroy reverts them", { skip }, async () => {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
  const backend = fs.mkdtempSync(path.join(os.tmpdir(), "nld-e2e-"));
  const stackName = `e2e-${process.pid}`;
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName, workDir: path.join(__dirname, "..") },
    {
      envVars: {
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE: "e2e",
      },
    },
  );
  const nodes = JSON.parse(process.env.NODELOCALDNS_E2E_NODES ?? "[]") as { name: string }[];
  try {
    await stack.setAllConfig({
      "nodelocaldns:nodes": { value: JSON.stringify(nodes) },
      "nodelocaldns:ssh": {
        value: JSON.stringify({
          user: process.env.NODELOCALDNS_E2E_SSH_USER ?? "root",
          privateKey: fs.readFileSync(process.env.NODELOCALDNS_E2E_SSH_KEY ?? "", "utf8"),
        }),
        secret: true,
      },
      "nodelocaldns:rollout": { value: JSON.stringify({ batchSize: 1 }) },
    });
    const up = await stack.up({ onOutput: (s) => process.stdout.write(s) });
    const switches = up.outputs.kubeletSwitches.value as Record<string, string>;
    assert.deepEqual(Object.keys(switches).sort(), nodes.map((n) => n.name).sort());
    for (const [name, stdout] of Object.entries(switches)) {
      assert.match(stdout, /-> 169\.254\.20\.10|already switched/, name);
    }
    // A second up changes nothing on the nodes (no restart).
    const again = await stack.up({ onOutput: (s) => process.stdout.write(s) });
    assert.equal(again.summary.resourceChanges?.update ?? 0, 0);

    const down = await stack.destroy({ onOutput: (s) => process.stdout.write(s) });
    assert.equal(down.summary.result, "succeeded");
  } finally {
    await stack.workspace.removeStack(stackName, { force: true }).catch(() => undefined);
    fs.rmSync(backend, { recursive: true, force: true });
  }
});
