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

guard_log() {
  printf 'nodelocaldns-guard[%s]: %s\n' "${NODE_NAME}" "$*"
}

guard_fail() {
  printf 'nodelocaldns-guard[%s]: error: %s\n' "${NODE_NAME}" "$*" >&2
  exit 1
}

# The saved program runs as root: only if root alone can have written it.
check_saved_program() {
  local path=$1
  local details
  details=$(stat -c '%F:%u:%a' -- "${STATE_DIR}")
  if [[ -L ${STATE_DIR} || ${details} != directory:0:700 ]]; then
    guard_fail "${STATE_DIR} is not a root-owned 0700 directory (${details}); not running ${path}"
  fi
  details=$(stat -c '%F:%u' -- "${path}")
  if [[ -L ${path} || ${details} != 'regular file:0' ]]; then
    guard_fail "${path} is not a regular file owned by root; not running it"
  fi
}

guard_main() {
  local action=${1-}
  local program=${STATE_DIR}/program
  set -euo pipefail
  export LC_ALL=C
  case ${action} in
    create | update)
      guard_log "in place: on destroy it reverts whatever a switch recorded in ${STATE_DIR}"
      ;;
    delete)
      if [[ ! -e ${program} && ! -L ${program} ]]; then
        guard_log "no saved node program in ${STATE_DIR}: nothing to revert"
        return 0
      fi
      check_saved_program "${program}"
      guard_log "running the saved node program's revert"
      bash "${program}" delete
      ;;
    *)
      printf 'usage: bash -s create|update|delete < guard\n' >&2
      exit 2
      ;;
  esac
}
