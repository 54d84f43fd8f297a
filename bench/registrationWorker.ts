// Registers the component under Pulumi's mock runtime (with the capture of test/support) in a
// fresh process, and reports what sections 2 and 5 read from the registrations:
//
//   node --import tsx bench/registrationWorker.ts <nodes>x<batchSize> ...
//
// State per node is read from the first combo (the batch size does not change a Command's inputs).
// The last stdout line is RESULT_PREFIX + JSON ({ state: StateResult, rounds: RoundsResult[] }).
import * as pulumi from "@pulumi/pulumi";
import { startMockRuntime, type Registration } from "../test/support/mockRuntime";
import { benchSettings } from "./benchSettings";
import { reportResult } from "./programProtocol";
import { longestCommandChain, RoundsResult } from "./rounds";
import { commandState, nodeState, registrationInputBytes, StateResult } from "./state";

export interface RegistrationReport {
  state: StateResult;
  rounds: RoundsResult[];
}

// waitForRPCs is exported by the SDK's runtime but missing from its type declarations.
const runtime = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };

/** A node's kubelet switch (not its revert guard or its cleanup). */
function isSwitch(r: Registration): boolean {
  return r.name.includes("-kubelet-") && !r.name.includes("-guard-");
}

async function main(argv: string[]): Promise<RegistrationReport> {
  const combos = argv.map((a) => {
    const [n, b] = a.split("x").map(Number);
    if (!Number.isInteger(n) || !Number.isInteger(b)) throw new Error(`bad combo ${a}`);
    return { nodes: n!, batchSize: b! };
  });
  const mock = await startMockRuntime();
  // Imported after setMocks: the SDK's resource modules must load against the mock runtime.
  const { NodeLocalDns } = await import("../components/nodeLocalDns");
  if (combos.length === 0) throw new Error("usage: registrationWorker.ts <nodes>x<batchSize> ...");
  const prefixes: string[] = [];
  for (const c of combos) {
    const name = `rounds-${c.nodes}-b${c.batchSize}`;
    prefixes.push(name);
    new NodeLocalDns(name, { settings: benchSettings(c.nodes, c.batchSize) });
  }
  await runtime.waitForRPCs();

  const regs = mock.registrations;
  const underComponent = (name: string) => {
    const root = regs.find((r) => r.type === "nodelocaldns:index:NodeLocalDns" && r.name === name);
    if (root === undefined) throw new Error(`component ${name} not registered`);
    return [root, ...regs.filter((r) => r.parent === root.urn)];
  };
  const stateRegs = underComponent(prefixes[0]!);
  const commands = stateRegs.filter((r) => r.type === "command:remote:Command");
  const switches = commands.filter(isSwitch);
  const sibling = (sw: Registration, kind: string, infix: string) => {
    const found = commands.find((r) => r.name === sw.name.replace("-kubelet-", infix));
    if (found === undefined) throw new Error(`no ${kind} for ${sw.name}`);
    return commandState(found);
  };
  const state: StateResult = {
    nodes: combos[0]!.nodes,
    perNode: switches.map((sw) =>
      nodeState([
        commandState(sw),
        sibling(sw, "revert guard", "-kubelet-guard-"),
        sibling(sw, "cleanup", "-cleanup-"),
      ]),
    ),
    stackInputs: stateRegs.reduce((sum, r) => sum + registrationInputBytes(r), 0),
  };
  const rounds = combos.map((c, i): RoundsResult => {
    const group: Registration[] = underComponent(prefixes[i]!);
    const count = group.filter((r) => r.type === "command:remote:Command" && isSwitch(r)).length;
    if (count !== c.nodes) throw new Error(`${prefixes[i]}: ${count} Commands registered`);
    return { ...c, commands: count, rounds: longestCommandChain(group) };
  });
  return { state, rounds };
}

reportResult(main(process.argv.slice(2)));
