// Warnings reach the operator through the engine's log, not silence: an unpinned host key and a
// local address outside 169.254.0.0/16.
import assert from "node:assert/strict";
import { it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { startMockRuntime } from "./support/mockRuntime";

it("logs every config warning through pulumi.log.warn and still deploys", async () => {
  const warned: string[] = [];
  const log = pulumi.log as { warn: (message: string) => Promise<void> };
  log.warn = async (message: string) => void warned.push(message);

  const runtime = await startMockRuntime({
    config: {
      "nodelocaldns:clusterDnsIp": "10.96.0.10",
      "nodelocaldns:localDnsIp": "10.255.255.10",
      "nodelocaldns:nodes": JSON.stringify([{ name: "a", host: "10.0.0.1" }]),
    },
  });
  await import("../index");
  await runtime.settled();

  assert.deepEqual(warned, [
    "nodelocaldns:localDnsIp: 10.255.255.10 is not link-local (169.254.0.0/16) as upstream recommends",
    "nodelocaldns:nodes[*].hostKey: not pinned for 1 of 1 nodes (a): their SSH host keys will not be checked (ssh.knownHosts, or ssh-keyscan -t ed25519 <host>)",
  ]);
  // The node's revert guard and its switch.
  assert.equal(runtime.registrations.filter((r) => r.type === "command:remote:Command").length, 3);
});
