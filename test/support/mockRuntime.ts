// Pulumi's own mock runtime, plus what mocks alone do not show: the resource options each
// registration carried (parent, dependsOn, deleteBeforeReplace, replaceWith, ...), read from the
// requests the SDK sends to the (mock) monitor.
import * as pulumi from "@pulumi/pulumi";
import { READ_STACK_OUTPUTS } from "../../components/fleetSources";

export interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  /** True for a read (`Resource.get`), false for a resource the program manages. */
  read: boolean;
  /** The ID a read asked for (empty for registrations). */
  readId: string;
  inputs: Record<string, unknown>;
  parent: string;
  dependencies: string[];
  deleteBeforeReplace: boolean;
  replaceWith: string[];
  retainOnDelete: boolean;
  deletedWith: string;
  ignoreChanges: string[];
  /** The provider reference ("<provider urn>::<id>"), empty for the default provider. */
  provider: string;
}

export interface MockRuntimeOptions {
  /** ClusterIP the mock cluster reports for kube-system/kube-dns. */
  kubeDnsClusterIp?: string;
  config?: Record<string, string>;
  secretKeys?: string[];
  /** The outputs the engine answers for this stack (the program reads its own last outputs). */
  stackOutputs?: Record<string, unknown>;
  /** The first this many reads of them fail as a `file://` backend's may, mid-checkpoint-write. */
  failedStackOutputReads?: number;
  /** What a remote Command printed, by its name (as the engine returns a run's `stdout`). */
  commandStdout?: Record<string, string>;
}

export interface MockRuntime {
  registrations: Registration[];
  /** How many times the program asked for this stack's outputs. */
  stackOutputReads(): number;
  /** Waits until no registration is in flight (bounded). */
  settled(): Promise<void>;
}

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** Whether a deserialized input is a secret wrapper, and its plain value. */
export function unwrapSecret(value: unknown): { secret: boolean; value: unknown } {
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (Object.values(obj).includes(SECRET_SIG) && "value" in obj) {
      return { secret: true, value: obj.value };
    }
  }
  return { secret: false, value };
}

type Callback = (err: unknown, response: unknown) => void;
interface Request {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom?(): boolean;
  getDependenciesList?(): string[];
  getDeletebeforereplace?(): boolean;
  getReplaceWithList?(): string[];
  getRetainondelete?(): boolean;
  getDeletedwith?(): string;
  getIgnorechangesList?(): string[];
  getId?(): string;
  getProvider?(): string;
}

export async function startMockRuntime(opts: MockRuntimeOptions = {}): Promise<MockRuntime> {
  const pending = new Map<string, Omit<Registration, "inputs" | "urn">>();
  const registrations: Registration[] = [];
  let inFlight = 0;
  let reads = 0;

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const meta = pending.get(`${args.type}::${args.name}`);
        if (meta !== undefined) {
          registrations.push({ ...meta, urn: "", inputs: args.inputs as Record<string, unknown> });
        }
        if (args.type === "kubernetes:core/v1:Service" && args.id) {
          return {
            id: args.id,
            state: { metadata: { name: "kube-dns" }, spec: { clusterIP: opts.kubeDnsClusterIp } },
          };
        }
        const stdout = opts.commandStdout?.[args.name];
        if (args.type === "command:remote:Command" && stdout !== undefined) {
          return { id: `${args.name}-id`, state: { ...args.inputs, stdout } };
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      // The engine's builtin read of a stack's outputs (fleetSources.ts previouslyManagedNodes).
      call: (args) => {
        if (args.token !== READ_STACK_OUTPUTS) return args.inputs;
        reads += 1;
        if (reads <= (opts.failedStackOutputReads ?? 0)) {
          throw new Error("failed to load checkpoint: EOF");
        }
        return { name: args.inputs.name, outputs: opts.stackOutputs ?? {}, secretOutputNames: [] };
      },
    },
    "nodelocaldns",
    "test",
    false,
    // What a DIY backend reports, as in the end-to-end tests.
    "organization",
  );
  pulumi.runtime.setAllConfig(opts.config ?? {}, opts.secretKeys ?? []);

  const monitor = pulumi.runtime.getMonitor() as unknown as Record<
    string,
    (req: Request, cb: Callback) => unknown
  >;
  for (const method of ["registerResource", "readResource"]) {
    const original = monitor[method].bind(monitor);
    monitor[method] = (req: Request, cb: Callback) => {
      inFlight++;
      pending.set(`${req.getType()}::${req.getName()}`, {
        type: req.getType(),
        name: req.getName(),
        custom: req.getCustom?.() ?? true,
        read: method === "readResource",
        readId: method === "readResource" ? (req.getId?.() ?? "") : "",
        parent: req.getParent(),
        dependencies: req.getDependenciesList?.() ?? [],
        deleteBeforeReplace: req.getDeletebeforereplace?.() ?? false,
        replaceWith: req.getReplaceWithList?.() ?? [],
        retainOnDelete: req.getRetainondelete?.() ?? false,
        deletedWith: req.getDeletedwith?.() ?? "",
        ignoreChanges: req.getIgnorechangesList?.() ?? [],
        provider: req.getProvider?.() ?? "",
      });
      return original(req, (err, response) => {
        const urn = (response as { getUrn?(): string } | undefined)?.getUrn?.();
        const reg = registrations.find((r) => r.type === req.getType() && r.name === req.getName());
        if (reg && urn) reg.urn = urn;
        inFlight--;
        cb(err, response);
      });
    };
  }

  return {
    registrations,
    stackOutputReads: () => reads,
    async settled() {
      let quiet = 0;
      for (let i = 0; i < 500 && quiet < 5; i++) {
        await new Promise((r) => setTimeout(r, 10));
        quiet = inFlight === 0 ? quiet + 1 : 0;
      }
      if (quiet < 5) throw new Error("mock registrations did not settle within 5 s");
    },
  };
}

/** The registration whose URN is `urn` (dependencies and replaceWith hold URNs). */
export function byUrn(regs: Registration[], urn: string): Registration {
  const reg = regs.find((r) => r.urn === urn);
  if (!reg) throw new Error(`no registration with URN ${urn}`);
  return reg;
}

/**
 * Takes over unhandled rejections as Pulumi's program runner does (@pulumi/pulumi cmd/run): each
 * distinct error is one program error, and a program with any fails its update. A stack output
 * that rejects reaches the runner this way, once per promise derived from it, with the same error.
 * node:test's own listener would call them asynchronous activity after the test: it is replaced.
 * Returns the distinct errors seen, in order.
 */
export function collectProgramErrors(): unknown[] {
  const errors: unknown[] = [];
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", (err) => {
    if (!errors.includes(err)) errors.push(err);
  });
  return errors;
}
