// Facts shared by the test-node harnesses and what they run: the address the cache binds in a
// node, and the PATH and environment of every process started there (nothing of the test
// process's own environment leaks in).

export const DEFAULT_LOCAL_DNS_IP = "169.254.20.10";
export const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const NODE_ENV: NodeJS.ProcessEnv = {
  PATH: HOST_PATH,
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
};
