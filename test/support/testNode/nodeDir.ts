// The layout of a node's host dir: init.sh at the top, client/ for the ssh client's key and
// known_hosts, node/ (bind-mounted at NODE_STATE inside the node) for the scripts, sshd_config,
// the systemctl stub and its state, and the mount points of the node binary and the upper layers.

import * as fs from "node:fs";
import * as path from "node:path";
import { CACHE_LISTENER_JS, CACHE_SCRIPT } from "./cacheScripts";
import { INIT_SCRIPT } from "./initScript";
import { sshdConfig } from "./ssh";
import { SYSTEMCTL_STUB } from "./systemctlStub";

/**
 * Creates the subdirectories of `dir` (an empty host temp dir) and writes every file the node
 * starts with, except the systemctl stub's fail-restarts count and the ssh keys.
 */
export function layOutNodeDir(dir: string, localDnsIp: string | null): void {
  const state = path.join(dir, "node");
  for (const sub of ["client", "node", "node/layers", "node/bin", "node/systemctl"]) {
    fs.mkdirSync(path.join(dir, sub), { mode: 0o700 });
  }
  fs.chmodSync(state, 0o755);
  fs.writeFileSync(path.join(state, "bin", "node"), "");
  fs.writeFileSync(path.join(dir, "init.sh"), INIT_SCRIPT);
  fs.writeFileSync(path.join(state, "cache.sh"), CACHE_SCRIPT);
  fs.writeFileSync(path.join(state, "cache-listener.cjs"), CACHE_LISTENER_JS);
  fs.writeFileSync(path.join(state, "systemctl-stub"), SYSTEMCTL_STUB, { mode: 0o755 });
  fs.writeFileSync(path.join(state, "local-dns-ip"), localDnsIp ?? "");
  fs.writeFileSync(path.join(state, "sshd_config"), sshdConfig());
  fs.writeFileSync(path.join(state, "systemctl", "kubelet.state"), "active\n");
  fs.writeFileSync(path.join(state, "systemctl", "restarts.log"), "");
  fs.writeFileSync(path.join(state, "systemctl", "calls.log"), "");
}
