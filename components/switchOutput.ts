// What the stack output `kubeletSwitches` keeps of a switch's output, pure. The whole transcript
// stays in the switch Command's state and in the `pulumi up` log; a line per node is what an
// operator reads across a fleet, and what each node adds to the checkpoint once more.

/**
 * The line a switch's output ends with, which says how it ended (`switched: ...`), or "" when there
 * is none (a Command whose state holds no stdout: the mock runtime's, or one that never ran).
 */
export function switchOutcome(stdout: string | undefined): string {
  const lines = (stdout ?? "").split("\n").filter((line) => line.trim() !== "");
  return lines.at(-1) ?? "";
}
