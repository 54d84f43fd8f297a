# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# main: create | update | delete | check
# ------------------------------------------------------------------------------------------------

readonly REQUIRED_TOOLS=(systemctl flock timeout stat cp mv rm rmdir chmod sync od head)

check_tools() {
  local tool
  local missing=
  for tool in "${REQUIRED_TOOLS[@]}"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      missing+=" ${tool}"
    fi
  done
  if [[ -n ${missing} ]]; then
    refuse "missing on this node:${missing} (bash needs coreutils, util-linux and systemd)"
  fi
}

# At the end of every run. bash itself may end the run without the ERR trap (set -u on a variable
# that is not set): a step still committing is then undone here. With no record left, the lock
# file and the state directory go too.
on_exit() {
  local status=$?
  if ((status != 0)) && [[ ${step_phase} == committing ]]; then
    printf 'nodelocaldns[%s]: error: the run ended unexpectedly (exit %s)\n' "${NODE_NAME}" \
      "${status}" >&2 2>/dev/null || true
    trap - ERR
    set +e
    undo_step
  fi
  remove_temp_file
  flush_unflushed_directories || true
  if [[ -n ${lock_fd} && -z ${record[phase]:-} && ${step_phase} == none ]]; then
    remove_state_files
    rm -f -- "${STATE_DIR:?}/lock"
    rmdir -- "${STATE_DIR}" 2>/dev/null || true
  fi
}

# The optional second word of a run: none, or `repair-N` (N from 1 to 999999) on an update.
is_repair_word() {
  local action=$1
  local word=$2
  if [[ -z ${word} ]]; then
    return 0
  fi
  [[ ${action} == update && ${word} =~ ^repair-[1-9][0-9]{0,5}$ ]]
}

main() {
  local action=${1-}
  local repair=${2-}
  build_program_copy
  set -Eeuo pipefail
  umask 077
  # Byte semantics for every regex, glob and length, whatever locale sshd passes on.
  export LC_ALL=C
  trap '' PIPE
  trap 'client_gone=yes' HUP
  trap 'on_unexpected_error "$?" "$LINENO" "$BASH_COMMAND"' ERR
  trap on_exit EXIT
  case ${action} in
    create | update | delete | check) ;;
    *)
      printf 'usage: bash -s create|update|delete|check < program\n' >&2
      exit 2
      ;;
  esac
  # A drift repair: the stack saw, through the API server, kubelet running without the cache
  # although its record says this node is switched. The update below switches as any update does;
  # the word only says why it runs (a new repair number is what makes Pulumi run it).
  if (($# > 2)) || ! is_repair_word "${action}" "${repair}"; then
    printf 'nodelocaldns[%s]: usage: bash -s update [repair-N] < program (N: 1 to 999999)\n' \
      "${NODE_NAME}" >&2
    exit 2
  fi
  log "${action}${repair:+ (${repair}: the control plane saw kubelet off the cache)}"
  check_tools
  if [[ ${action} == check ]]; then
    check_node
    return 0
  fi
  take_lock
  remove_stale_temp_files "${STATE_DIR}"
  read_record
  import_legacy_state
  recover_interrupted_step
  case ${action} in
    create | update) switch_node ;;
    delete) revert_node ;;
  esac
}
