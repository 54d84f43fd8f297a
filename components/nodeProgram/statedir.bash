# shellcheck shell=bash
# ------------------------------------------------------------------------------------------------
# The state directory, the node lock and the record
#
# STATE_DIR holds everything a revert needs, so that `pulumi destroy` needs nothing but the node:
#   lock      flock(1) lock: one run at a time on this node, whatever the node's name in the stack
#   record    key=value lines: what was switched, where, from which value, and the step in progress
#   original  the kubelet file's bytes before the first switch (never removed until reverted)
#   applied   the bytes this program wrote at its last completed step
#   before    the bytes before the step in progress (a kill or a failure puts them back)
#   after     the bytes the step in progress writes
#   program   a copy of this program (functions and values), which the revert guard runs on destroy
# Only root may write there: the directory must be root-owned, mode 0700, no symlink anywhere on
# its path, and every directory above it root-owned and not writable by group or others.
# Otherwise the run is refused: anyone who can write state could make a revert copy any file.
# ------------------------------------------------------------------------------------------------

readonly RECORD_FORMAT=1
readonly STATE_FILES=(record original applied before after program)

# Record keys and the values each may hold. A record is re-validated on every read, never sourced.
readonly IP_LIST_VALUE='^[0-9a-f.:]+(,[0-9a-f.:]+)*$'
declare -A -r RECORD_PATTERNS=(
  [format]="^${RECORD_FORMAT}\$"
  [node]='^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'
  [phase]='^(prepared|committing|switched)$'
  [step]='^(create|update|delete|adopt)$'
  [source]='^/[A-Za-z0-9._/-]+$'
  [source_kind]='^(env-file|unit-file|config-file|dropin)$'
  [original_value]="${IP_LIST_VALUE}"
  [original_exists]='^(yes|no)$'
  [applied_value]="${IP_LIST_VALUE}"
  [before_state]='^(none|switched)$'
  [before_value]="${IP_LIST_VALUE}"
  [before_exists]='^(yes|no)$'
  [after_value]="${IP_LIST_VALUE}"
  [after_exists]='^(yes|no)$'
  [daemon_reload]='^(yes|no)$'
)

# The record as read last (empty: none).
declare -A record=()
lock_fd=

