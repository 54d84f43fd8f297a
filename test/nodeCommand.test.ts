import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nodeCommandText, nodeConnection, nodeScriptParams } from "../components/nodeCommand";
import { NodeSettings } from "../components/settings";
import { resolvedSettings } from "./support/settingsFixture";

const base: NodeSettings = {
  name: "node-1",
  host: "10.0.0.11",
  port: 22,
  user: "root",
  sudo: true,
  kubelet: { format: "auto" },
};

describe("nodeCommandText", () => {
  it("runs the program from stdin as root without sudo", () => {
    assert.equal(nodeCommandText(base, "create"), "bash -s create");
    assert.equal(nodeCommandText(base, "delete"), "bash -s delete");
  });

  it("goes through non-interactive sudo for another user, unless sudo is off", () => {
    assert.equal(nodeCommandText({ ...base, user: "ops" }, "update"), "sudo -n bash -s update");
    assert.equal(
      nodeCommandText({ ...base, user: "ops", sudo: false }, "update"),
      "bash -s update",
    );
  });
});

describe("nodeCommandText with a drift repair number", () => {
  it("carries repair-<n> on update only, also through sudo", () => {
    assert.equal(nodeCommandText(base, "update", 3), "bash -s update repair-3");
    assert.equal(
      nodeCommandText({ ...base, user: "ops" }, "update", 1),
      "sudo -n bash -s update repair-1",
    );
    assert.equal(nodeCommandText(base, "create", 3), "bash -s create");
    assert.equal(nodeCommandText(base, "delete", 3), "bash -s delete");
    assert.equal(nodeCommandText(base, "update", 0), "bash -s update");
  });

  it("refuses a number that is not a count", () => {
    for (const bad of [-1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 2]) {
      assert.throws(() => nodeCommandText(base, "update", bad), /repair must be a count/);
    }
  });
});

describe("nodeConnection", () => {
  it("carries only what is set, including a bastion", () => {
    assert.deepEqual(nodeConnection(base), { host: "10.0.0.11", port: 22, user: "root" });
    assert.deepEqual(
      nodeConnection({
        ...base,
        privateKey: "KEY",
        hostKey: "ssh-ed25519 AAAA",
        proxy: { host: "bastion", port: 2222, user: "jump", privateKey: "PKEY" },
      }),
      {
        host: "10.0.0.11",
        port: 22,
        user: "root",
        privateKey: "KEY",
        hostKey: "ssh-ed25519 AAAA",
        proxy: { host: "bastion", port: 2222, user: "jump", privateKey: "PKEY" },
      },
    );
  });
});

describe("nodeScriptParams", () => {
  it("takes the node's kubelet file and the stack's addresses, state dir and timeouts", () => {
    const s = resolvedSettings({ localDnsIp: "169.254.25.10", stateDir: "/opt/nld" });
    const node: NodeSettings = {
      ...base,
      kubelet: { format: "env-file", path: "/etc/kubelet.env" },
    };
    assert.deepEqual(nodeScriptParams(s, node), {
      nodeName: "node-1",
      localDnsIp: "169.254.25.10",
      clusterDnsIp: s.clusterDnsIp,
      fallbackToKubeDns: false,
      clusterDomain: s.clusterDomain,
      kubelet: { format: "env-file", path: "/etc/kubelet.env" },
      stateDir: "/opt/nld",
      readyTimeoutSeconds: s.rollout.readyTimeoutSeconds,
      kubeletTimeoutSeconds: s.rollout.kubeletTimeoutSeconds,
    });
  });
});
