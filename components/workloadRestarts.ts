// restartWorkloads: the one change the program makes outside its resources, and only when the
// stack asks for it. After an `up`, each workload that owns a pod set up before a switch of that
// `up` gets what `kubectl rollout restart` does: an annotation on its pod template, whose change
// makes its controller replace the pods. The annotation holds the switch time (workloadsToRestart):
// the same switches give the same value, and a patch with the same value starts no rollout.
import {
  abortableRequest,
  apiError,
  loadKubeConfig,
  shortReason,
  type KubeSettings,
} from "./kubeClient";
import { restartPatch, type WorkloadRestart } from "./podsToRecreate";

/** Each restart request ends after this long; all of them together after RESTARTS_MS. */
const RESTART_REQUEST_MS = 10_000;
export const RESTARTS_MS = 60_000;

/** What was restarted (`<namespace>/<workload>`) and what was not, with the reason. */
export interface RestartResult {
  restarted: string[];
  failed: { workload: string; reason: string }[];
}

/** Patches each workload in turn, within RESTARTS_MS; one that fails does not stop the others. */
export async function restartWorkloads(
  kube: KubeSettings,
  restarts: WorkloadRestart[],
  totalMs = RESTARTS_MS,
): Promise<RestartResult> {
  await afterTheirSecond(restarts);
  const { k8s, kubeconfig } = await loadKubeConfig(kube);
  const api = kubeconfig.makeApiClient(k8s.AppsV1Api);
  const deadline = Date.now() + totalMs;
  const result: RestartResult = { restarted: [], failed: [] };
  for (const restart of restarts) {
    const workload = `${restart.namespace}/${restart.workload}`;
    const left = deadline - Date.now();
    if (left <= 0) {
      result.failed.push({ workload, reason: `not tried: restarts took over ${totalMs}ms` });
      continue;
    }
    const options = k8s.setHeaderOptions(
      "Content-Type",
      k8s.PatchStrategy.MergePatch,
      await abortableRequest(AbortSignal.timeout(Math.min(left, RESTART_REQUEST_MS))),
    );
    const [kind, name] = restart.workload.split("/") as [string, string];
    const request = { name, namespace: restart.namespace, body: restartPatch(restart.switchedAt) };
    try {
      if (kind === "deployment") await api.patchNamespacedDeployment(request, options);
      else if (kind === "statefulset") await api.patchNamespacedStatefulSet(request, options);
      else await api.patchNamespacedDaemonSet(request, options);
      result.restarted.push(workload);
    } catch (err) {
      result.failed.push({ workload, reason: apiError(err) ?? shortReason(err) });
    }
  }
  return result;
}

/**
 * Waits, at most WAIT_MS, until this machine's clock has left the second of the latest switch: a
 * pod is counted as set up before its node's switch when it was created in the switch's own second
 * (times are to the second), so a replacement made in that second would be listed by the next
 * `up` as if it still asked kube-dns.
 */
async function afterTheirSecond(restarts: WorkloadRestart[]): Promise<void> {
  const latest = Math.max(...restarts.map((restart) => Date.parse(restart.switchedAt)));
  const wait = Math.min(latest + 1_000 - Date.now(), WAIT_MS);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
const WAIT_MS = 2_000;

/** One line for the update's log. */
export function restartLine(result: RestartResult): string {
  const failed = result.failed.map(({ workload, reason }) => `${workload} (${reason})`);
  const shown = failed.slice(0, 10).join(", ") + (failed.length > 10 ? ", ..." : "");
  return (
    `restartWorkloads: restarted ${result.restarted.length} workload(s)` +
    (failed.length > 0 ? `; not restarted: ${shown}` : "")
  );
}
