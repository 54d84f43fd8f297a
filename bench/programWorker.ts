// One program-cost measurement in a fresh process (so peak RSS and wall time belong to one run):
//
//   node --import tsx bench/programWorker.ts ours  <nodes> <shape.json>
//   node --import tsx bench/programWorker.ts floor <nodes> <shape.json>
//
// Both modes start Pulumi's mock runtime with the stack config of <nodes> nodes as the engine
// passes it, and load the SDK and its resource modules. Then, timed in-process ("program"):
// - ours: the real program (index.ts): reads and validates the config, renders objects and node
//   programs, registers the component and its resources;
// - floor: registers the same kinds and number of resources, with the same options, inputs of the
//   same size and the same batch chaining, using none of our logic (the SDK floor). Its inputs
//   come from <shape.json>, written beforehand by bench/program.ts.
// Both end when the SDK's RPC queue has drained (every registration answered). The last stdout
// line is RESULT_PREFIX + JSON (bench/programProtocol.ts).
import * as fs from "node:fs";
import { performance } from "node:perf_hooks";
import * as pulumi from "@pulumi/pulumi";
import { engineConfig, nodeHost, nodeHostKey, nodeName, PRIVATE_KEY, SSH_USER } from "./fixture";
import { FloorShape, reportResult, WorkerResult } from "./programProtocol";

// waitForRPCs is exported by the SDK's runtime but missing from its type declarations.
const runtime = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };

async function main(argv: string[]): Promise<WorkerResult> {
  const [mode, nodesArg, shapeFile] = argv;
  if ((mode !== "ours" && mode !== "floor") || nodesArg === undefined || shapeFile === undefined) {
    throw new Error("usage: programWorker.ts ours|floor <nodes> <shape.json>");
  }
  const nodes = Number(nodesArg);
  let registrations = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        registrations++;
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "nodelocaldns",
    "bench",
    false,
  );
  const { config, secretKeys } = engineConfig(nodes);
  pulumi.runtime.setAllConfig(config, secretKeys);

  // The SDK and the resource modules both programs use (the providers load them lazily).
  const k8s = await import("@pulumi/kubernetes");
  const command = await import("@pulumi/command");
  for (const cls of [
    k8s.core.v1.ServiceAccount,
    k8s.core.v1.Service,
    k8s.core.v1.ConfigMap,
    k8s.apps.v1.DaemonSet,
    command.remote.Command,
  ]) {
    if (typeof cls !== "function") throw new Error("resource module did not load");
  }
  const shape = JSON.parse(fs.readFileSync(shapeFile, "utf8")) as FloorShape;
  if (shape.nodes !== nodes) throw new Error(`shape is for ${shape.nodes} nodes, not ${nodes}`);

  const start = performance.now();
  let loadMs = 0;
  if (mode === "ours") {
    await import("../components");
    loadMs = performance.now() - start;
    await import("../index");
  } else {
    floorProgram(shape, k8s, command);
  }
  await runtime.waitForRPCs();
  const end = performance.now();

  // The component, the provider, six objects, a guard, a switch and a cleanup per node, and a
  // gate after every round but the last when a round has several nodes.
  const rounds = Math.ceil(nodes / shape.batchSize);
  const gates = shape.batchSize > 1 ? rounds - 1 : 0;
  const expected = 3 * nodes + 8 + gates;
  if (registrations !== expected) {
    throw new Error(`${mode}: ${registrations} registrations, expected ${expected}`);
  }
  return {
    mode,
    nodes,
    setupMs: start,
    programMs: end - start,
    loadMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    registrations,
  };
}

/** The SDK floor: our resources' kinds, count, options and input sizes; none of our logic. */
function floorProgram(
  shape: FloorShape,
  k8s: typeof import("@pulumi/kubernetes"),
  command: typeof import("@pulumi/command"),
): void {
  class Floor extends pulumi.ComponentResource {
    constructor(name: string) {
      super("nodelocaldns:index:NodeLocalDns", name, {});
      const child = { parent: this };
      const o = shape.objects;
      const sa = new k8s.core.v1.ServiceAccount(`${name}-service-account`, o.serviceAccount, child);
      const upstream = new k8s.core.v1.Service(
        `${name}-kube-dns-upstream`,
        o.upstreamService,
        child,
      );
      const cm = new k8s.core.v1.ConfigMap(`${name}-corefile`, o.configMap, child);
      const program = new k8s.core.v1.ConfigMap(
        `${name}-node-program`,
        o.nodeProgramConfigMap,
        child,
      );
      const provider = new command.Provider(`${name}-command`, {}, child);
      const connection = (i: number) =>
        pulumi.secret({
          host: nodeHost(i),
          port: 22,
          user: SSH_USER,
          privateKey: PRIVATE_KEY,
          hostKey: nodeHostKey(i),
        });
      const cleanups = Array.from(
        { length: shape.nodes },
        (_, i) =>
          new command.remote.Command(
            `${name}-cleanup-${nodeName(i)}`,
            {
              connection: connection(i),
              stdin: nodeName(i) + "#".repeat(shape.cleanupStdinLengths[i]! - nodeName(i).length),
              delete: shape.commandTexts.delete,
            },
            { parent: this, provider, deleteBeforeReplace: true },
          ),
      );
      const ds = new k8s.apps.v1.DaemonSet(
        `${name}-daemonset`,
        o.daemonSet as unknown as import("@pulumi/kubernetes").apps.v1.DaemonSetArgs,
        { ...child, dependsOn: [sa, upstream, cm, program, ...cleanups] },
      );
      new k8s.core.v1.Service(`${name}-metrics`, o.metricsService, child);

      let previous: pulumi.Resource[] = [];
      let current: pulumi.Resource[] = [];
      for (let i = 0; i < shape.nodes; i++) {
        const host = nodeHost(i);
        const node = nodeName(i);
        const commandArgs = (stdinLength: number) => ({
          connection: connection(i),
          stdin: node + "#".repeat(stdinLength - node.length),
          create: shape.commandTexts.create,
          update: shape.commandTexts.update,
          delete: shape.commandTexts.delete,
          triggers: [host, 22, "/var/lib/nodelocaldns"],
        });
        const guard = new command.remote.Command(
          `${name}-kubelet-guard-${node}`,
          commandArgs(shape.guardStdinLengths[i]!),
          { parent: this, provider, dependsOn: [ds], deleteBeforeReplace: true },
        );
        current.push(
          new command.remote.Command(
            `${name}-kubelet-${node}`,
            commandArgs(shape.stdinLengths[i]!),
            {
              parent: this,
              provider,
              dependsOn: [ds, guard, ...previous],
              deleteBeforeReplace: true,
              replaceWith: [ds],
            },
          ),
        );
        if (current.length === shape.batchSize || i === shape.nodes - 1) {
          // The component's round gate: a round of several nodes, but not the last, is passed
          // through a Stash.
          const gated = current.length > 1 && i < shape.nodes - 1;
          previous = gated
            ? [
                new pulumi.Stash(
                  `${name}-round-${i}`,
                  { input: current.length },
                  { parent: this, dependsOn: current },
                ),
              ]
            : current;
          current = [];
        }
      }
      this.registerOutputs({
        clusterDnsIp: "10.96.0.10",
        localDnsIp: "169.254.20.10",
        daemonSet: ds.metadata.name,
      });
    }
  }
  new Floor("nodelocaldns");
}

reportResult(main(process.argv.slice(2)));
