// Where raw config comes from. Two readers feed the one parser (config.ts): the Pulumi engine during
// `pulumi up`, and the stack files on disk for the offline render.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseDocument } from "yaml";
import { ParsedConfig, parseSettings, PROJECT, RawConfig, STRUCTURED_KEYS } from "./config";
import { Raw } from "./configCheck";
import { SECRET_PLACEHOLDER } from "./settings";

const PREFIX = `${PROJECT}:`;

/**
 * Config from the engine: every `nodelocaldns:*` key (so unknown keys are seen too). Structured
 * keys arrive as JSON text; a value that is not valid JSON is handed on as text and the parser
 * names the key.
 */
export function rawConfigFromEngine(
  all: Record<string, string>,
  isSecretKey: (fullKey: string) => boolean,
): RawConfig {
  const values: Raw = {};
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(PREFIX)) continue;
    const key = fullKey.slice(PREFIX.length);
    values[key] = STRUCTURED_KEYS.includes(key) ? parseJsonOrText(text) : text;
  }
  return { values, isSecret: (key) => isSecretKey(PREFIX + key) };
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Config from Pulumi.yaml defaults and Pulumi.<stack>.yaml, without the Pulumi CLI and without
 * decrypting anything: a `secure:` value becomes SECRET_PLACEHOLDER and its key counts as secret.
 */
export function rawConfigFromFiles(projectDir: string, stack: string): RawConfig {
  const project = readYaml(path.join(projectDir, "Pulumi.yaml")) as Raw | undefined;
  if (project?.name !== PROJECT) {
    throw new Error(`${projectDir}/Pulumi.yaml is not the ${PROJECT} project`);
  }
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(stackFile)) {
    throw new Error(
      `no stack file ${stackFile}: create the stack (pulumi stack init ${stack}) or pick another --stack`,
    );
  }
  const values: Raw = {};
  const secret = new Set<string>();
  for (const [key, decl] of Object.entries((project.config ?? {}) as Raw)) {
    const bare = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    if (decl !== null && typeof decl === "object" && "default" in decl) {
      values[bare] = (decl as Raw).default;
    }
  }
  const stackConfig = ((readYaml(stackFile) as Raw | undefined)?.config ?? {}) as Raw;
  for (const [fullKey, value] of Object.entries(stackConfig)) {
    if (!fullKey.startsWith(PREFIX)) continue;
    const key = fullKey.slice(PREFIX.length);
    const { value: plain, hadSecret } = replaceSecure(value);
    values[key] = plain;
    if (hadSecret) secret.add(key);
  }
  return { values, isSecret: (key) => secret.has(key) };
}

/** Stack config from files, parsed and validated: what render uses. */
export function settingsFromFiles(projectDir: string, stack: string): ParsedConfig {
  return parseSettings(rawConfigFromFiles(projectDir, stack));
}

/**
 * Parses a YAML file. An error names the file, line and column and what is wrong, never the text
 * around it: that text may be a secret's ciphertext or a key pasted by mistake.
 */
function readYaml(file: string): unknown {
  const doc = parseDocument(fs.readFileSync(file, "utf8"), { logLevel: "silent" });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    const where = problem.linePos?.[0];
    const at = where === undefined ? "" : ` at line ${where.line}, column ${where.col}`;
    const what = problem.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "");
    throw new Error(
      `${file}: YAML ${problem.name === "YAMLWarning" ? "warning" : "error"}${at}: ${what}`,
    );
  }
  return doc.toJS();
}

function replaceSecure(value: unknown): { value: unknown; hadSecret: boolean } {
  if (Array.isArray(value)) {
    const parts = value.map(replaceSecure);
    return { value: parts.map((p) => p.value), hadSecret: parts.some((p) => p.hadSecret) };
  }
  if (value !== null && typeof value === "object") {
    const obj = value as Raw;
    // Any object with a `secure` key is a secret (even with extra keys, which Pulumi would refuse).
    if ("secure" in obj) {
      return { value: SECRET_PLACEHOLDER, hadSecret: true };
    }
    let hadSecret = false;
    const out: Raw = {};
    for (const [k, v] of Object.entries(obj)) {
      const r = replaceSecure(v);
      out[k] = r.value;
      hadSecret ||= r.hadSecret;
    }
    return { value: out, hadSecret };
  }
  return { value, hadSecret: false };
}
