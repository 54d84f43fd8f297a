# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# Steps: one change to kubelet's cluster DNS, written ahead so that nothing is ever half-done
#
# A step replaces (or creates, or removes) one file, restarts kubelet and checks that the new
# kubelet is healthy and runs with the value meant. In this order:
#   1. prepared:   the bytes before and after the step and the record of what it does are on disk
#                  (flushed), the file untouched;
#   2. committing: written before the file is touched; from here on a failure puts the bytes back
#                  (undo_step) and restarts kubelet;
#   3. the file is replaced, systemd re-reads units if a unit file changed, kubelet restarts and
#      is checked;
#   4. the record says where the step ended: switched (create, update) or gone (delete).
# A run killed at any point (SIGKILL, power loss) leaves a record in phase prepared or committing;
# the next run of any action undoes that step first (recover_interrupted_step), so the node comes
# back to where it was before the step, and the original bytes are never lost.
# ------------------------------------------------------------------------------------------------

# none | prepared | committing | undoing: where the current run is in its step.
step_phase=none
# The order keys are written in (a fixed order keeps records easy to read and compare).
readonly RECORD_KEYS=(format node phase step source source_kind original_value original_exists
  applied_value daemon_reload before_state before_value before_exists after_value after_exists)
readonly STEP_KEYS=(step before_state before_value before_exists after_value after_exists)

# Writes `record` (only the keys it has) to disk.
save_record() {
  local -a entries=()
  local key
  for key in "${RECORD_KEYS[@]}"; do
    if [[ -n ${record[${key}]+set} ]]; then
      entries+=("${key}=${record[${key}]}")
    fi
  done
  write_record "${entries[@]}"
}

# Begins a step on source_path: $1 the step, $2 the name of the variable holding the new bytes
# ("" to remove the file), $3 the cluster DNS the step sets. `record` must already hold the state
# the step starts from (empty for a fresh switch, with the original's keys filled in by the caller).
begin_step() {
  local step=$1
  local after_name=$2
  local after_value=$3
  local before_content=
  if [[ -n ${record[phase]:-} ]]; then
    record[before_state]=switched
    record[before_value]=${record[applied_value]}
  else
    record[before_state]=none
    record[before_value]=${effective_list}
  fi
  record[before_exists]=no
  if [[ -e ${source_path} || -L ${source_path} ]]; then
    read_file_exact "${source_path}" before_content
    save_state_file before "${before_content}"
    record[before_exists]=yes
  fi
  record[after_exists]=no
  if [[ -n ${after_name} ]]; then
    save_state_file after "${!after_name}"
    record[after_exists]=yes
  fi
  record[after_value]=${after_value}
  record[step]=${step}
  record[phase]=prepared
  save_record
  step_phase=prepared
}

# When the kubelet of the step committed last was checked (UTC, ISO 8601), or when the file was
# written if kubelet was not running. Pods created before it were set up by the kubelet from
# before the step: after a switch, these are the pods that still ask the old resolver. Taken
# after the check, so that a pod is never wrongly left out (printf's %()T: no fork).
step_done_at=
stamp_step_done() {
  TZ=UTC printf -v step_done_at '%(%Y-%m-%dT%H:%M:%SZ)T' -1
}

# Commits the step begun: the file gets the new bytes, kubelet restarts, and the new kubelet must
# be healthy and run with the value meant (else the step is undone and the run fails).
commit_step() {
  local content
  local old_pid=${kubelet_pid}
  local was_running=${kubelet_running}
  ensure_client_connected \
    "changing ${source_path}: cluster DNS ${record[before_value]} -> ${record[after_value]}"
  record[phase]=committing
  save_record
  step_phase=committing
  if [[ ${record[after_exists]} == yes ]]; then
    load_state_file after content
    write_file_atomic "${source_path}" "${content}"
  else
    remove_file_durably "${source_path}"
  fi
  if [[ ${record[daemon_reload]} == yes ]]; then
    daemon_reload || fail "systemctl daemon-reload failed"
  fi
  if [[ ${was_running} == no ]]; then
    log "kubelet is not running: not restarted; it reads the file when it starts"
    stamp_step_done
    return 0
  fi
  if ! restart_kubelet_and_wait "${old_pid}"; then
    fail "kubelet did not come back healthy after the change"
  fi
  verify_running_kubelet "${record[after_value]}"
  stamp_step_done
}

