// Public surface for other Pulumi programs that reuse the component.
export { NodeLocalDns, NodeLocalDnsArgs } from "./nodeLocalDns";
export { parseSettings, ConfigError, RawConfig, ParsedConfig } from "./config";
export { rawConfigFromEngine, rawConfigFromFiles, settingsFromFiles } from "./stackConfig";
export { nodeLocalDnsObjects, KubernetesObject, KubernetesObjects } from "./kubernetesObjects";
export { renderCorefile } from "./corefile";
export { renderNodeProgram, renderNodeScript, NodeAction, NodeScriptParams } from "./nodeScript";
export * from "./settings";
export {
  clusterNodesFromList,
  fleetPlan,
  FleetPlan,
  ManagedNode,
  MANAGED_NODES_RECORD,
  managedNodesFromRecord,
} from "./discovery";
export { MONITORING_CRDS, MonitoringKind, monitoringObjects, monitoringPlan } from "./monitoring";
export {
  hasKubeconfig,
  installedCrds,
  listClusterNodes,
  listClusterPods,
  previouslyManagedNodes,
  readKubeletClusterDns,
  providerKubeSettings,
  readConfigMapAnnotations,
  readConfigMapData,
  readDaemonSet,
  KubeSettings,
} from "./fleetSources";
export { OLD_PODS_TEAR_DOWN_WARNING, tearsDownOnExit } from "./daemonSetRollout";
export { shortReason } from "./kubeClient";
export { reportPods, verifySwitches } from "./afterSwitch";
export { switchOutcome } from "./switchOutput";
export { liveView, LiveNodeView, LiveRead, LiveState, parseConfigz } from "./kubeletLive";
export {
  nodesToVerify,
  repairLine,
  repairNumbers,
  verification,
  Verification,
  verificationFailure,
  verificationLine,
} from "./kubeletRepair";
export {
  podSummaries,
  podsLine,
  podsToRecreate,
  PodsReport,
  PodSummary,
  switchesOfThisUpdate,
  switchTimes,
  switchedAtFromOutput,
} from "./podsToRecreate";
export { KUBE_PROXY_CONFIG_MAP, kubeProxyModeWarning, statedKubeProxyMode } from "./kubeProxyMode";