# Refuses unless every path given is a directory only root can change (one stat for them all).
# Sets checked_mode to the last one's mode.
checked_mode=
check_root_only_directories() {
  local path
  local details
  local output
  local -a lines=()
  local i=0
  for path in "$@"; do
    if [[ -L ${path} ]]; then
      refuse "${path} is a symlink; stateDir must be a plain path"
    fi
  done
  output=$(stat -c '%F:%u:%a' -- "$@")
  mapfile -t lines <<<"${output}"
  for path in "$@"; do
    details=${lines[i]-}
    i=$((i + 1))
    if [[ ${details%%:*} != directory ]]; then
      refuse "${path} is not a directory (${details%%:*}); stateDir must name a directory"
    fi
    if [[ ${details} != *:0:* ]]; then
      refuse "${path} is not owned by root"
    fi
    if (((8#${details##*:} & 8#022) != 0)); then
      refuse "${path} is writable by group or others (mode ${details##*:})"
    fi
    checked_mode=${details##*:}
  done
}

# Checks every directory from / down to STATE_DIR. Returns 1 if one is missing; with $1 = create,
# creates what is missing instead, under directories that passed, and checks those too (the state
# directory itself ends up with mode 0700).
prepare_state_dir() {
  local create=${1:-}
  local prefix=
  local component
  local -a components=()
  local -a existing_dirs=(/)
  local -a missing_dirs=()
  IFS=/ read -r -a components <<<"${STATE_DIR#/}"
  for component in "${components[@]}"; do
    prefix+=/${component}
    if [[ ${#missing_dirs[@]} -eq 0 && (-e ${prefix} || -L ${prefix}) ]]; then
      existing_dirs+=("${prefix}")
    else
      missing_dirs+=("${prefix}")
    fi
  done
  check_root_only_directories "${existing_dirs[@]}"
  if ((${#missing_dirs[@]} > 0)); then
    if [[ ${create} != create ]]; then
      return 1
    fi
    # In order, parents first; a directory that appeared meanwhile is checked like the others.
    mkdir -m 0755 -- "${missing_dirs[@]}" 2>/dev/null || true
    check_root_only_directories "${missing_dirs[@]}"
  fi
  if [[ ${create} == create && ${checked_mode} != 700 ]]; then
    chmod 0700 -- "${STATE_DIR}"
  fi
  return 0
}

# Takes the node lock, waiting at most LOCK_TIMEOUT_SECONDS for a run that holds it. A run that
# ends by removing the state directory removes the lock file with it; a waiter that then gets the
# lock holds it on a deleted file, so it checks that the file is still there and starts over if not.
take_lock() {
  local lock=${STATE_DIR}/lock
  local deadline=$((SECONDS + LOCK_TIMEOUT_SECONDS))
  local waited=no
  while :; do
    prepare_state_dir create
    exec {lock_fd}>>"${lock}"
    if ! flock -n "${lock_fd}"; then
      if [[ ${waited} == no ]]; then
        log "another nodelocaldns run holds ${lock}: waiting up to ${LOCK_TIMEOUT_SECONDS}s"
        waited=yes
      fi
      if ! flock -w "$((deadline > SECONDS ? deadline - SECONDS : 1))" "${lock_fd}"; then
        refuse "another nodelocaldns run held ${lock} for more than ${LOCK_TIMEOUT_SECONDS}s"
      fi
    fi
    # -ef: the same device and inode; /proc/$$/fd/N is the file this shell holds open.
    if [[ /proc/$$/fd/${lock_fd} -ef ${lock} ]]; then
      return 0
    fi
    exec {lock_fd}>&-
  done
}

# Reads and validates the record into `record` (left empty when there is none).
read_record() {
  record=()
  local path=${STATE_DIR}/record
  local content
  local line
  local key
  local value
  if [[ ! -e ${path} && ! -L ${path} ]]; then
    return 0
  fi
  read_file_exact "${path}" content
  while IFS= read -r line; do
    if [[ ! ${line} =~ ^([a-z_]+)=(.*)$ ]]; then
      refuse "${path}: unreadable line; state left as it is"
    fi
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ -z ${RECORD_PATTERNS[${key}]+set} || ! ${value} =~ ${RECORD_PATTERNS[${key}]} ]]; then
      refuse "${path}: bad value for ${key}; state left as it is"
    fi
    record[${key}]=${value}
  done <<<"${content%$'\n'}"
  local -a required=(format node phase source source_kind original_value original_exists
    daemon_reload)
  if [[ ${record[phase]:-} == switched ]]; then
    required+=(applied_value)
  else
    required+=(step before_state before_value before_exists after_value after_exists)
  fi
  for key in "${required[@]}"; do
    if [[ -z ${record[${key}]:-} ]]; then
      refuse "${path}: ${key} missing; state left as it is"
    fi
  done
  if [[ ${record[source]} == *..* || ${record[source]} == *//* ]]; then
    refuse "${path}: source is not a plain path; state left as it is"
  fi
}

# A node switched by the previous version of this program keeps its state as separate files:
# path, original, original-dns, applied and applied-dns. They become a record here, so that its
# revert still puts the original bytes back.
import_legacy_state() {
  local legacy_path
  local original_list
  local applied_list
  local kind="env-file"
  if [[ -n ${record[phase]:-} || ! -e ${STATE_DIR}/original-dns ]]; then
    return 0
  fi
  if [[ ! -e ${STATE_DIR}/applied-dns || ! -e ${STATE_DIR}/path ]]; then
    refuse "${STATE_DIR} holds an unfinished switch of an earlier nodelocaldns version;" \
      "put ${STATE_DIR}/original back by hand"
  fi
  read_file_exact "${STATE_DIR}/path" legacy_path
  read_file_exact "${STATE_DIR}/original-dns" original_list
  read_file_exact "${STATE_DIR}/applied-dns" applied_list
  local unreadable="${STATE_DIR}: state of an earlier nodelocaldns version is not readable"
  unreadable+="; left as it is"
  if [[ ! ${legacy_path} =~ ${RECORD_PATTERNS[source]} ]]; then
    refuse "${unreadable}"
  fi
  canonical_ip_list "${original_list}" || refuse "${unreadable}"
  original_list=${canonical_list}
  canonical_ip_list "${applied_list}" || refuse "${unreadable}"
  applied_list=${canonical_list}
  if [[ ${legacy_path} =~ \.(ya?ml|json)$ ]]; then
    kind="config-file"
  fi
  record=([format]=${RECORD_FORMAT} [node]=${NODE_NAME} [phase]=switched [source]=${legacy_path}
    [source_kind]=${kind} [original_value]=${original_list} [original_exists]=yes
    [applied_value]=${applied_list} [daemon_reload]=no)
  save_record
  rm -f -- "${STATE_DIR}/path" "${STATE_DIR}/original-dns" "${STATE_DIR}/applied-dns"
  log "imported the state an earlier nodelocaldns version left in ${STATE_DIR}"
}

# Writes the record from key=value arguments, atomically.
write_record() {
  local text=
  local entry
  for entry in "$@"; do
    text+=${entry}$'\n'
  done
  write_file_atomic "${STATE_DIR}/record" "${text}" "" 0600
}

# Saves bytes under STATE_DIR ($1: the name, $2: the bytes).
save_state_file() {
  write_file_atomic "${STATE_DIR}/$1" "$2" "" 0600
}

# Reads bytes saved under STATE_DIR into the variable named $2.
load_state_file() {
  read_file_exact "${STATE_DIR}/$1" "$2"
}

# A runnable copy of this program, made before anything runs (build_program_copy): every value
# and global as it was at the start (declare -p), every function (declare -f), and the call to
# main. save_program_copy puts it in STATE_DIR, where the revert guard runs it on `pulumi destroy`:
# a switch that Pulumi never recorded (an interrupted `pulumi up`) is still reverted before the
# cache goes away, by the same code that made it.
program_copy=
build_program_copy() {
  local name
  local -a names=()
  while IFS= read -r name; do
    if [[ ${name} != bash_variables_at_start &&
      $'\n'${bash_variables_at_start}$'\n' != *$'\n'${name}$'\n'* ]]; then
      names+=("${name}")
    fi
  done < <(compgen -v)
  program_copy='#!/usr/bin/env bash'$'\n'
  program_copy+="# nodelocaldns node program for node ${NODE_NAME}, saved by its last switch."$'\n'
  program_copy+='# The revert guard runs it: bash program delete (also: bash program check).'$'\n'
  # shellcheck disable=SC2016 # a line of the copy, not expanded here
  program_copy+='bash_variables_at_start=$(compgen -v)'$'\n'
  program_copy+=$(declare -p "${names[@]}")$'\n'
  program_copy+=$(declare -f)$'\n'
  program_copy+='main "$@"'$'\n'
}

save_program_copy() {
  write_file_atomic "${STATE_DIR}/program" "${program_copy}" "" 0700
}

# Removes every state file and, if that leaves it empty, the directory (never `rm -r` on a
# configurable path). The lock file goes last; take_lock copes with that.
clear_state() {
  local name
  for name in "${STATE_FILES[@]}"; do
    rm -f -- "${STATE_DIR:?}/${name}"
  done
  rm -f -- "${STATE_DIR:?}/lock"
  if rmdir -- "${STATE_DIR}" 2>/dev/null; then
    log "removed ${STATE_DIR}"
  else
    log "kept ${STATE_DIR}: it holds files this program did not write"
  fi
  flush_to_disk "${STATE_DIR%/*}"
}
