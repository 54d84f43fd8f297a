// What the offline render writes, as pure data: relative path -> file content. The CLI
// (cli/render.ts) only writes these files; the component registers the same objects and programs.
import { stringify } from "yaml";
import { nodeLocalDnsObjects } from "./kubernetesObjects";
import { nodeScriptParams } from "./nodeCommand";
import { NodeAction, renderNodeScript } from "./nodeScript";
import { ResolvedSettings } from "./settings";

const NODE_ACTIONS: readonly NodeAction[] = ["create", "update", "delete"];

export interface RenderedFile {
  path: string;
  content: string;
  /** Node scripts are executable. */
  mode: number;
}

export function renderStack(settings: ResolvedSettings): RenderedFile[] {
  const manifests = nodeLocalDnsObjects(settings)
    .all.map((o) => stringify(o, { lineWidth: 0 }))
    .join("---\n");
  const files: RenderedFile[] = [{ path: "manifests.yaml", content: manifests, mode: 0o644 }];
  for (const node of settings.nodes) {
    const params = nodeScriptParams(settings, node);
    for (const action of NODE_ACTIONS) {
      files.push({
        path: `nodes/${node.name}/${action}.sh`,
        content: renderNodeScript(params, action),
        mode: 0o755,
      });
    }
  }
  return files;
}
