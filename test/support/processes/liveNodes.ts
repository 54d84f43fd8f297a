// The nodes of this process that are not stopped yet, and the exit handler that kills them if the
// test process exits first (a forgotten stop(), a failed test, process.exit()).

/** What the exit handler needs of a node: a synchronous last-resort kill. */
interface LiveNode {
  killSync(): void;
}

// Nodes not stopped yet; killed synchronously if the test process exits first.
export const liveNodes = new Set<LiveNode>();
let exitHandlerInstalled = false;

export function installExitHandler(): void {
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on("exit", () => {
      for (const node of liveNodes) {
        node.killSync();
      }
    });
  }
}
