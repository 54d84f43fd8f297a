// One Pulumi operation through the Automation API, in a process of its own (so every `up` loads
// the program afresh, as the nodejs language host would): the project is the one in the work
// directory (this repository's Pulumi.yaml and index.ts, linked there by workspace.ts), run as an
// inline program because the nodejs language host cannot be built here (its Go module is not
// served). The engine, the providers and the SDK are the real ones.
//
// argv[2]: JSON {op: "up" | "preview" | "destroy" | "refresh", stack, workDir, args?, program?}
// stdout: the engine's output as it comes, then one line "RESULT <json>".

import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";

interface Request {
  op: "up" | "preview" | "destroy" | "refresh";
  stack: string;
  workDir: string;
  /** Extra options for the operation (e.g. {diff: true}). */
  args?: Record<string, unknown>;
  /** Another program module (an absolute path) instead of the project's index.ts: the bench's floor. */
  program?: string;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? "{}") as Request;
  const stack = await LocalWorkspace.createOrSelectStack(
    {
      stackName: request.stack,
      projectName: "nodelocaldns",
      // The project's own program: index.ts, loaded now, inside the engine's run.
      program: async () => ({
        ...(await import(request.program ?? path.join(request.workDir, "index.ts"))),
      }),
    },
    { workDir: request.workDir },
  );
  const onOutput = (text: string) => process.stdout.write(text);
  let result: unknown;
  try {
    switch (request.op) {
      case "up": {
        const r = await stack.up({ onOutput, ...request.args });
        result = { ok: true, summary: r.summary, outputs: plainOutputs(r.outputs) };
        break;
      }
      case "preview": {
        const r = await stack.preview({ onOutput, ...request.args });
        result = { ok: true, changeSummary: r.changeSummary };
        break;
      }
      case "destroy": {
        const r = await stack.destroy({ onOutput, ...request.args });
        result = { ok: true, summary: r.summary };
        break;
      }
      case "refresh": {
        const r = await stack.refresh({ onOutput, ...request.args });
        result = { ok: true, summary: r.summary };
        break;
      }
    }
  } catch (err) {
    result = { ok: false, error: String((err as Error).message ?? err) };
  }
  process.stdout.write(`\nRESULT ${JSON.stringify(result)}\n`);
}

function plainOutputs(outputs: Record<string, { value: unknown; secret: boolean }>) {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]));
}

main().catch((err: unknown) => {
  process.stdout.write(`\nRESULT ${JSON.stringify({ ok: false, error: String(err) })}\n`);
  process.exitCode = 1;
});
