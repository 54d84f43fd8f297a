# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The revert guard
#
# Pulumi records a node's switch only when its create completes. A `pulumi up` interrupted at the
# wrong moment can leave a node switched with nothing in the stack to revert it, and `pulumi
# destroy` would then delete the cache under it. The guard is a second, tiny resource per node,
# recorded before the switch runs: its delete (run on destroy after the switch's own, before the
# DaemonSet goes) runs the copy of the node program that every switch saves on the node, which
# reverts whatever the node's record says. With no record there is nothing to do.
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
