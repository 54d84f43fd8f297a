{
exec </dev/null
# nodelocaldns revert guard for node node-1: on delete, runs the program copy saved
# in /var/lib/nodelocaldns, if any, to revert what it recorded. As root: bash -s delete
readonly NODE_NAME=node-1
readonly STATE_DIR=/var/lib/nodelocaldns
readonly LAUNCHER_LOG_PREFIX=nodelocaldns-guard
# ------------------------------------------------------------------------------------------------
# Reverting with the copy of the node program (this node's values in it) that every switch saves
# in STATE_DIR/program before it changes anything: the code that made the switch, needing nothing
# from the cluster. The guard always reverts so; the launcher when no delivered program is there.
# ------------------------------------------------------------------------------------------------

# LAUNCHER_LOG_PREFIX names who speaks: nodelocaldns (the switch) or nodelocaldns-guard.
launcher_log() {
  printf '%s[%s]: %s\n' "${LAUNCHER_LOG_PREFIX}" "${NODE_NAME}" "$*"
}

launcher_fail() {
  printf '%s[%s]: error: %s\n' "${LAUNCHER_LOG_PREFIX}" "${NODE_NAME}" "$*" >&2
  exit 1
}

# The saved program runs as root: only if root alone can have written it.
check_saved_program() {
  local path=$1
  local details
  details=$(stat -c '%F:%u:%a' -- "${STATE_DIR}")
  if [[ -L ${STATE_DIR} || ${details} != directory:0:700 ]]; then
    launcher_fail "${STATE_DIR} is not a root-owned 0700 directory (${details});" \
      "not running ${path}"
  fi
  details=$(stat -c '%F:%u' -- "${path}")
  if [[ -L ${path} || ${details} != 'regular file:0' ]]; then
    launcher_fail "${path} is not a regular file owned by root; not running it"
  fi
}

# Runs the saved copy's delete. No copy: nothing was switched, unless a record says otherwise (a
# switch made by a version of this program that saved no copy), which is refused, not skipped.
revert_with_saved_program() {
  local program=${STATE_DIR}/program
  if [[ ! -e ${program} && ! -L ${program} ]]; then
    if [[ -e ${STATE_DIR}/record || -e ${STATE_DIR}/original-dns ]]; then
      launcher_fail "${STATE_DIR} records a switch but holds no saved node program to revert it;" \
        "run \`pulumi up\` once (it saves one), or revert by hand; nothing changed"
    fi
    launcher_log "no saved node program in ${STATE_DIR}: nothing to revert"
    return 0
  fi
  check_saved_program "${program}"
  launcher_log "running the revert of the node program saved in ${STATE_DIR}"
  bash "${program}" delete
}

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

guard_main "$@"
}
