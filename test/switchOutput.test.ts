import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { switchOutcome } from "../components/switchOutput";

describe("switchOutcome", () => {
  it("keeps the last line of a switch's output, which says how it ended", () => {
    const transcript = [
      "nodelocaldns[n1]: create",
      "nodelocaldns[n1]: the cache answers on 169.254.20.10:53 (kubernetes.default.svc.cluster.local: NOERROR)",
      "nodelocaldns[n1]: switched: cluster DNS 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml at 2026-11-27T06:16:40Z",
      "",
    ].join("\n");
    assert.equal(
      switchOutcome(transcript),
      "nodelocaldns[n1]: switched: cluster DNS 10.96.0.10 -> 169.254.20.10 in /var/lib/kubelet/config.yaml at 2026-11-27T06:16:40Z",
    );
  });

  it("skips trailing blank lines, and is empty for an empty or missing output", () => {
    assert.equal(
      switchOutcome("nodelocaldns[n1]: already switched\n\n  \n"),
      "nodelocaldns[n1]: already switched",
    );
    assert.equal(switchOutcome(""), "");
    assert.equal(switchOutcome(undefined), "");
  });
});
