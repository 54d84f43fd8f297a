// Section 2: state per node, from what each kubelet Command registers. The engine stores a
// resource's inputs in the checkpoint (its outputs too: for remote.Command they repeat the inputs
// and add stdout/stderr); what is measured here is the registered inputs, as JSON.
import type { Registration } from "../test/support/mockRuntime";
import { unwrapSecret } from "../test/support/mockRuntime";
import { bytes, spread, summarize, table, verdict } from "./stats";

const b = (v: number) => `${v} B`;

export const STATE_GOAL_BYTES = 16 * 1024;

export interface CommandState {
  name: string;
  /** JSON bytes of create + update + delete + stdin + triggers + connection (no private keys). */
  total: number;
  stdin: number;
  /** stdin as raw text (before JSON escaping). */
  stdinRaw: number;
  commands: number;
  connection: number;
  triggers: number;
}

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v ?? null));

/** The connection without its secrets (privateKey, also a proxy's). */
function withoutSecrets(connection: unknown): unknown {
  const plain = unwrapSecret(connection).value;
  if (plain === null || typeof plain !== "object") return plain;
  const { privateKey: _key, proxy, ...rest } = plain as Record<string, unknown>;
  void _key;
  return proxy === undefined ? rest : { ...rest, proxy: withoutSecrets(proxy) };
}

export function commandState(reg: Registration): CommandState {
  const i = reg.inputs;
  const stdin = unwrapSecret(i.stdin).value;
  const connection = withoutSecrets(i.connection);
  const counted = {
    create: i.create,
    update: i.update,
    delete: i.delete,
    stdin,
    triggers: i.triggers,
    connection,
  };
  return {
    name: reg.name,
    total: jsonBytes(counted),
    stdin: jsonBytes(stdin),
    stdinRaw: typeof stdin === "string" ? Buffer.byteLength(stdin) : 0,
    commands: jsonBytes([i.create, i.update, i.delete]),
    connection: jsonBytes(connection),
    triggers: jsonBytes(i.triggers),
  };
}

/** A node's Commands (its switch first, then its revert guard and its cleanup), field by field. */
export function nodeState(commands: readonly [CommandState, ...CommandState[]]): CommandState {
  const sum = (f: (c: CommandState) => number) => commands.reduce((total, c) => total + f(c), 0);
  return {
    name: commands[0].name,
    total: sum((c) => c.total),
    stdin: sum((c) => c.stdin),
    stdinRaw: sum((c) => c.stdinRaw),
    commands: sum((c) => c.commands),
    connection: sum((c) => c.connection),
    triggers: sum((c) => c.triggers),
  };
}

export interface StateResult {
  nodes: number;
  /** Per node: its switch, its guard and its cleanup together. */
  perNode: CommandState[];
  /** JSON bytes of every registration's inputs (private keys removed), the whole stack. */
  stackInputs: number;
}

export function stateTable(r: StateResult): { markdown: string; met: boolean; summary: string } {
  const pick = (f: (c: CommandState) => number) => spread(summarize(r.perNode.map(f)), b);
  const total = summarize(r.perNode.map((c) => c.total));
  const met = total.max <= STATE_GOAL_BYTES;
  const rows = [
    [
      "per node, total",
      `${pick((c) => c.total)}; median ${(total.median / 1024).toFixed(2)} KiB`,
      verdict(met),
    ],
    [
      "  stdin (the switch launcher, the guard and the cleanup), JSON-escaped",
      pick((c) => c.stdin),
      "",
    ],
    ["  stdin as raw text", pick((c) => c.stdinRaw), ""],
    ["  create + update + delete texts", pick((c) => c.commands), ""],
    ["  connection (private key removed)", pick((c) => c.connection), ""],
    ["  triggers", pick((c) => c.triggers), ""],
    [
      `whole stack, ${r.nodes.toLocaleString("en")} nodes: every registration's inputs`,
      bytes(r.stackInputs),
      "",
    ],
  ];
  const head = [
    "registered inputs (JSON)",
    "median (min–max over nodes)",
    "goal ≤ 16 KiB per node",
  ];
  return {
    markdown: table(head, rows),
    met,
    summary: `${total.max} B per node at most (${((100 * total.max) / STATE_GOAL_BYTES).toFixed(0)}% of 16 KiB)`,
  };
}

/** JSON bytes of a registration's inputs with private keys removed from any connection. */
export function registrationInputBytes(reg: Registration): number {
  const inputs = { ...reg.inputs };
  if ("connection" in inputs) inputs.connection = withoutSecrets(inputs.connection);
  return jsonBytes(inputs);
}
