// What bench/program.ts and its child bench/programWorker.ts exchange: the floor's shape file
// (parent -> child) and the result line (child -> parent). Nothing runs on import, so the parent
// can import it without running a worker.

export type ProgramMode = "ours" | "floor";

export interface WorkerResult {
  mode: ProgramMode;
  nodes: number;
  /** From process start to the SDK and resource modules loaded (before the program runs). */
  setupMs: number;
  /** The program: from before it runs to every registration answered. */
  programMs: number;
  /** Part of programMs spent loading our modules (components/ and what they import); floor: 0. */
  loadMs: number;
  /** Peak resident set size of the whole process, bytes. */
  maxRssBytes: number;
  registrations: number;
}

/** What the floor registers: sizes and texts of our resources, computed by bench/program.ts. */
export interface FloorShape {
  nodes: number;
  batchSize: number;
  /** Inputs of the six Kubernetes objects, exactly as our component registers them. */
  objects: {
    serviceAccount: Record<string, unknown>;
    upstreamService: Record<string, unknown>;
    configMap: Record<string, unknown>;
    nodeProgramConfigMap: Record<string, unknown>;
    daemonSet: Record<string, unknown>;
    metricsService: Record<string, unknown>;
  };
  /** Length of each node's stdin (the switch launcher), in node order. */
  stdinLengths: number[];
  /** Length of each node's revert guard program, in node order. */
  guardStdinLengths: number[];
  /** Length of each node's cleanup program, in node order. */
  cleanupStdinLengths: number[];
  commandTexts: { create: string; update: string; delete: string };
}

/** The child's last stdout line: this prefix, then the WorkerResult as JSON. */
export const RESULT_PREFIX = "BENCH_RESULT ";

/** Runs a worker's main and reports its result as the last stdout line (or fails the child). */
export function reportResult(result: Promise<unknown>): void {
  result.then(
    (value) => {
      process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(value)}\n`, () => process.exit(0));
    },
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(1);
    },
  );
}
