// Where the end-to-end toolchain's binaries are: asks test/e2e/toolchain/build.sh --paths (which
// builds nothing) once per process and hands out typed paths, so that tests never guess cache
// directories. A test names the artifacts it needs; when one is missing it gets an error (or, via
// toolchainTestOptions(), a skip outside CI) naming it and the build.sh command that builds it.

import { spawnSync } from "node:child_process";
import * as path from "node:path";

/** The artifacts build.sh --paths knows, with the build.sh component that builds each. */
export const TOOL_COMPONENTS = {
  pulumi: "pulumi",
  /** The SDK's dynamic-provider plugin script, beside the CLI as in Pulumi's releases. */
  "pulumi-resource-pulumi-nodejs": "pulumi",
  "pulumi-resource-kubernetes": "kubernetes-provider",
  "pulumi-resource-command": "command-provider",
  "kube-apiserver": "controlplane",
  "kube-controller-manager": "controlplane",
  "kube-scheduler": "controlplane",
  etcd: "etcd",
  kwok: "kwok",
  /** A directory of kwok Stage YAML files. */
  "kwok-stages": "kwok",
  /** The node-cache stand-in (test/e2e/standins/nodecache). */
  "node-cache": "node-cache",
  /** The Prometheus Operator's CRDs (YAML), as its module ships them. */
  "servicemonitors-crd": "monitoring-crds",
  "prometheusrules-crd": "monitoring-crds",
} as const;

export type ToolName = keyof typeof TOOL_COMPONENTS;
export type ToolPaths<N extends ToolName = ToolName> = { readonly [K in N]: string };

/** What the control plane needs (controlPlane.ts). */
export const CONTROL_PLANE_TOOLS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
  "kwok-stages",
] as const satisfies readonly ToolName[];

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const BUILD_SH = "test/e2e/toolchain/build.sh";
const PATHS_TIMEOUT_MS = 60_000;

interface Listing {
  paths: Partial<Record<ToolName, string>>;
  /** build.sh's own words when it could not list (or found missing) artifacts. */
  stderr: string;
  /** Set when build.sh itself could not run. */
  failure?: string;
}

let listing: Listing | undefined;

function isToolName(name: string): name is ToolName {
  return Object.prototype.hasOwnProperty.call(TOOL_COMPONENTS, name);
}

function list(): Listing {
  const result = spawnSync("bash", [BUILD_SH, "--paths"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: PATHS_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  const paths: Partial<Record<ToolName, string>> = {};
  for (const line of (result.stdout ?? "").split("\n")) {
    const [name, file] = line.split("\t");
    if (name !== undefined && file !== undefined && isToolName(name)) {
      paths[name] = file;
    }
  }
  const stderr = (result.stderr ?? "").trim();
  if (result.error !== undefined) {
    return { paths, stderr, failure: `bash ${BUILD_SH} --paths: ${result.error.message}` };
  }
  // Exit 1 with missing artifacts named is the normal "not everything built" answer.
  if (result.status !== 0 && result.status !== 1) {
    return { paths, stderr, failure: `bash ${BUILD_SH} --paths exited ${result.status}` };
  }
  return { paths, stderr };
}

/** Why the named artifacts are not all usable, or undefined when they are. */
export function missingTools(names: readonly ToolName[]): string | undefined {
  listing ??= list();
  if (listing.failure !== undefined) {
    return `${listing.failure}\n${listing.stderr}`.trim();
  }
  const missing = names.filter((name) => listing!.paths[name] === undefined);
  if (missing.length === 0) {
    return undefined;
  }
  const components = [...new Set(missing.map((name) => TOOL_COMPONENTS[name]))];
  return (
    `end-to-end toolchain incomplete: ${missing.join(", ")} not built ` +
    `(build with: bash ${BUILD_SH} ${components.join(" ")})`
  );
}

/** The paths of the named artifacts; throws naming what is missing and how to build it. */
export function requireTools<N extends ToolName>(names: readonly N[]): ToolPaths<N> {
  const reason = missingTools(names);
  if (reason !== undefined) {
    throw new Error(reason);
  }
  const out = {} as Record<N, string>;
  for (const name of names) {
    out[name] = listing!.paths[name]!;
  }
  return out;
}

/**
 * Options for `describe(...)`/`test(...)` of tests that need these artifacts: `{}` when built,
 * `{ skip }` when not; in CI (CI=true) a missing artifact is an error, never a skip.
 */
export function toolchainTestOptions(names: readonly ToolName[]): { skip?: string } {
  const reason = missingTools(names);
  if (reason === undefined) {
    return {};
  }
  if (process.env.CI === "true") {
    throw new Error(`required in CI: ${reason}`);
  }
  return { skip: reason };
}
