// The cached root filesystem of the systemd test nodes: build-rootfs.sh builds it once per cache
// key (minutes, with debootstrap) and afterwards only prints its path. Called once per process;
// the script's progress lines go to stderr as they come. A build still running when the test process
// exits is killed by the harness's exit handler (the next build removes its temp dirs).

import { spawn } from "node:child_process";
import { BUILD_ROOTFS, HOST_PATH, ROOTFS_TIMEOUT_MS } from "./constants";
import { installExitHandler, liveNodes } from "../processes/liveNodes";
import { killGroup } from "../processes/process";

let rootfs: Promise<string> | undefined;

/** The path of the node root filesystem, built first if the cache does not have it. */
export function ensureRootfs(): Promise<string> {
  installExitHandler();
  rootfs ??= buildRootfs();
  // A failed build is tried again by the next caller.
  rootfs.catch(() => (rootfs = undefined));
  return rootfs;
}

function buildRootfs(): Promise<string> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: HOST_PATH, LANG: "C.UTF-8" };
    for (const name of ["NODELOCALDNS_ROOTFS_CACHE", "NODELOCALDNS_DEBIAN_MIRROR"]) {
      if (process.env[name] !== undefined) {
        env[name] = process.env[name];
      }
    }
    const child = spawn("bash", [BUILD_ROOTFS], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      process.stderr.write(chunk);
    });
    // A build must not outlive the test process: the exit handler kills it too.
    const live = { killSync: () => killGroup(child.pid) };
    liveNodes.add(live);
    const timer = setTimeout(() => killGroup(child.pid), ROOTFS_TIMEOUT_MS);
    child.on("error", (error) => {
      liveNodes.delete(live);
      clearTimeout(timer);
      reject(new Error(`build-rootfs.sh: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      liveNodes.delete(live);
      clearTimeout(timer);
      const root = stdout.trim().split("\n").pop() ?? "";
      if (code === 0 && root.startsWith("/")) {
        resolve(root);
      } else {
        reject(new Error(`build-rootfs.sh failed (${code ?? signal}):\n${stderr.trim()}`));
      }
    });
  });
}
