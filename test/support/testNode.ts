// Throwaway "Kubernetes nodes" for tests: each one is a set of fresh kernel namespaces (mount,
// network, pid, UTS, IPC) on this machine, with a real sshd, a stand-in for the node-local DNS
// cache on [localDnsIp]:53 and a systemctl stub that only knows kubelet. Node scripts run for real
// (real bash, real OpenSSH) and change nothing outside the node:
//
// - every top-level directory of the host is seen through a copy-on-write overlay whose upper layer
//   lives on a tmpfs inside the node; /run, /tmp and /root are fresh tmpfs mounts; /proc and /sys
//   are the node's own (/sys read-only);
// - the node has its own network namespace: sshd listens on 127.0.0.1:22 there, the local DNS
//   address is put on the node's own lo, and the ssh client enters that namespace, so no packet
//   ever leaves loopback inside the node;
// - pid 1 of the node is init.sh (testNode/initScript.ts); it ends when the test process closes its
//   stdin (also when the test process dies), and the kernel then kills every other process of the
//   node.
//
// Requires root, util-linux (unshare, nsenter), iproute2 and OpenSSH (server and client). Tests
// guard themselves with nodeTestOptions(): skipped where unsupported, failed in CI (CI=true).
//
// This file is the harness's public entry point; the parts live in testNode/:
// - types.ts: the public types (TestNode, TestNodeOptions, SshOptions, ExecResult);
// - support.ts: whether nodes can run here, nodeTestOptions();
// - start.ts: startTestNode(); namespaceNode.ts: the TestNode implementation; nodeDir.ts: the
//   layout of a node's host temp dir;
// - initScript.ts, cacheScripts.ts, systemctlStub.ts: what runs inside a node;
// - ssh.ts: sshd config, keys and ssh client options; process.ts: exec and kill helpers;
// - constants.ts: addresses, paths, timeouts shared by all; liveNodes.ts: the exit-time cleanup.

export { startTestNode } from "./testNode/start";
export { nodeTestOptions, testNodeSupport } from "./testNode/support";
export type { ExecResult, SshOptions, TestNode, TestNodeOptions } from "./testNode/types";
