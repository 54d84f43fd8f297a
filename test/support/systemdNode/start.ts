// startSystemdNode(): checks the options, makes sure the root filesystem is built, gives the node
// a fresh host temp dir and keys, boots it, and makes sure that a node which fails to start is
// stopped again and one left running dies with the test process.

import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_HOSTNAME, DEFAULT_LOCAL_DNS_IP } from "./constants";
import { NspawnNode } from "./node";
import { hostnameFiles, stageFiles } from "./nodeDir";
import { ensureRootfs } from "./rootfs";
import { keyFiles, makeNodeKeys } from "./ssh";
import { requireSystemdTools } from "./support";
import type { SystemdNode, SystemdNodeOptions } from "./types";
import { installExitHandler, liveNodes } from "../processes/liveNodes";

/** Boots a systemd test node; stop() it when done (an exit handler kills forgotten ones). */
export async function startSystemdNode(opts: SystemdNodeOptions = {}): Promise<SystemdNode> {
  const tools = requireSystemdTools();
  const localDnsIp = opts.localDnsIp === undefined ? DEFAULT_LOCAL_DNS_IP : opts.localDnsIp;
  if (localDnsIp !== null && net.isIP(localDnsIp) === 0) {
    throw new Error(`localDnsIp is not an IP address: ${JSON.stringify(localDnsIp)}`);
  }
  const hostname = opts.hostname ?? DEFAULT_HOSTNAME;
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/i.test(hostname)) {
    throw new Error(`not a hostname: ${JSON.stringify(hostname)}`);
  }
  const forward = opts.sshForward ?? null;
  if (forward !== null) {
    if (net.isIPv4(forward.address) === false || !forward.address.startsWith("127.")) {
      throw new Error(`sshForward.address must be in 127.0.0.0/8, got ${forward.address}`);
    }
    if (!Number.isInteger(forward.port) || forward.port < 1 || forward.port > 65535) {
      throw new Error(`sshForward.port is not a port: ${forward.port}`);
    }
  }
  const userFiles = stageFiles(opts.files ?? {});
  const enable = opts.enable ?? [];

  const rootfs = await ensureRootfs();
  installExitHandler();
  const name = `n${process.pid}-${randomBytes(3).toString("hex")}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "systemdnode-"));
  let node: NspawnNode | undefined;
  try {
    const keys = await makeNodeKeys(tools.sshKeygen, dir);
    node = new NspawnNode(name, dir, localDnsIp, forward, keys, tools);
    liveNodes.add(node);
    // The harness's files first, so that a test's own /etc/hosts (say) wins.
    const files = [...hostnameFiles(hostname), ...keyFiles(keys), ...userFiles];
    await node.start(rootfs, files, enable);
  } catch (error) {
    if (node === undefined) {
      fs.rmSync(dir, { recursive: true, force: true });
    } else {
      await node.stop().catch(() => {});
    }
    throw error;
  }
  return node;
}
