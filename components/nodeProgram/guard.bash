# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The revert guard. Pulumi records a switch only once its create completes, so an interrupted
# `pulumi up` can leave a node switched with nothing in the stack to revert it. The guard is
# recorded before the switch runs; its delete (on destroy after the switch's, before the DaemonSet
# goes) runs the saved program copy, which reverts whatever the node's record says, if anything.
# The guard Command has no create or update: Pulumi records it without connecting to the node.
# ------------------------------------------------------------------------------------------------

guard_main() {
  local action=${1-}
  set -euo pipefail
  export LC_ALL=C
  if [[ ${action} != delete ]]; then
    printf '%s[%s]: usage: bash -s delete < guard\n' "${LAUNCHER_LOG_PREFIX}" "${NODE_NAME}" >&2
    exit 2
  fi
  revert_with_saved_program
}
