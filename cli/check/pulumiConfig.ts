// The stack's config as `pulumi up` sees it, for the check CLI: `pulumi config --json
// --show-secrets` decrypts it the way the engine does (Pulumi.yaml defaults included), and
// engineConfigFromPulumiJson turns its JSON into what the engine hands the program, so that
// rawConfigFromEngine and parseSettings accept and reject exactly what `pulumi up` would.
import { type ParsedConfig, parseSettings } from "../../components/config";
import { rawConfigFromEngine } from "../../components/stackConfig";
import { runProcess } from "./processes";

/** Config as the engine hands it over: full key -> text (JSON text for objects and lists). */
export interface EngineConfig {
  values: Record<string, string>;
  secretKeys: Set<string>;
}

const PULUMI_TIMEOUT_MS = 120_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * `pulumi config --json --show-secrets` output -> EngineConfig. Each entry is
 * `{"value": "<text>", "secret": bool}` (objects also carry `objectValue`, the same value parsed);
 * `value` is the text the engine would hand the program. Messages name keys, never values.
 */
export function engineConfigFromPulumiJson(text: string): EngineConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error("pulumi config --json printed something that is not JSON");
  }
  if (!isRecord(parsed)) throw new Error("pulumi config --json printed no object of keys");
  const config: EngineConfig = { values: {}, secretKeys: new Set() };
  for (const [key, entry] of Object.entries(parsed)) {
    if (!isRecord(entry)) throw new Error(`pulumi config --json: ${key} is not an entry`);
    const secret = entry.secret === true;
    if (typeof entry.value !== "string") {
      throw new Error(
        secret
          ? `pulumi config --json: no value for secret ${key} (not decrypted?)`
          : `pulumi config --json: ${key} has no value`,
      );
    }
    config.values[key] = entry.value;
    if (secret) config.secretKeys.add(key);
  }
  return config;
}

export interface StackConfigOptions {
  pulumi: string;
  stack: string;
  projectDir: string;
}

/** Asks the Pulumi CLI for the stack's decrypted config. */
export async function readEngineConfig(options: StackConfigOptions): Promise<EngineConfig> {
  const result = await runProcess(
    options.pulumi,
    ["config", "--json", "--show-secrets", "--non-interactive", "--stack", options.stack],
    { cwd: options.projectDir, env: process.env, timeoutMs: PULUMI_TIMEOUT_MS },
  );
  if (result.startError !== undefined) {
    throw new Error(
      `cannot run ${options.pulumi} (${result.startError.code ?? result.startError.message}): ` +
        "install the Pulumi CLI or pass --pulumi <path>",
    );
  }
  if (result.timedOut) {
    throw new Error(`pulumi config gave no answer within ${PULUMI_TIMEOUT_MS / 1000}s`);
  }
  if (result.code !== 0) {
    const why = result.stderr.trim().replace(/^error: /gm, "") || `exit ${result.code}`;
    throw new Error(`pulumi config --stack ${options.stack} failed: ${why}`);
  }
  return engineConfigFromPulumiJson(result.stdout);
}

/** Engine config -> settings, with --cluster-dns-ip standing in for an unset clusterDnsIp. */
export function settingsFromEngineConfig(
  config: EngineConfig,
  clusterDnsIp: string | undefined,
): ParsedConfig {
  const raw = rawConfigFromEngine(config.values, (key) => config.secretKeys.has(key));
  if (clusterDnsIp !== undefined) {
    if (raw.values.clusterDnsIp !== undefined && raw.values.clusterDnsIp !== clusterDnsIp) {
      throw new Error(
        "--cluster-dns-ip contradicts nodelocaldns:clusterDnsIp in the stack config: set one of them",
      );
    }
    raw.values.clusterDnsIp = clusterDnsIp;
  }
  return parseSettings(raw);
}
