// The README's configuration reference is the program's own (components/configReference.ts):
// the table between its markers has the same rows and cells, whatever prettier did to the spacing.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { configReference } from "../components/configReference";

/** Rows of a Markdown table as trimmed cells, without the header's separator row. */
function rows(table: string): string[][] {
  return table
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}

describe("README", () => {
  it("carries the configuration reference the code generates", () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");
    const start = readme.indexOf("<!-- config-reference:start -->");
    const end = readme.indexOf("<!-- config-reference:end -->");
    assert.ok(start >= 0 && end > start, "the README has the markers");
    assert.deepEqual(rows(readme.slice(start, end)), rows(configReference()));
  });
});
