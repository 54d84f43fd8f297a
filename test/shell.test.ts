import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { shellQuote } from "../components/shell";

/** What bash makes of `printf '%s' <word>`: the round trip through a real shell. */
function throughBash(word: string): string {
  return execFileSync("bash", ["-c", `printf '%s' ${word}`], { encoding: "utf8" });
}

describe("shellQuote", () => {
  it("leaves plain words readable", () => {
    for (const plain of ["169.254.20.10", "fd00::10", "/var/lib/nodelocaldns", "node-1", "a,b"]) {
      assert.equal(shellQuote(plain), plain);
    }
  });

  it("single-quotes everything else, so bash gives back the exact value", () => {
    const nasty = [
      "",
      "a b",
      "it's",
      "'",
      "$(reboot)",
      "`id`",
      "a;b",
      "x && y",
      "$HOME",
      "line\nbreak",
      "back\\slash",
      '"dq"',
      "*",
      "~root",
      "!event",
      "tab\there",
    ];
    for (const value of nasty) {
      const quoted = shellQuote(value);
      assert.notEqual(quoted, value, `${JSON.stringify(value)} must be quoted`);
      assert.equal(throughBash(quoted), value, `round trip of ${JSON.stringify(value)}`);
    }
  });

  it("refuses a NUL byte, which no shell word can hold", () => {
    assert.throws(() => shellQuote("a\0b"), /NUL/);
  });
});