# Checks, from the new kubelet's command line and the files it reads, that it uses the value meant.
# Right after restart_kubelet_and_wait succeeded: its last look at the process is the one checked.
verify_running_kubelet() {
  local expected=$1
  local recorded_source=${record[source]}
  detect_dns_source just-read
  if [[ ${effective_list} != "${expected}" ]]; then
    fail "kubelet restarted but runs with cluster DNS ${effective_list:-(none)}" \
      "(${source_note}), not ${expected}"
  fi
  if [[ ${source_path} != "${recorded_source}" && ${record[after_exists]} == yes ]]; then
    fail "kubelet restarted but takes its cluster DNS from ${source_path}, not ${recorded_source}"
  fi
  log "kubelet (pid ${kubelet_pid}) runs with cluster DNS ${effective_list}"
}

# Ends a create or update step: the node is switched.
finish_switch_step() {
  local content
  load_state_file after content
  save_state_file applied "${content}"
  record[applied_value]=${record[after_value]}
  record[phase]=switched
  drop_step_keys
  save_record
  rm -f -- "${STATE_DIR}/before" "${STATE_DIR}/after"
  step_phase=none
}

# Ends a delete step: nothing of the switch is left.
finish_revert_step() {
  record=()
  remove_state_files
  step_phase=none
}

drop_step_keys() {
  local key
  for key in "${STEP_KEYS[@]}"; do
    unset "record[${key}]"
  done
}

# Removes the record and the files it refers to (the lock stays until the run ends).
remove_state_files() {
  local name
  for name in "${STATE_FILES[@]}"; do
    rm -f -- "${STATE_DIR:?}/${name}"
  done
  flush_to_disk "${STATE_DIR}"
}

# Puts the node back to where the step in progress started: the bytes before it, systemd and
# kubelet restarted on them, and the record as it was.
undo_step() {
  local content
  step_phase=undoing
  source_path=${record[source]}
  if [[ ${record[before_exists]} == yes ]]; then
    load_state_file before content
    write_file_atomic "${source_path}" "${content}"
    log "undo: put back ${source_path} as it was before the ${record[step]}"
  else
    remove_file_durably "${source_path}"
    log "undo: removed ${source_path}"
  fi
  if [[ ${record[daemon_reload]} == yes ]]; then
    daemon_reload || log "undo: systemctl daemon-reload failed"
  fi
  read_unit_properties MainPID ActiveState
  if [[ ${unit[ActiveState]} == inactive ]]; then
    log "undo: kubelet is stopped; not restarted"
  elif restart_kubelet_and_wait "${unit[MainPID]}"; then
    log "undo: kubelet back on cluster DNS ${record[before_value]}"
  else
    log "undo: kubelet is not healthy even with the file as it was; look at journalctl -u kubelet"
  fi
  if [[ ${record[before_state]} == switched ]]; then
    record[applied_value]=${record[before_value]}
    if [[ ${record[before_exists]} == yes ]]; then
      save_state_file applied "${content}"
    fi
    record[phase]=switched
    drop_step_keys
    save_record
    rm -f -- "${STATE_DIR}/before" "${STATE_DIR}/after"
  else
    record=()
    remove_state_files
  fi
  step_phase=none
}

# Drops a step that was prepared but never touched the file: the record goes back to where the
# step started.
drop_prepared_step() {
  if [[ ${record[before_state]} == switched ]]; then
    record[phase]=switched
    drop_step_keys
    save_record
    rm -f -- "${STATE_DIR}/before" "${STATE_DIR}/after"
  else
    record=()
    remove_state_files
  fi
  step_phase=none
}

# Undoes a step that a killed run left behind. A step still "prepared" never touched the file.
recover_interrupted_step() {
  case ${record[phase]:-} in
    prepared)
      log "found a ${record[step]} that was interrupted before it changed anything: dropping it"
      drop_prepared_step
      ;;
    committing)
      log "found a ${record[step]} of ${record[source]} that was interrupted: undoing it"
      check_recorded_source
      undo_step
      ;;
  esac
}

# A recorded path is honoured only if it is a file this program would pick itself.
check_recorded_source() {
  read_kubelet_process
  if ! is_kubelet_source_candidate "${record[source]}"; then
    refuse "the record names ${record[source]}, which is not a kubelet file this program" \
      "would edit; state left as it is"
  fi
}
