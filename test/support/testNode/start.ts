// startTestNode(): checks the options, gives the node a fresh host temp dir, starts it, and makes
// sure that a node which fails to start is stopped again and one left running dies with the test
// process.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_LOCAL_DNS_IP } from "./constants";
import { installExitHandler, liveNodes } from "./liveNodes";
import { checkNodePath, NamespaceNode } from "./namespaceNode";
import { requireTools } from "./support";
import type { TestNode, TestNodeOptions } from "./types";

/** Starts a test node; stop() it when done (an exit handler kills forgotten ones). */
export async function startTestNode(opts: TestNodeOptions = {}): Promise<TestNode> {
  const found = requireTools();
  const localDnsIp = opts.localDnsIp === undefined ? DEFAULT_LOCAL_DNS_IP : opts.localDnsIp;
  if (localDnsIp !== null && net.isIP(localDnsIp) === 0) {
    throw new Error(`localDnsIp is not an IP address: ${JSON.stringify(localDnsIp)}`);
  }
  const cacheListening = opts.cacheListening ?? localDnsIp !== null;
  if (cacheListening && localDnsIp === null) {
    throw new Error("cacheListening needs a localDnsIp");
  }
  const kubeletFailRestarts = opts.kubeletFailRestarts ?? 0;
  if (!Number.isInteger(kubeletFailRestarts) || kubeletFailRestarts < 0) {
    throw new Error(
      `kubeletFailRestarts must be a non-negative integer, got ${kubeletFailRestarts}`,
    );
  }
  const hostname = opts.hostname ?? "test-node";
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/i.test(hostname)) {
    throw new Error(`not a hostname: ${JSON.stringify(hostname)}`);
  }
  const files = opts.files ?? {};
  Object.keys(files).forEach(checkNodePath);

  installExitHandler();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "testnode-"));
  const node = new NamespaceNode(dir, localDnsIp, opts.ssh ?? true, found);
  liveNodes.add(node);
  try {
    await node.start({ cacheListening, kubeletFailRestarts, files, hostname });
  } catch (error) {
    await node.stop().catch(() => {});
    throw error;
  }
  return node;
}
