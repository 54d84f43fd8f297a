// Fixed facts of every test node, shared by the scripts written into it and by the host side
// that starts and drives it: addresses, paths inside the node, timeouts, unshare flags, and the
// environment of everything run there.

export const DEFAULT_LOCAL_DNS_IP = "169.254.20.10";
export const SSH_ADDRESS = "127.0.0.1";
export const SSH_PORT = 22;
/** The node's state dir as seen inside the node (a bind mount of `<dir>/node`). */
export const NODE_STATE = "/run/testnode";
export const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const SSHD = "/usr/sbin/sshd";
export const COMMAND_TIMEOUT_MS = 60_000;
export const FILE_OP_TIMEOUT_MS = 20_000;
export const START_TIMEOUT_MS = 30_000;
export const STOP_TIMEOUT_MS = 10_000;
/** unshare flags of a node: its own namespaces, which die with its first process. */
export const UNSHARE_FLAGS = [
  ...["--mount", "--net", "--pid", "--uts", "--ipc"],
  ...["--fork", "--kill-child", "--propagation", "private"],
];

/** The environment of everything started in a node: nothing from the test process leaks in. */
export const NODE_ENV: NodeJS.ProcessEnv = {
  PATH: HOST_PATH,
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
};
