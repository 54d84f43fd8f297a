import { renderSwitchLauncher } from "../components/nodeScript";
import { writeNodeProgramVolume } from "../test/support/kubeletVolume";
import { PARAMS, startProgramNode } from "../test/support/programNode";
import { KUBELET_LAYOUTS } from "../test/support/systemdNode";
import * as fs from "node:fs";

async function main() {
  const layout = KUBELET_LAYOUTS.tke.files as Record<string, string>;
  const node = await startProgramNode(layout);
  try {
    await writeNodeProgramVolume(node.node, { podUid: "bench-node-local-dns" });
    const launcher = renderSwitchLauncher({ ...PARAMS, readyTimeoutSeconds: 5, kubeletTimeoutSeconds: 15 });
    const traced = "exec 7>/tmp/xtrace; BASH_XTRACEFD=7; PS4='+${EPOCHREALTIME} ${FUNCNAME[0]:-top}:${LINENO} '; set -x\n" + launcher;
    for (let i = 0; i < 6; i++) {
      await node.node.run("systemctl reset-failed kubelet.service");
      for (const action of ["create", "delete"]) {
        const t = performance.now();
        const r = await node.node.ssh(`bash -s ${action}`, i % 2 === 0 ? launcher : traced);
        const ms = performance.now() - t;
        console.log(i, action, Math.round(ms), r.code, i % 2 ? "traced" : "");
        if (r.code !== 0) console.log(r.stdout, r.stderr);
        if (i % 2) fs.writeFileSync(`/tmp/prof/${action}-${i}.trace`, node.text("/tmp/xtrace"));
        await node.node.run("systemctl reset-failed kubelet.service");
      }
    }
  } finally {
    await node.stop();
  }
}
void main();
