# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The revert guard. Pulumi records a switch only once its create completes, so an interrupted
# `pulumi up` can leave a node switched with nothing in the stack to revert it. The guard is
# recorded before the switch runs; its delete (on destroy after the switch's, before the DaemonSet
# goes) runs the saved program copy, which reverts whatever the node's record says, if anything.
# ------------------------------------------------------------------------------------------------

guard_main() {
  local action=${1-}
  set -euo pipefail
  export LC_ALL=C
  case ${action} in
    create | update)
      launcher_log "in place: on destroy it reverts whatever a switch recorded in ${STATE_DIR}"
      ;;
    delete)
      revert_with_saved_program
      ;;
    *)
      printf 'usage: bash -s create|update|delete < guard\n' >&2
      exit 2
      ;;
  esac
}
