// The live view through the real engine: `pulumi up` and `preview` of this project read every
// node's live kubelet clusterDNS through a real kube-apiserver's configz proxy. kube-apiserver
// refuses to proxy to loopback, so the suite (netns/liveViewEngine.suite.ts: control plane,
// systemd test nodes, Pulumi) runs in a network namespace of its own, with the node addresses on
// its lo; it passes only when every test of that run passed (test/e2e/support/netns.ts).

import * as path from "node:path";
import { describe, it } from "node:test";
import { clusterTestOptions } from "./pulumi/tools";
import { runSuiteInOwnNetns } from "./support/netns";

const options = clusterTestOptions();
const SUITE = path.join(__dirname, "netns", "liveViewEngine.suite.ts");
const SUITE_TIMEOUT_MS = 25 * 60_000;

describe("the live view through the real engine and a real API server", options, () => {
  it(
    "netns/liveViewEngine.suite.ts passes in a network namespace of its own",
    { timeout: SUITE_TIMEOUT_MS + 60_000 },
    async () => {
      await runSuiteInOwnNetns(SUITE, SUITE_TIMEOUT_MS);
    },
  );
});
