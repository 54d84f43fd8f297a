# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# Output and failure
#
# Every line names the node, so that a fleet's `pulumi up` log reads node by node. Progress goes
# to stdout (the switch's state keeps it, the stack output `kubeletSwitches` its last line); the
# line that says why a run failed goes to stderr.
#
# Writing to stdout also tells whether the SSH client is still there: when `pulumi up` is
# interrupted, sshd closes our stdout and the next write fails. SIGPIPE is ignored (see main), so
# the write returns an error instead of killing the program half-way through a step.
# ------------------------------------------------------------------------------------------------

# "yes" once a write to stdout failed or SIGHUP arrived: the client that started us is gone.
client_gone=no

log() {
  printf 'nodelocaldns[%s]: %s\n' "${NODE_NAME}" "$*" 2>/dev/null || client_gone=yes
}

# Stops before the first change when the client is gone: an interrupted `pulumi up` must not
# switch the node minutes later, with nothing on the Pulumi side recording it.
ensure_client_connected() {
  log "$1"
  if [[ ${client_gone} == yes ]]; then
    refuse "the SSH client disconnected (pulumi up interrupted?)"
  fi
}

# Exit status of a subshell whose failure was already reported (see on_unexpected_error).
readonly REPORTED_FAILURE=86

# Ends the run with an error. A step that has started changing the node is undone first
# (undo_step, in steps.bash), so a failing run leaves the node as it found it.
fail() {
  trap - ERR
  printf 'nodelocaldns[%s]: error: %s\n' "${NODE_NAME}" "$*" >&2 2>/dev/null || true
  end_failed_run
}

# Fails before anything was changed.
refuse() {
  fail "$*; nothing changed"
}

# Undoes the step in progress (or drops one only prepared) and exits. Only the main shell does: a
# subshell that fails exits with REPORTED_FAILURE, and the main shell's ERR trap then ends the run
# here.
end_failed_run() {
  if ((BASHPID != $$)); then
    exit "${REPORTED_FAILURE}"
  fi
  case ${step_phase} in
    committing) undo_step ;;
    prepared) drop_prepared_step ;;
  esac
  exit 1
}

# The ERR trap: a command that fails unexpectedly (set -e) ends the run through fail(), once.
on_unexpected_error() {
  local status=$1
  local line=$2
  local command=$3
  if ((BASHPID != $$)); then
    exit "${status}"
  fi
  trap - ERR
  if ((status == REPORTED_FAILURE)); then
    end_failed_run
  fi
  fail "unexpected failure (exit ${status}) at line ${line}: ${command}"
}
