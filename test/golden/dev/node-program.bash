# nodelocaldns node program, delivered to every node through the ConfigMap
# node-local-dns-node-program. It holds no node's values and does nothing by itself:
# each node's switch launcher sets them, checks this text's sha256 and loads it.
# Source: components/nodeProgram/*.bash in the nodelocaldns project.
: "${bash_variables_at_start?set by the launcher}"
: "${NODE_NAME?set by the launcher}"
: "${LOCAL_DNS_IP?set by the launcher}"
: "${CLUSTER_DNS_IP?set by the launcher}"
: "${FALLBACK_TO_KUBE_DNS?set by the launcher}"
: "${CLUSTER_DOMAIN?set by the launcher}"
: "${STATE_DIR?set by the launcher}"
: "${KUBELET_PATH?set by the launcher}"
: "${KUBELET_FORMAT?set by the launcher}"
: "${READY_TIMEOUT_SECONDS?set by the launcher}"
: "${KUBELET_TIMEOUT_SECONDS?set by the launcher}"
: "${LOCK_TIMEOUT_SECONDS?set by the launcher}"
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

# ------------------------------------------------------------------------------------------------
# IP addresses and lists of them
#
# Kubelet's cluster DNS is a list of IPs. The program compares lists in canonical form (IPv6 in
# lower case, without leading zeros, the longest run of zero groups written "::"), the form `ip
# addr` prints and the stack's config parser stores, so that a value written differently in a
# kubelet file still compares equal. Lists are kept as comma-joined strings.
# ------------------------------------------------------------------------------------------------

readonly IPV4_OCTET='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
readonly IPV4_PATTERN="^(${IPV4_OCTET}\\.){3}${IPV4_OCTET}\$"
readonly HEX_GROUP_PATTERN='^[0-9A-Fa-f]{1,4}$'

# The results of canonical_ip and canonical_ip_list. They set these instead of printing, so that
# callers need no $( ): every command substitution forks the shell, and a switch runs these often.
canonical_address=
canonical_list=

# Sets canonical_address to the canonical form of an IPv4 or IPv6 address; fails for anything else.
canonical_ip() {
  local address=$1
  canonical_address=
  if [[ ${address} =~ ${IPV4_PATTERN} ]]; then
    canonical_address=${address}
    return 0
  fi
  if [[ ${address} != *:* || ${address} == *:::* || ${address} == *::*::* ]]; then
    return 1
  fi
  # Split around "::" and fill the gap with zero groups, to get all eight groups.
  local head=${address%%::*}
  local tail=
  local -a groups=()
  local -a tail_groups=()
  if [[ ${address} == *::* ]]; then
    tail=${address#*::}
    IFS=: read -r -a groups <<<"${head}"
    IFS=: read -r -a tail_groups <<<"${tail}"
    if ((${#groups[@]} + ${#tail_groups[@]} > 7)); then
      return 1
    fi
    while ((${#groups[@]} + ${#tail_groups[@]} < 8)); do
      groups+=(0)
    done
    groups+=("${tail_groups[@]}")
  else
    IFS=: read -r -a groups <<<"${address}"
  fi
  if ((${#groups[@]} != 8)); then
    return 1
  fi
  local i
  for ((i = 0; i < 8; i++)); do
    [[ ${groups[i]} =~ ${HEX_GROUP_PATTERN} ]] || return 1
    printf -v "groups[i]" '%x' "$((16#${groups[i]}))"
  done
  # The first longest run of two or more zero groups becomes "::" (RFC 5952).
  local best_start=-1
  local best_length=1
  local run_start=-1
  for ((i = 0; i <= 8; i++)); do
    if ((i < 8)) && [[ ${groups[i]} == 0 ]]; then
      if ((run_start < 0)); then
        run_start=${i}
      fi
    elif ((run_start >= 0)); then
      if ((i - run_start > best_length)); then
        best_start=${run_start}
        best_length=$((i - run_start))
      fi
      run_start=-1
    fi
  done
  # "${groups[*]}" joins with the first character of IFS.
  local IFS=:
  if ((best_start < 0)); then
    canonical_address=${groups[*]}
    return 0
  fi
  canonical_address=${groups[*]:0:best_start}::${groups[*]:best_start+best_length}
}

# True when addresses $1 and $2 are of one family (both IPv4 or both IPv6).
same_ip_family() {
  if [[ $1 == *:* ]]; then
    [[ $2 == *:* ]]
  else
    [[ $2 != *:* ]]
  fi
}

# Sets canonical_list to the comma-separated list $1 with each IP in canonical form; fails if an
# entry is not an IP.
canonical_ip_list() {
  local list=$1
  local -a entries=()
  local entry
  local out=
  canonical_list=
  IFS=, read -r -a entries <<<"${list}"
  if [[ -z ${list} || ${list} == *, || ${#entries[@]} -eq 0 ]]; then
    return 1
  fi
  for entry in "${entries[@]}"; do
    canonical_ip "${entry}" || return 1
    out+=${out:+,}${canonical_address}
  done
  canonical_list=${out}
}

# True when the comma-separated list $1 holds the address $2.
list_contains() {
  [[ ,$1, == *,"$2",* ]]
}

# ------------------------------------------------------------------------------------------------
# Files: read exactly, replace atomically, flush to disk
#
# A kubelet file is rewritten byte for byte: every byte but the cluster DNS value stays (comments,
# other settings, CRLF line ends, a missing final newline). It is replaced by a temporary file in
# the same directory (so the rename is atomic), with the old file's owner, mode, ACLs and SELinux
# label, flushed to disk before the rename, and the directory flushed after it. A kill at any
# moment leaves either the old or the new file, and at worst a temporary file that the next run
# removes (remove_stale_temp_files).
#
# The directory's flush is deferred to the next flush of this run, one `sync` call for both (each
# call is a process; a switch writes seven files): a rename is on disk before the next file is
# renamed, and every rename is on disk before kubelet restarts, systemd reloads, or the run ends.
# ------------------------------------------------------------------------------------------------

# Kubelet's own files are a few KiB; anything much larger is not one of them.
readonly MAX_FILE_BYTES=1048576
readonly TEMP_MARKER=.nodelocaldns-tmp.

# The temporary file being written, removed on exit if it is still there.
temp_file=

# Directories with a rename or a removal not yet flushed to disk (see above).
unflushed_directories=()

# Reads the exact bytes of file $1 into the variable named $2, without a process of its own (a
# switch reads a dozen files). `read -d ''` reads up to a NUL byte, at most MAX_FILE_BYTES + 1
# bytes, and succeeds only if it stopped there, at a NUL or at the limit; it fails at the end of
# the file, which is the one way the whole file was read. bash cannot hold NUL bytes, so a file
# that has any is refused. The file is opened first, on its own: a file that cannot be opened must
# stop the run, not read as empty. (The locals have names no caller uses: printf -v would set a
# local of the same name instead.)
read_file_exact() {
  local read_path=$1
  local read_into=$2
  local read_bytes=
  local read_fd
  if [[ -L ${read_path} || ! -f ${read_path} ]]; then
    refuse "${read_path}: not a regular file"
  fi
  # The group silences bash's own message; the fd stays open past it.
  { exec {read_fd}<"${read_path}"; } 2>/dev/null || refuse "${read_path}: cannot be opened"
  if IFS= read -r -d '' -n $((MAX_FILE_BYTES + 1)) read_bytes <&"${read_fd}"; then
    exec {read_fd}<&-
    if ((${#read_bytes} > MAX_FILE_BYTES)); then
      refuse "${read_path}: more than ${MAX_FILE_BYTES} bytes, too large for a kubelet file"
    fi
    refuse "${read_path}: holds NUL bytes, cannot rewrite it byte for byte"
  fi
  exec {read_fd}<&-
  printf -v "${read_into}" '%s' "${read_bytes}"
}

# Flushes files or directories to disk, with the directories whose flush is pending. coreutils
# before 8.24 ignore the arguments and flush everything, which is slower but just as safe.
flush_to_disk() {
  sync -- "$@" "${unflushed_directories[@]}" 2>/dev/null || sync
  unflushed_directories=()
}

# Flushes the directories whose flush is pending, if any: before anything outside this program
# acts on a changed file (kubelet's restart, daemon-reload), and at the end of the run.
flush_unflushed_directories() {
  if ((${#unflushed_directories[@]} > 0)); then
    flush_to_disk
  fi
}

# Creates an empty file named like mktemp would (.<name>.nodelocaldns-tmp.<6 random characters>)
# in directory $1 and sets temp_file to it; bash makes it, without a process of its own. noclobber
# (set -C) makes bash create it with O_EXCL, so an existing regular file is never reused; a name
# taken by anything else is skipped. The mode is 0600 (main's umask 077), like mktemp's.
create_temp_file() {
  local directory=$1
  local name=$2
  local attempt
  local suffix
  local candidate
  for ((attempt = 0; attempt < 20; attempt++)); do
    printf -v suffix '%06x' $(((RANDOM << 15 | RANDOM) & 16#ffffff))
    candidate=${directory}/.${name}${TEMP_MARKER}${suffix}
    if [[ -e ${candidate} || -L ${candidate} ]]; then
      continue
    fi
    set -C
    if { : >"${candidate}"; } 2>/dev/null; then
      set +C
      temp_file=${candidate}
      return 0
    fi
    set +C
  done
  fail "cannot create a temporary file in ${directory}"
}

# Writes content $2 to path $1 atomically. $3 is the file whose owner, mode and labels the new
# file gets (default: $1 itself when it exists; "" for none: the state files, which are root's
# own); $4 the mode of a file without one.
write_file_atomic() {
  local path=$1
  local content=$2
  local reference=${3-$1}
  local new_mode=${4:-0644}
  local directory=${path%/*}
  local name=${path##*/}
  remove_stale_temp_files "${directory:-/}"
  create_temp_file "${directory:-/}" "${name}"
  printf '%s' "${content}" >"${temp_file}"
  if [[ -f ${reference} && ! -L ${reference} ]]; then
    # Mode, owner, ACLs, xattrs and SELinux label; failing to copy labels is not an error.
    cp --attributes-only --preserve=all -- "${reference}" "${temp_file}"
  elif [[ ${new_mode} != 0600 ]]; then
    # create_temp_file made it with mode 0600, owned by root.
    chmod "${new_mode}" -- "${temp_file}"
  fi
  flush_to_disk "${temp_file}"
  mv -fT -- "${temp_file}" "${path}"
  temp_file=
  unflushed_directories+=("${directory:-/}")
}

# Removes a file; its directory is flushed with the next flush (see above).
remove_file_durably() {
  local path=$1
  local directory=${path%/*}
  rm -f -- "${path}"
  unflushed_directories+=("${directory:-/}")
}

# Removes temporary files that a killed run left in directory $1 (only our own, by their name).
remove_stale_temp_files() {
  local directory=$1
  local stale
  for stale in "${directory}"/.*"${TEMP_MARKER}"??????; do
    if [[ -f ${stale} && ! -L ${stale} ]]; then
      rm -f -- "${stale}"
      log "removed ${stale}, left by an interrupted run"
    fi
  done
}

# The exit trap: never leave our temporary file behind.
remove_temp_file() {
  if [[ -n ${temp_file} ]]; then
    rm -f -- "${temp_file}"
  fi
}

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

# ------------------------------------------------------------------------------------------------
# kubelet under systemd: its state, its process, restarting it and knowing it came back
#
# Every call to systemctl is bounded (`timeout -k`): a hung systemd or D-Bus must end the run with
# an error, never hang it.
# ------------------------------------------------------------------------------------------------

readonly KUBELET_UNIT=kubelet.service
readonly DEFAULT_HEALTHZ_PORT=10248
readonly DEFAULT_HEALTHZ_ADDRESS=127.0.0.1

# The unit's properties as read last, by name (see read_unit_properties).
declare -A unit=()
# The running kubelet's arguments (argv[1:] of systemd's MainPID), after read_kubelet_process.
kubelet_pid=0
kubelet_args=()

# Reads the named properties of the kubelet unit into `unit` (systemctl prints one Name=value line
# per value; a property with several values, such as EnvironmentFiles, gets them newline-joined).
read_unit_properties() {
  local output
  local line
  local name
  local -a options=()
  for name in "$@"; do
    options+=("--property=${name}")
    unit[${name}]=
  done
  if ! output=$(timeout -k 2 15 systemctl show "${KUBELET_UNIT}" "${options[@]}" 2>&1); then
    fail "systemctl show ${KUBELET_UNIT} failed: ${output:0:200}"
  fi
  while IFS= read -r line; do
    name=${line%%=*}
    if [[ -n ${unit[${name}]+set} ]]; then
      unit[${name}]+=${unit[${name}]:+$'\n'}${line#*=}
    fi
  done <<<"${output}"
}

# What read_kubelet_process reads from systemd, in one `systemctl show` (each call costs tens of
# milliseconds): the process, its state, and the files the unit is made of, which the detection
# of kubelet's cluster DNS source reads next.
readonly KUBELET_UNIT_PROPERTIES=(MainPID ActiveState SubState NRestarts FragmentPath DropInPaths
  EnvironmentFiles)

# Reads KUBELET_UNIT_PROPERTIES into `unit`, then the running kubelet (read_kubelet_argv).
read_kubelet_process() {
  read_unit_properties "${KUBELET_UNIT_PROPERTIES[@]}"
  read_kubelet_argv
}

# Sets kubelet_pid and kubelet_args from the kubelet whose pid `unit` holds; kubelet_pid=0 when
# none runs. The arguments are only trusted when the process is kubelet itself (not a wrapper
# script): otherwise the run is refused, or with $1 = "starting", 1 is returned (a process that
# systemd just forked may not have exec'd kubelet yet).
read_kubelet_argv() {
  local starting=${1:-}
  local arg
  local -a argv=()
  kubelet_pid=${unit[MainPID]:-0}
  kubelet_args=()
  if [[ ! ${kubelet_pid} =~ ^[0-9]+$ ]]; then
    fail "systemctl reports MainPID=${kubelet_pid:0:40} for ${KUBELET_UNIT}"
  fi
  if ((kubelet_pid == 0)); then
    return 0
  fi
  # The process may exit between systemctl's answer and this read: then argv stays empty and
  # the checks below say so (2>/dev/null first, so that it also silences the failed redirection).
  while IFS= read -r -d '' arg; do
    argv+=("${arg}")
  done 2>/dev/null <"/proc/${kubelet_pid}/cmdline" || true
  # hyperkube bundles kubelet as its first argument.
  if [[ ${argv[0]-} =~ (^|/)hyperkube$ && ${argv[1]-} == kubelet ]]; then
    argv=("${argv[@]:1}")
  fi
  if [[ ${#argv[@]} -eq 0 || ${argv[0]##*/} != kubelet ]] && [[ ${starting} == starting ]]; then
    return 1
  fi
  if [[ ${#argv[@]} -eq 0 ]]; then
    fail "kubelet (pid ${kubelet_pid}) exited while its command line was read; try again"
  fi
  if [[ ${argv[0]##*/} != kubelet ]]; then
    refuse "kubelet.service runs ${argv[0]:0:80} (pid ${kubelet_pid}), not kubelet itself:" \
      "its flags cannot be read"
  fi
  kubelet_args=("${argv[@]:1}")
}

# Tells systemd to re-read unit files (needed after a unit file or drop-in changed).
daemon_reload() {
  flush_unflushed_directories
  log "systemctl daemon-reload (a unit file changed)"
  if ! timeout -k 5 "${KUBELET_TIMEOUT_SECONDS}" systemctl daemon-reload; then
    log "systemctl daemon-reload failed or timed out"
    return 1
  fi
}

# Answers whether kubelet's /healthz says "ok" (HTTP over bash's /dev/tcp: no curl on nodes).
kubelet_healthz_ok() {
  local address=$1
  local port=$2
  local reply
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  reply=$(timeout -k 1 2 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
    cat <&3' _ "${address}" "${port}" 2>/dev/null) || return 1
  [[ ${reply} == HTTP/1.[01]\ 200\ * && ${reply} == *$'\r\n\r\n'ok ]]
}

# Restarts kubelet and waits, up to KUBELET_TIMEOUT_SECONDS, until it is back and healthy:
#   - systemd's MainPID is a new process (a restart that never happened is not "back");
#   - systemd has not restarted it on its own since (NRestarts unchanged: no crash loop);
#   - its /healthz answers "ok" (healthzPort 0 disables it: then systemd must report it active).
# The health endpoint is the one the new kubelet was started with (flags and config files).
restart_kubelet_and_wait() {
  local old_pid=$1
  local deadline=$((SECONDS + KUBELET_TIMEOUT_SECONDS))
  local restarts=
  local first_look=yes
  # Pauses between looks: each look costs a `systemctl show` call, a healthz request and about
  # 15 ms of the node's CPU, while kubelet itself is starting there. A kubelet healthy at once
  # (within 50 ms) is seen at the second look; a slow one (seconds) at most 0.25 s late, with
  # four looks a second (twenty a second cost it 0.18 s of CPU per second of waiting).
  local -a pauses=(0.05 0.1 0.2)
  local pause=0
  local why=
  flush_unflushed_directories
  log "restarting kubelet"
  if ! timeout -k 5 "${KUBELET_TIMEOUT_SECONDS}" systemctl restart "${KUBELET_UNIT}"; then
    log "systemctl restart ${KUBELET_UNIT} failed or timed out; checking whether kubelet came back"
  fi
  while :; do
    read_unit_properties "${KUBELET_UNIT_PROPERTIES[@]}"
    # NRestarts counts systemd's own restarts (a crash loop); the first look after ours is the base.
    if [[ ${first_look} == yes ]]; then
      restarts=${unit[NRestarts]}
      first_look=no
    elif [[ -n ${restarts} && ${unit[NRestarts]} != "${restarts}" ]]; then
      why="kubelet crashed and systemd restarted it (NRestarts ${restarts} -> ${unit[NRestarts]})"
      break
    fi
    if [[ ${unit[MainPID]} == 0 || ${unit[MainPID]} == "${old_pid}" ]]; then
      why="no new kubelet process yet"
    elif ! read_kubelet_argv starting; then
      why="the new process (pid ${unit[MainPID]}) is not kubelet (yet)"
    else
      read_kubelet_health_endpoint
      if ((healthz_port == 0)); then
        if [[ ${unit[ActiveState]} == active ]]; then
          log "kubelet back (pid ${kubelet_pid}, active; healthz disabled)"
          return 0
        fi
        why="kubelet is ${unit[ActiveState]}"
      elif kubelet_healthz_ok "${healthz_address}" "${healthz_port}"; then
        log "kubelet back (pid ${kubelet_pid}), healthz ok"
        return 0
      else
        why="kubelet (pid ${kubelet_pid}) does not answer ok"
        why+=" on ${healthz_address}:${healthz_port}/healthz"
      fi
    fi
    if ((SECONDS >= deadline)); then
      break
    fi
    if ((pause < ${#pauses[@]})); then
      sleep "${pauses[pause]}"
      pause=$((pause + 1))
    else
      sleep 0.25
    fi
  done
  log "kubelet not healthy after ${KUBELET_TIMEOUT_SECONDS}s: ${why}"
  return 1
}

# ------------------------------------------------------------------------------------------------
# Where the running kubelet takes its cluster DNS from
#
# Kubelet's precedence, highest first:
#   1. a --cluster-dns flag on its command line; systemd builds that line from the unit's
#      ExecStart, Environment= lines and EnvironmentFile= files (read at each start);
#   2. the last KubeletConfiguration drop-in (*.conf, by name) in --config-dir that sets clusterDNS;
#   3. the --config file.
# detect_dns_source reads the running kubelet's command line and systemd's view of its unit,
# and sets:
#   kubelet_running  yes | no
#   effective_list   the cluster DNS kubelet uses ("" when it has none)
#   source_path      the file to edit (for a dropin: the file to write)
#   source_kind      env-file | unit-file | config-file | dropin (our own drop-in in --config-dir)
#   source_exists    yes | no (our drop-in, not written yet)
#   source_note      how kubelet gets the value, for messages
# When kubelet is not running, the well-known files stand in for its command line.
# ------------------------------------------------------------------------------------------------

# Our own drop-in, when kubelet has --config-dir: sorts after the usual 00-..50- names, so it wins
# over them; revert deletes it, so it never conflicts with anyone's edits.
readonly DROPIN_NAME=99-nodelocaldns.conf
# When kubelet is not running: the files where kubelet's cluster DNS usually lives, and their kind.
readonly WELL_KNOWN_SOURCES=(
  /etc/kubernetes/kubelet:env-file
  /etc/default/kubelet:env-file
  /etc/sysconfig/kubelet:env-file
  /var/lib/kubelet/kubeadm-flags.env:env-file
  /var/lib/kubelet/config.yaml:config-file
  /etc/kubernetes/kubelet-config.yaml:config-file
  /etc/kubernetes/kubelet/kubelet-config.json:config-file
)

kubelet_running=no
effective_list=
source_path=
source_kind=
source_exists=yes
source_note=
healthz_address=${DEFAULT_HEALTHZ_ADDRESS}
healthz_port=${DEFAULT_HEALTHZ_PORT}

# Sets flag_value to the one value of kubelet flag --$1 ("" when absent; --flag=value and
# --flag value forms); two stop the run.
flag_value=
read_flag() {
  local flag=--$1
  local i
  local -a values=()
  for ((i = 0; i < ${#kubelet_args[@]}; i++)); do
    case ${kubelet_args[i]} in
      "${flag}="*) values+=("${kubelet_args[i]#*=}") ;;
      "${flag}")
        values+=("${kubelet_args[i + 1]-}")
        i=$((i + 1))
        ;;
    esac
  done
  if ((${#values[@]} > 1)); then
    refuse "kubelet has --$1 ${#values[@]} times"
  fi
  flag_value=${values[0]-}
  if [[ -n ${flag_value} && ${flag_value} != /* && $1 == config* ]]; then
    refuse "kubelet's --$1 ${flag_value:0:80} is not an absolute path"
  fi
}

# Prints the files of kubelet's --config-dir $1 that it reads: *.conf, sorted by name.
config_dir_files() {
  local file
  for file in "$1"/*.conf; do
    if [[ -e ${file} ]]; then
      printf '%s\n' "${file}"
    fi
  done
}

# $1 = just-read: systemd's view of the unit and kubelet's process were read a moment ago, by the
# look that found the restarted kubelet healthy (restart_kubelet_and_wait); they are used as they
# are instead of asking systemd again (a `systemctl show` costs tens of milliseconds).
detect_dns_source() {
  local process=${1:-}
  effective_list=
  source_path=
  source_kind=
  source_exists=yes
  source_note=
  if [[ ${process} != just-read ]]; then
    read_kubelet_process
  fi
  if ((kubelet_pid == 0)); then
    kubelet_running=no
    detect_from_well_known_files
  else
    kubelet_running=yes
    read_flag cluster-dns
    if [[ -n ${flag_value} ]]; then
      canonical_ip_list "${flag_value}" ||
        refuse "kubelet runs with --cluster-dns=${flag_value:0:60}, which this program cannot read"
      effective_list=${canonical_list}
      find_flag_file
    else
      find_config_source
    fi
  fi
  apply_configured_pins
}

# The --cluster-dns flag comes from the unit: a unit file or drop-in, or one of its
# EnvironmentFiles. Exactly one of them may mention it, with the value kubelet runs with. (The
# unit's files as read_kubelet_process read them, just before.)
find_flag_file() {
  local -a candidates=()
  local entry
  local path
  local kind
  local content
  local found=
  local files_with_setting=
  for path in ${unit[FragmentPath]} ${unit[DropInPaths]}; do
    candidates+=("${path}:unit-file")
  done
  while IFS= read -r entry; do
    if [[ -n ${entry} ]]; then
      candidates+=("${entry%% (ignore_errors=*}:env-file")
    fi
  done <<<"${unit[EnvironmentFiles]}"
  for entry in "${candidates[@]}"; do
    path=${entry%:*}
    kind=${entry##*:}
    if [[ ! -e ${path} && ! -L ${path} ]]; then
      continue
    fi
    read_file_exact "${path}" content
    locate_setting "${content}" "${kind}" "${path}"
    if ((setting_count > 0)); then
      files_with_setting+=" ${path}"
      if ((setting_count == 1)) && [[ ${setting_list} == "${effective_list}" ]]; then
        found=${entry}
      fi
    fi
  done
  if [[ -z ${files_with_setting} ]]; then
    refuse "kubelet runs with --cluster-dns=${effective_list}, but no unit file or" \
      "EnvironmentFile of ${KUBELET_UNIT} sets it"
  fi
  if [[ -z ${found} || ${files_with_setting} == " "*" "* ]]; then
    refuse "kubelet runs with --cluster-dns=${effective_list};" \
      "--cluster-dns is set in:${files_with_setting};" \
      "cannot tell which one to edit (set kubelet.path)"
  fi
  source_path=${found%:*}
  source_kind=${found##*:}
  source_note="--cluster-dns flag from ${source_path} (${source_kind})"
}

# No flag: the config file and the --config-dir drop-ins, the last setting winning.
find_config_source() {
  local config
  local dir
  local file
  local content
  local from=
  local from_list=
  read_flag config
  config=${flag_value}
  read_flag config-dir
  dir=${flag_value}
  if [[ -n ${config} && -e ${config} ]]; then
    read_file_exact "${config}" content
    locate_setting "${content}" config-file "${config}"
    if ((setting_count > 1)); then
      refuse "${config}: more than one clusterDNS setting"
    fi
    if ((setting_count == 1)); then
      from=${config}
      from_list=${setting_list}
    fi
  fi
  if [[ -n ${dir} ]]; then
    while IFS= read -r file; do
      read_file_exact "${file}" content
      locate_setting "${content}" config-file "${file}"
      if ((setting_count > 1)); then
        refuse "${file}: more than one clusterDNS setting"
      fi
      if ((setting_count == 1)); then
        from=${file}
        from_list=${setting_list}
      fi
    done < <(config_dir_files "${dir}")
  fi
  effective_list=${from_list}
  if [[ -z ${from} ]]; then
    source_note="no --cluster-dns flag and no clusterDNS in --config ${config:-(none)}"
    source_note+=" or --config-dir ${dir:-(none)}"
    return 0
  fi
  source_note="clusterDNS in ${from}"
  source_path=${from}
  source_kind="config-file"
  # With --config-dir, our own drop-in overrides the value (unless a drop-in that sorts after it
  # sets clusterDNS: then that one is edited), and kubelet.path pins the file to edit instead.
  if [[ -n ${dir} && -z ${KUBELET_PATH} ]]; then
    local ours=${dir}/${DROPIN_NAME}
    if [[ ${from} == "${ours}" ]]; then
      source_kind=dropin
    elif [[ ${from} != "${dir}"/* || ${from##*/} < "${DROPIN_NAME}" ]]; then
      source_path=${ours}
      source_kind=dropin
      source_exists=no
      if [[ -e ${ours} || -L ${ours} ]]; then
        refuse "${ours} exists but does not set clusterDNS; remove it or set kubelet.path"
      fi
    fi
  fi
}

# kubelet is not running: the one well-known file (or kubelet.path) that sets a cluster DNS.
detect_from_well_known_files() {
  local entry
  local path
  local kind
  local content
  local found=
  local -a sources=("${WELL_KNOWN_SOURCES[@]}")
  if [[ -n ${KUBELET_PATH} ]]; then
    sources=("${KUBELET_PATH}:${PINNED_KIND}")
  fi
  for entry in "${sources[@]}"; do
    path=${entry%:*}
    kind=${entry##*:}
    if [[ ! -e ${path} && ! -L ${path} ]]; then
      continue
    fi
    read_file_exact "${path}" content
    if [[ ${kind} == auto ]]; then
      kind=env-file
      if [[ $'\n'${content} == *$'\n'clusterDNS:* || ${content} == *'"clusterDNS"'* ]]; then
        kind="config-file"
      fi
    fi
    locate_setting "${content}" "${kind}" "${path}"
    if ((setting_count > 1)); then
      refuse "${path}: more than one cluster DNS setting"
    fi
    if ((setting_count == 1)); then
      if [[ -n ${found} ]]; then
        refuse "kubelet is not running and the cluster DNS is set in both ${found%:*}" \
          "and ${path}: cannot tell which one kubelet uses"
      fi
      found=${path}:${kind}
      effective_list=${setting_list}
    fi
  done
  if [[ -n ${found} ]]; then
    source_path=${found%:*}
    source_kind=${found##*:}
    source_note="kubelet not running; cluster DNS in ${source_path} (${source_kind})"
  else
    source_note="kubelet not running; no cluster DNS in the well-known files"
  fi
}

# kubelet.format as a kind of source ("auto" when not pinned).
case ${KUBELET_FORMAT} in
  config-file | env-file | unit-file) readonly PINNED_KIND=${KUBELET_FORMAT} ;;
  *) readonly PINNED_KIND=auto ;;
esac

# kubelet.path and kubelet.format, when set, must name what detection found.
apply_configured_pins() {
  local kind=${source_kind}
  if [[ -z ${source_path} ]]; then
    return 0
  fi
  if [[ -n ${KUBELET_PATH} && ${source_path} != "${KUBELET_PATH}" ]]; then
    refuse "kubelet takes its cluster DNS from ${source_path} (${source_note})," \
      "not from kubelet.path ${KUBELET_PATH}"
  fi
  if [[ ${kind} == dropin ]]; then
    kind="config-file"
  fi
  if [[ ${PINNED_KIND} != auto && ${kind} != "${PINNED_KIND}" ]]; then
    refuse "kubelet's cluster DNS is in ${source_path} (${source_kind})," \
      "not a ${KUBELET_FORMAT} as kubelet.format says"
  fi
}

# Prints top-level scalar $2 of KubeletConfiguration text $1 (YAML or JSON), if set.
config_scalar() {
  local content=$1
  local key=$2
  local yaml="(^|"$'\n'")${key}:[[:space:]]*[\"']?([^\"'#[:space:]]*)"
  local json="\"${key}\"[[:space:]]*:[[:space:]]*\"?([^\",}[:space:]]*)"
  if [[ ${content} =~ ^[[:space:]]*\{ ]]; then
    if [[ ${content} =~ ${json} ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
    fi
  elif [[ ${content} =~ ${yaml} ]]; then
    printf '%s' "${BASH_REMATCH[2]}"
  fi
}

# Sets healthz_address and healthz_port for the running kubelet: flags, else the last config
# drop-in or the config file that sets them, else kubelet's defaults.
read_kubelet_health_endpoint() {
  local file
  local content
  local value
  local config
  local dir
  local -a files=()
  healthz_address=${DEFAULT_HEALTHZ_ADDRESS}
  healthz_port=${DEFAULT_HEALTHZ_PORT}
  read_flag config
  config=${flag_value}
  read_flag config-dir
  dir=${flag_value}
  if [[ -n ${config} && -f ${config} ]]; then
    files+=("${config}")
  fi
  if [[ -n ${dir} ]]; then
    mapfile -t -O "${#files[@]}" files < <(config_dir_files "${dir}")
  fi
  for file in "${files[@]}"; do
    read_file_exact "${file}" content
    value=$(config_scalar "${content}" healthzPort)
    healthz_port=${value:-${healthz_port}}
    value=$(config_scalar "${content}" healthzBindAddress)
    healthz_address=${value:-${healthz_address}}
  done
  read_flag healthz-port
  healthz_port=${flag_value:-${healthz_port}}
  read_flag healthz-bind-address
  healthz_address=${flag_value:-${healthz_address}}
  if [[ ! ${healthz_port} =~ ^[0-9]{1,5}$ ]]; then
    fail "kubelet's healthzPort ${healthz_port:0:20} is not a port number"
  fi
  case ${healthz_address} in
    0.0.0.0) healthz_address=127.0.0.1 ;;
    :: | '[::]') healthz_address=::1 ;;
  esac
  if ! canonical_ip "${healthz_address}"; then
    fail "kubelet's healthzBindAddress ${healthz_address:0:60} is not an IP address"
  fi
}

# True when path $1 is a file this program could pick as kubelet's cluster DNS source now: a
# recorded path is only honoured if it is (state cannot redirect a revert to another file). Call
# it right after read_kubelet_process, whose view of the unit it uses.
is_kubelet_source_candidate() {
  local path=$1
  local entry
  local config
  local dir
  if [[ ${path} == "${KUBELET_PATH}" ]]; then
    return 0
  fi
  for entry in "${WELL_KNOWN_SOURCES[@]}"; do
    if [[ ${path} == "${entry%:*}" ]]; then
      return 0
    fi
  done
  for entry in ${unit[FragmentPath]} ${unit[DropInPaths]}; do
    if [[ ${path} == "${entry}" ]]; then
      return 0
    fi
  done
  while IFS= read -r entry; do
    if [[ ${path} == "${entry%% (ignore_errors=*}" ]]; then
      return 0
    fi
  done <<<"${unit[EnvironmentFiles]}"
  if ((kubelet_pid != 0)); then
    read_flag config
    config=${flag_value}
    read_flag config-dir
    dir=${flag_value}
    if [[ ${path} == "${config}" ]]; then
      return 0
    fi
    if [[ -n ${dir} && ${path%/*} == "${dir}" && ${path} == *.conf ]]; then
      return 0
    fi
  fi
  return 1
}

# ------------------------------------------------------------------------------------------------
# The cluster DNS setting inside one file
#
# locate_setting finds the setting in a file's bytes and sets:
#   setting_count   how many settings the file holds (a mention in a comment is not one)
#   setting_list    the IPs, canonical and comma-joined ("" for an empty list)
#   setting_start   byte offset and length of the list's text (what an edit replaces)
#   setting_length
#   setting_style   how the list is written: flag (a,b after --cluster-dns), flow ([a, b]),
#                   block (one "- a" line per IP), json (["a", "b"])
#   setting_quote   the quote around the first IP in flow and block style ("", " or ')
#   setting_indent  block style: what comes before the IP on the first item line ("  - ")
#   setting_line_end block style: what ends it (spaces, a comment, a CR)
#   setting_lead    flow and json style: the blanks before the first and after the last IP
#   setting_trail
#   entry_starts    byte offset and length of each IP as written (without quotes), so that an
#   entry_lengths   edit that keeps the number of IPs changes those bytes and nothing else
# A setting it cannot read for sure (an IP list it cannot parse, a variable, YAML it does not
# know) stops the run: guessing which value kubelet uses is not safe.
#
# Kinds of file: env-file (systemd EnvironmentFile, e.g. /etc/default/kubelet) and unit-file
# (a unit or drop-in: Environment= or ExecStart= lines) hold the --cluster-dns flag; config-file
# and dropin hold a KubeletConfiguration, in YAML or JSON, with a top-level clusterDNS list.
# ------------------------------------------------------------------------------------------------

readonly RAW_IP_LIST='^[0-9A-Fa-f.:]+(,[0-9A-Fa-f.:]+)*$'
# --cluster-dns=LIST or --cluster-dns LIST; LIST ends at a blank, a quote, a backslash or the end.
readonly FLAG_SETTING='--cluster-dns([=]|[[:space:]]+)([^[:space:]"'"'"'\\]*)'
readonly YAML_FLOW_SETTING='^(clusterDNS:[[:space:]]*\[)([^]#]*)\]'
readonly YAML_BLOCK_START='^clusterDNS:[[:space:]]*(#.*)?'$'\r''?$'
# Groups: 1 indent and dash, 2 opening quote, 3 IP, 4 closing quote, 5 the rest of the line.
readonly YAML_BLOCK_ITEM='^([[:space:]]*-[[:space:]]+)(["'"'"']?)([0-9A-Fa-f.:]+)(["'"'"']?)'\
'([[:space:]]*(#.*)?'$'\r''?)$'
readonly YAML_ANY_ITEM='^[[:space:]]*-'
readonly JSON_SETTING='^(.*"clusterDNS"[[:space:]]*:[[:space:]]*\[)([^]]*)\]'

setting_count=0
setting_list=
setting_start=0
setting_length=0
setting_style=
setting_quote=
setting_indent=
setting_line_end=
setting_lead=
setting_trail=
entry_starts=()
entry_lengths=()

# $1: the file's bytes, $2: its kind, $3: its path (for messages).
locate_setting() {
  setting_count=0
  setting_list=
  setting_start=0
  setting_length=0
  setting_style=
  setting_quote=
  setting_indent=
  setting_line_end=
  setting_lead=
  setting_trail=
  entry_starts=()
  entry_lengths=()
  case $2 in
    env-file | unit-file) locate_flag_setting "$1" "$3 ($2)" ;;
    config-file | dropin)
      if [[ $1 =~ ^[[:space:]]*\{ ]]; then
        locate_json_setting "$1" "$3 (JSON KubeletConfiguration)"
      else
        locate_yaml_setting "$1" "$3 (YAML KubeletConfiguration)"
      fi
      ;;
    *) fail "unknown kind of kubelet file: $2" ;;
  esac
}

# Turns a raw list (as written in the file) into setting_list, or stops the run.
accept_raw_list() {
  local raw=$1
  local where=$2
  if ! canonical_ip_list "${raw}"; then
    refuse "${where}: cannot read the cluster DNS value ${raw:0:60}"
  fi
  setting_list=${canonical_list}
}

# Flag style: every line but comment lines. systemd reads a line starting with # or ; as a
# comment, and nothing else: a "#" later on a line is part of the value, and kubelet gets what
# follows it as arguments. So a --cluster-dns after a "#" counts.
locate_flag_setting() {
  local content=$1
  local where=$2
  local rest=${content}
  local offset=0
  local line
  local code
  local mentions
  local before
  local separator
  local raw
  while [[ -n ${rest} ]]; do
    line=${rest%%$'\n'*}
    if [[ ${rest} == *$'\n'* ]]; then
      rest=${rest#*$'\n'}
    else
      rest=
    fi
    if [[ ${line} != *--cluster-dns* || ${line} =~ ^[[:space:]]*[\#\;] ]]; then
      offset=$((offset + ${#line} + 1))
      continue
    fi
    code=${line}
    mentions=${code//--cluster-dns/}
    mentions=$(((${#code} - ${#mentions}) / 13))
    if ((mentions > 0)) && ((setting_count == 0)); then
      if [[ ! ${code} =~ ${FLAG_SETTING} ]]; then
        refuse "${where}: cannot read its --cluster-dns setting"
      fi
      separator=${BASH_REMATCH[1]}
      raw=${BASH_REMATCH[2]}
      if [[ ! ${raw} =~ ${RAW_IP_LIST} ]]; then
        refuse "${where}: cannot read its --cluster-dns setting"
      fi
      before=${code%%--cluster-dns*}
      setting_start=$((offset + ${#before} + ${#separator} + 13))
      setting_length=${#raw}
      setting_style=flag
      accept_raw_list "${raw}" "${where}"
      record_comma_entries "${raw}" "${setting_start}"
    fi
    setting_count=$((setting_count + mentions))
    offset=$((offset + ${#line} + 1))
  done
}

# YAML: a top-level clusterDNS key, as a flow list on its line or a block list below it.
locate_yaml_setting() {
  local content=$1
  local where=$2
  local rest=${content}
  local offset=0
  local line
  local raw
  local in_block=no
  while [[ -n ${rest} ]]; do
    line=${rest%%$'\n'*}
    if [[ ${rest} == *$'\n'* ]]; then
      rest=${rest#*$'\n'}
    else
      rest=
    fi
    if [[ ${in_block} == yes ]]; then
      if [[ ${line} =~ ${YAML_BLOCK_ITEM} && ${BASH_REMATCH[2]} == "${BASH_REMATCH[4]}" ]]; then
        if [[ -z ${setting_list} ]]; then
          setting_start=${offset}
          setting_indent=${BASH_REMATCH[1]}
          setting_quote=${BASH_REMATCH[2]}
          setting_line_end=${BASH_REMATCH[5]}
        fi
        entry_starts+=($((offset + ${#BASH_REMATCH[1]} + ${#BASH_REMATCH[2]})))
        entry_lengths+=(${#BASH_REMATCH[3]})
        raw=${BASH_REMATCH[3]}
        canonical_ip "${raw}" || refuse "${where}: cannot read clusterDNS entry ${raw:0:60}"
        setting_list+=${setting_list:+,}${canonical_address}
        setting_length=$((offset + ${#line} - setting_start))
        offset=$((offset + ${#line} + 1))
        continue
      fi
      if [[ ${line} =~ ${YAML_ANY_ITEM} ]]; then
        refuse "${where}: cannot read a clusterDNS entry: ${line:0:60}"
      fi
      in_block=no
    fi
    if [[ ${line} == clusterDNS:* ]]; then
      setting_count=$((setting_count + 1))
      if [[ ${line} =~ ${YAML_FLOW_SETTING} ]]; then
        setting_style=flow
        setting_start=$((offset + ${#BASH_REMATCH[1]}))
        setting_length=${#BASH_REMATCH[2]}
        read_flow_list "${BASH_REMATCH[2]}" "${setting_start}" "${where}"
      elif [[ ${line} =~ ${YAML_BLOCK_START} ]]; then
        setting_style=block
        in_block=yes
      else
        refuse "${where}: cannot read its clusterDNS setting"
      fi
    elif yaml_code "${line}" && [[ ${yaml_code_part} == *clusterDNS* ]]; then
      refuse "${where}: clusterDNS appears where this program cannot read it: ${line:0:60}"
    fi
    offset=$((offset + ${#line} + 1))
  done
  if [[ ${setting_style} == block && -z ${setting_list} ]]; then
    refuse "${where}: clusterDNS has no entries this program can read"
  fi
}

# Sets yaml_code_part to line $1 without its YAML comment (" #..." or a whole "#" line).
yaml_code_part=
yaml_code() {
  yaml_code_part=${1%%[[:space:]]#*}
  if [[ ${yaml_code_part} =~ ^[[:space:]]*# ]]; then
    yaml_code_part=
  fi
}

# Records where each IP of a comma list $1 (as written, at byte offset $2) starts, and its length.
record_comma_entries() {
  local list=$1
  local at=$2
  local entry
  local -a entries=()
  IFS=, read -r -a entries <<<"${list}"
  for entry in "${entries[@]}"; do
    entry_starts+=("${at}")
    entry_lengths+=("${#entry}")
    at=$((at + ${#entry} + 1))
  done
}

# Reads a flow or JSON list: $1 the text between the brackets, $2 its byte offset in the file.
# Each entry may have blanks (newlines in JSON) around it and quotes.
read_flow_list() {
  local text=$1
  local at=$2
  local where=$3
  local segment
  local entry
  local lead
  local quote
  local raw=
  local -a segments=()
  if [[ -z ${text//[[:space:]]/} ]]; then
    setting_list=
    return 0
  fi
  setting_lead=${text%%[![:space:]]*}
  setting_trail=${text##*[![:space:]]}
  # (read gets the text plus the newline <<< adds, which the last entry's trimming drops.)
  IFS=, read -r -d '' -a segments <<<"${text}" || true
  for segment in "${segments[@]}"; do
    entry=${segment}
    lead=${entry%%[![:space:]]*}
    entry=${entry:${#lead}}
    entry=${entry%"${entry##*[![:space:]]}"}
    quote=${entry:0:1}
    if [[ ${quote} == [\"\'] && ${#entry} -ge 2 && ${entry} == *"${quote}" ]]; then
      entry=${entry:1:${#entry}-2}
    else
      quote=
    fi
    if [[ -z ${raw} ]]; then
      setting_quote=${quote}
    fi
    entry_starts+=($((at + ${#lead} + ${#quote})))
    entry_lengths+=("${#entry}")
    at=$((at + ${#segment} + 1))
    raw+=${raw:+,}${entry}
  done
  if [[ ! ${raw} =~ ${RAW_IP_LIST} ]]; then
    refuse "${where}: cannot read the clusterDNS list ${text:0:60}"
  fi
  accept_raw_list "${raw}" "${where}"
}

# JSON: the one "clusterDNS" key (KubeletConfiguration has no other key of that name).
locate_json_setting() {
  local content=$1
  local where=$2
  local without=${content//\"clusterDNS\"/}
  setting_count=$(((${#content} - ${#without}) / 12))
  if ((setting_count != 1)); then
    return 0
  fi
  if [[ ! ${content} =~ ${JSON_SETTING} ]]; then
    refuse "${where}: cannot read its clusterDNS setting"
  fi
  setting_style=json
  setting_start=${#BASH_REMATCH[1]}
  setting_length=${#BASH_REMATCH[2]}
  read_flow_list "${BASH_REMATCH[2]}" "${setting_start}" "${where}"
  if [[ -n ${setting_list} && ${setting_quote} != '"' ]]; then
    refuse "${where}: clusterDNS entries are not JSON strings"
  fi
}

# Prints the list $1 (comma-joined IPs) written in the style of the located setting, for an edit
# that changes the number of IPs.
render_setting_list() {
  local list=$1
  local -a entries=()
  local entry
  local out=
  local separator
  IFS=, read -r -a entries <<<"${list}"
  case ${setting_style} in
    flag)
      out=${list}
      ;;
    flow | json)
      # One entry per line stays one entry per line (a multi-line JSON list).
      separator=', '
      if [[ ${setting_lead} == *$'\n'* ]]; then
        separator=,${setting_lead}
      fi
      for entry in "${entries[@]}"; do
        out+=${out:+${separator}}${setting_quote}${entry}${setting_quote}
      done
      out=${setting_lead}${out}${setting_trail}
      ;;
    block)
      # Every item line like the first; only the first keeps its trailing comment.
      for entry in "${entries[@]}"; do
        if [[ -z ${out} ]]; then
          out=${setting_indent}${setting_quote}${entry}${setting_quote}${setting_line_end}
        else
          out+=$'\n'${setting_indent}${setting_quote}${entry}${setting_quote}
          out+=${setting_line_end##*[!$'\r']}
        fi
      done
      ;;
  esac
  printf '%s' "${out}"
}

# Sets the variable named $3 to the file content $1 with the located setting's list set to $2.
# With as many IPs as before, only the IPs that change are rewritten (quotes, comments and line
# ends of every entry stay); otherwise the list is written anew in the style of its first entry.
# (Not printed: a command substitution would drop the file's final newlines. Its locals have names
# no caller uses, as printf -v would set a local of the same name instead.)
replace_setting() {
  local edited=$1
  local edit_list=$2
  local rendered
  local i
  local start
  local end
  local -a old_entries=()
  local -a new_entries=()
  IFS=, read -r -a old_entries <<<"${setting_list}"
  IFS=, read -r -a new_entries <<<"${edit_list}"
  if [[ -n ${setting_list} && ${#old_entries[@]} -eq ${#new_entries[@]} ]]; then
    for ((i = ${#new_entries[@]} - 1; i >= 0; i--)); do
      if [[ ${new_entries[i]} != "${old_entries[i]}" ]]; then
        start=${entry_starts[i]}
        end=$((entry_starts[i] + entry_lengths[i]))
        edited=${edited:0:start}${new_entries[i]}${edited:end}
      fi
    done
    printf -v "$3" '%s' "${edited}"
    return 0
  fi
  rendered=$(render_setting_list "${edit_list}")
  printf -v "$3" '%s' "${edited:0:setting_start}${rendered}${edited:setting_start+setting_length}"
}

# ------------------------------------------------------------------------------------------------
# Is the cache ready? It answers a real DNS query.
#
# A DNS query over TCP (RFC 1035 4.2.2: a 2-byte length, then the message) to LOCAL_DNS_IP:53 for
# kubernetes.default.svc.<cluster domain>, type A. Ready means a reply with our query ID, the
# response bit set, and NOERROR or NXDOMAIN: the cache and, behind it, kube-dns answer. A port that
# accepts connections but does not speak DNS, or a SERVFAIL (kube-dns unreachable), is not ready.
# Bash and coreutils only (bash's /dev/tcp, od): nodes have no dig.
# ------------------------------------------------------------------------------------------------

# The last readiness probe's outcome, for messages.
dns_probe_result=

# Sets dns_query_format to a printf format that writes the query (with its TCP length prefix): $1
# the ID, $2 the name. (printf -v, not $( ): no process of its own.)
dns_query_format=
build_dns_query_format() {
  local id=$1
  local name=$2
  local label
  local label_length
  local question=
  local length
  local -a labels=()
  IFS=. read -r -a labels <<<"${name}"
  for label in "${labels[@]}"; do
    printf -v label_length '\\x%02x' "${#label}"
    question+=${label_length}${label}
  done
  # Root label, QTYPE A (1), QCLASS IN (1).
  question+='\x00\x00\x01\x00\x01'
  # 12 header bytes + the labels (a length byte each, plus their text) + 5 bytes above.
  length=$((12 + ${#name} + 1 + 5))
  # Header: ID, flags 0x0100 (recursion desired), QDCOUNT 1, ANCOUNT/NSCOUNT/ARCOUNT 0.
  printf -v dns_query_format \
    '\\x%02x\\x%02x\\x%02x\\x%02x\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00%s' \
    $((length >> 8)) $((length & 255)) $((id >> 8)) $((id & 255)) "${question}"
}

# Sends one query to LOCAL_DNS_IP:53 and sets dns_probe_result; true when the cache answered.
probe_cache() {
  local id=$((RANDOM))
  local name=kubernetes.default.svc.${CLUSTER_DOMAIN}
  local reply
  local -a bytes=()
  build_dns_query_format "${id}" "${name}"
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  reply=$(timeout -k 1 3 bash -c '
    exec 3<>"/dev/tcp/$1/53" || exit 1
    printf "$2" >&3
    head -c 6 <&3' _ "${LOCAL_DNS_IP}" "${dns_query_format}" 2>/dev/null | od -An -v -tu1) || true
  read -r -a bytes <<<"${reply}"
  if ((${#bytes[@]} < 6)); then
    dns_probe_result="no DNS reply from ${LOCAL_DNS_IP}:53"
    return 1
  fi
  # bytes: length (2), ID (2), flags (2): QR is the top bit of the first flag byte, RCODE the low
  # four bits of the second.
  if ((bytes[2] * 256 + bytes[3] != id || (bytes[4] & 128) == 0)); then
    dns_probe_result="${LOCAL_DNS_IP}:53 answered, but not with a DNS reply to our query"
    return 1
  fi
  case $((bytes[5] & 15)) in
    0)
      dns_probe_result="the cache answers on ${LOCAL_DNS_IP}:53 (${name}: NOERROR)"
      return 0
      ;;
    3)
      dns_probe_result="the cache answers on ${LOCAL_DNS_IP}:53 (${name}: NXDOMAIN)"
      return 0
      ;;
    *)
      dns_probe_result="the cache on ${LOCAL_DNS_IP}:53 answers with error code $((bytes[5] & 15))"
      dns_probe_result+=" (2: SERVFAIL, kube-dns unreachable?)"
      return 1
      ;;
  esac
}

# "yes" once wait_for_cache had to wait: the cache did not answer its first query.
cache_waited=no

# Waits up to READY_TIMEOUT_SECONDS for the cache, telling the client every few seconds (which
# also notices a client that went away: see ensure_client_connected).
wait_for_cache() {
  local deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
  local next_report=$((SECONDS + 5))
  while ! probe_cache; do
    cache_waited=yes
    if ((SECONDS >= deadline)); then
      refuse "the cache is not ready after ${READY_TIMEOUT_SECONDS}s: ${dns_probe_result};" \
        "kubelet left unchanged"
    fi
    if ((SECONDS >= next_report)); then
      ensure_client_connected \
        "waiting for the cache: ${dns_probe_result} ($((deadline - SECONDS))s left)"
      next_report=$((SECONDS + 5))
    fi
    sleep 1
  done
  log "${dns_probe_result}"
}

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

# ------------------------------------------------------------------------------------------------
# The actions: create and update switch kubelet to the cache, delete reverts it, check only looks
# ------------------------------------------------------------------------------------------------

# Sets intended_list to the cluster DNS kubelet gets when its original list is $1: the kube-dns
# entry replaced by the cache's address, or with fallbackToKubeDns by the cache's address and then
# kube-dns, which pods ask when the cache does not answer. On a dual-stack list the entry of the
# other family stays. (These helpers set a variable rather than print: $( ) would fork the shell.)
intended_list=
intended_list_for() {
  local original=$1
  local entry
  local out=
  local -a entries=()
  IFS=, read -r -a entries <<<"${original}"
  for entry in "${entries[@]}"; do
    if [[ ${entry} == "${CLUSTER_DNS_IP}" ]]; then
      entry=${LOCAL_DNS_IP}
      if [[ ${FALLBACK_TO_KUBE_DNS} == yes ]]; then
        entry+=,${CLUSTER_DNS_IP}
      fi
    fi
    out+=${out:+,}${entry}
  done
  intended_list=${out}
}

# kubelet gives pods at most 3 nameservers (glibc's MAXNS) and drops the rest with only an event,
# so a longer list would silently lose its last entries (the fallback among them).
readonly MAX_NAMESERVERS=3
refuse_long_list() {
  local list=$1
  local -a entries=()
  IFS=, read -r -a entries <<<"${list}"
  if ((${#entries[@]} > MAX_NAMESERVERS)); then
    refuse "the switched cluster DNS ${list} would hold ${#entries[@]} addresses;" \
      "kubelet gives pods only the first ${MAX_NAMESERVERS}"
  fi
}

# Sets before_switch_list to the list kubelet had before a switch that left list $1: the cache's
# address (and the kube-dns entry right after it, a fallback) back to kube-dns.
before_switch_list=
original_list_for() {
  local original=,$1,
  original=${original//,${LOCAL_DNS_IP},${CLUSTER_DNS_IP},/,${CLUSTER_DNS_IP},}
  original=${original//,${LOCAL_DNS_IP},/,${CLUSTER_DNS_IP},}
  original=${original#,}
  before_switch_list=${original%,}
}

# Our drop-in for kubelet's --config-dir, holding only the cluster DNS ($1, comma-joined).
dropin_content() {
  local list=$1
  local entry
  local text
  text="# Written by nodelocaldns for node ${NODE_NAME}: kubelet's cluster DNS is the"$'\n'
  text+="# node-local DNS cache. Removed by its revert (pulumi destroy). Do not edit."$'\n'
  text+='apiVersion: kubelet.config.k8s.io/v1beta1'$'\n'
  text+='kind: KubeletConfiguration'$'\n'
  text+='clusterDNS:'$'\n'
  for entry in ${list//,/ }; do
    text+="- ${entry}"$'\n'
  done
  printf '%s' "${text}"
}

# Sets new_content to the source file with its cluster DNS set to $1 (for our drop-in: the whole
# file), and checks that reading it back gives exactly that value.
new_content=
build_new_content() {
  local list=$1
  local content
  if [[ ${source_kind} == dropin ]]; then
    new_content=$(dropin_content "${list}")$'\n'
  else
    read_file_exact "${source_path}" content
    locate_setting "${content}" "${source_kind}" "${source_path}"
    replace_setting "${content}" "${list}" new_content
  fi
  locate_setting "${new_content}" "${source_kind}" "${source_path}"
  if ((setting_count != 1)) || [[ ${setting_list} != "${list}" ]]; then
    fail "internal error: the rewritten ${source_path} reads back as" \
      "${setting_list:-nothing}, not ${list}"
  fi
}

# create and update: the same idempotent step.
switch_node() {
  local intended
  detect_dns_source
  if [[ ${kubelet_running} != yes ]]; then
    refuse "kubelet is not running (${unit[ActiveState]}/${unit[SubState]});" \
      "start it or fix it first"
  fi
  if [[ -z ${effective_list} ]]; then
    refuse "kubelet has no cluster DNS: ${source_note}"
  fi
  log "kubelet (pid ${kubelet_pid}) uses cluster DNS ${effective_list}: ${source_note}"
  if [[ -n ${record[phase]:-} ]]; then
    switch_recorded_node
    return 0
  fi
  # The cache's address first: a list switched with a fallback holds kube-dns too.
  if list_contains "${effective_list}" "${LOCAL_DNS_IP}"; then
    adopt_switched_node
  elif list_contains "${effective_list}" "${CLUSTER_DNS_IP}"; then
    switch_fresh_node
  else
    refuse "kubelet's cluster DNS ${effective_list} does not hold clusterDnsIp" \
      "${CLUSTER_DNS_IP}, which the cache forwards to"
  fi
}

# A node with a record: already switched, switched to an older address, or put back behind our back.
switch_recorded_node() {
  local intended
  if [[ ${record[node]} != "${NODE_NAME}" ]]; then
    refuse "this machine is switched as node ${record[node]}; is it listed twice in the stack?"
  fi
  if [[ ${source_path} != "${record[source]}" ]]; then
    refuse "kubelet takes its cluster DNS from ${source_path} now, but the switch recorded" \
      "${record[source]}; revert it first"
  fi
  intended_list_for "${record[original_value]}"
  intended=${intended_list}
  if [[ ${effective_list} == "${intended}" ]]; then
    save_program_copy
    log "already switched: kubelet uses ${intended}; nothing to do, kubelet not restarted"
  elif [[ ${effective_list} == "${record[applied_value]}" ]]; then
    refuse_long_list "${intended}"
    log "switched to ${record[applied_value]} earlier; now switching to ${intended}"
    wait_for_cache
    build_new_content "${intended}"
    save_program_copy
    begin_step update new_content "${intended}"
    commit_step
    finish_switch_step
    log "switched: cluster DNS ${record[original_value]} -> ${intended} in ${source_path}" \
      "at ${step_done_at}"
  elif [[ ${effective_list} == "${record[original_value]}" ]]; then
    log "${source_path} was put back to ${effective_list} since the switch" \
      "(kubeadm upgrade, reimage?): switching again"
    record=()
    switch_fresh_node
  else
    refuse "kubelet's cluster DNS is ${effective_list}, but this program set" \
      "${record[applied_value]} (originally ${record[original_value]}): changed by someone else"
  fi
}

# A node that uses kube-dns: wait for the cache, record the original, switch, verify.
switch_fresh_node() {
  local intended
  local original_content
  local before_source=${source_path}
  local before_list=${effective_list}
  intended_list_for "${effective_list}"
  intended=${intended_list}
  refuse_long_list "${intended}"
  if ! same_ip_family "${LOCAL_DNS_IP}" "${CLUSTER_DNS_IP}"; then
    refuse "localDnsIp ${LOCAL_DNS_IP} and clusterDnsIp ${CLUSTER_DNS_IP}" \
      "are not of one address family"
  fi
  if [[ ${effective_list} == *,* ]]; then
    log "dual-stack or several resolvers (${effective_list}):" \
      "only ${CLUSTER_DNS_IP} is replaced, the others stay"
  fi
  wait_for_cache
  # After a wait (up to readyTimeoutSeconds) the source is found and read again: what is recorded
  # and rewritten is what is there now. A cache that answered at once left no time for a change.
  if [[ ${cache_waited} == yes ]]; then
    detect_dns_source
    if [[ ${source_path} != "${before_source}" || ${effective_list} != "${before_list}" ]]; then
      refuse "kubelet's cluster DNS changed while waiting for the cache" \
        "(now ${effective_list:-none} from ${source_path:-nowhere})"
    fi
  fi
  build_new_content "${intended}"
  # Nothing is written on the node before this point; the client may have left during the wait.
  ensure_client_connected "about to switch ${source_path}"
  record=([format]=${RECORD_FORMAT} [node]=${NODE_NAME} [source]=${source_path}
    [source_kind]=${source_kind} [original_value]=${effective_list} [original_exists]=no
    [daemon_reload]=no)
  if [[ ${source_kind} == unit-file ]]; then
    record[daemon_reload]=yes
  fi
  if [[ ${source_exists} == yes ]]; then
    read_file_exact "${source_path}" original_content
    save_state_file original "${original_content}"
    record[original_exists]=yes
  fi
  save_program_copy
  begin_step create new_content "${intended}"
  commit_step
  finish_switch_step
  log "switched: cluster DNS ${record[original_value]} -> ${intended} in ${source_path}" \
    "at ${step_done_at}"
}

# kubelet already uses the cache, with no record (switched by hand, e.g. with the write-up's sed):
# record it as if the file held kube-dns, so that a revert sets kube-dns back. No restart.
adopt_switched_node() {
  local original_list
  local original_content
  local current
  original_list_for "${effective_list}"
  original_list=${before_switch_list}
  if [[ ${source_kind} == dropin || ${source_exists} != yes ]]; then
    refuse "kubelet uses ${effective_list} from ${source_path} with no record of a switch;" \
      "cannot tell what to revert to"
  fi
  read_file_exact "${source_path}" current
  locate_setting "${current}" "${source_kind}" "${source_path}"
  replace_setting "${current}" "${original_list}" original_content
  record=([format]=${RECORD_FORMAT} [node]=${NODE_NAME} [source]=${source_path}
    [source_kind]=${source_kind} [original_value]=${original_list} [original_exists]=yes
    [applied_value]=${effective_list} [daemon_reload]=no [phase]=switched)
  if [[ ${source_kind} == unit-file ]]; then
    record[daemon_reload]=yes
  fi
  save_state_file original "${original_content}"
  save_state_file applied "${current}"
  save_program_copy
  save_record
  log "no record, but kubelet already uses ${effective_list}: adopted" \
    "(a revert sets ${original_list}); kubelet not restarted"
}

# delete: the original bytes back (or, if the file was edited since, only its cluster DNS value),
# kubelet restarted and checked; a failure puts the switched file back and keeps the record.
revert_node() {
  local current=
  local applied=
  local original=
  local current_list=
  if [[ -z ${record[phase]:-} ]]; then
    log "nothing recorded in ${STATE_DIR}: nothing to revert, kubelet not restarted"
    return 0
  fi
  if [[ ${record[node]} != "${NODE_NAME}" ]]; then
    log "note: this machine was switched as node ${record[node]}"
  fi
  check_recorded_source
  kubelet_running=no
  if ((kubelet_pid != 0)); then
    # The running kubelet must still take its cluster DNS from the recorded file: a record that
    # names another file (edited, or written by someone else) is not followed.
    detect_dns_source
    if [[ ${source_path} != "${record[source]}" ]]; then
      refuse "kubelet takes its cluster DNS from ${source_path:-nowhere} (${source_note})," \
        "but the switch recorded ${record[source]}; state left as it is, revert by hand"
    fi
  fi
  source_path=${record[source]}
  source_kind=${record[source_kind]}
  if [[ ! -e ${source_path} && ! -L ${source_path} ]]; then
    refuse "${source_path} is gone since the switch; its original is kept in ${STATE_DIR}/original"
  fi
  read_file_exact "${source_path}" current
  load_state_file applied applied
  locate_setting "${current}" "${source_kind}" "${source_path}"
  current_list=${setting_list}
  if [[ ${current} == "${applied}" ]]; then
    log "${source_path} is as the switch left it: putting back the original"
    if [[ ${record[original_exists]} == yes ]]; then
      load_state_file original original
      new_content=${original}
    fi
  elif ((setting_count == 1)) && [[ ${current_list} == "${record[applied_value]}" ]]; then
    log "${source_path} was edited since the switch:" \
      "setting only its cluster DNS back to ${record[original_value]}"
    if [[ ${record[original_exists]} == yes ]]; then
      replace_setting "${current}" "${record[original_value]}" new_content
    fi
  else
    log "cluster DNS in ${source_path} is ${current_list:-unset} since the switch" \
      "(this program set ${record[applied_value]}): changed by someone else;" \
      "leaving it alone, kubelet not restarted"
    record=()
    remove_state_files
    return 0
  fi
  if [[ ${record[original_exists]} == yes ]]; then
    begin_step delete new_content "${record[original_value]}"
  else
    begin_step delete "" "${record[original_value]}"
  fi
  commit_step
  log "reverted: cluster DNS ${record[applied_value]} -> ${record[original_value]}" \
    "in ${source_path} at ${step_done_at}"
  finish_revert_step
}

# check: what create would do, changing nothing (no lock, no state, no restart).
check_node() {
  local intended
  if prepare_state_dir && [[ -e ${STATE_DIR}/record ]]; then
    read_record
    log "check: record: ${record[phase]} (${record[source]}," \
      "${record[original_value]} -> ${record[applied_value]:-${record[after_value]:-?}})"
    if [[ ${record[phase]} != switched ]]; then
      log "check: a ${record[step]} was interrupted; the next run undoes it first"
    fi
  else
    log "check: no record in ${STATE_DIR}"
  fi
  detect_dns_source
  if [[ ${kubelet_running} == yes ]]; then
    read_kubelet_health_endpoint
    if ((healthz_port == 0)); then
      log "check: kubelet running (pid ${kubelet_pid}), healthz disabled"
    elif kubelet_healthz_ok "${healthz_address}" "${healthz_port}"; then
      log "check: kubelet running (pid ${kubelet_pid}), healthz ok"
    else
      log "check: kubelet running (pid ${kubelet_pid})," \
        "healthz NOT ok on ${healthz_address}:${healthz_port}"
    fi
  fi
  log "check: cluster DNS ${effective_list:-none}: ${source_note}"
  if probe_cache; then
    log "check: ${dns_probe_result}"
  else
    log "check: cache not ready: ${dns_probe_result}"
  fi
  if [[ ${kubelet_running} != yes ]]; then
    refuse "check: create would refuse: kubelet is not running"
  fi
  if [[ -n ${record[phase]:-} ]]; then
    intended_list_for "${record[original_value]}"
    intended=${intended_list}
    if [[ ${effective_list} == "${intended}" ]]; then
      log "check: create would do nothing: already switched"
      return 0
    fi
    if [[ ${effective_list} == "${record[applied_value]}" ||
      ${effective_list} == "${record[original_value]}" ]]; then
      refuse_long_list "${intended}"
      log "check: create would switch ${effective_list} -> ${intended}" \
        "in ${source_path} (${source_kind}) and restart kubelet"
      return 0
    fi
  elif list_contains "${effective_list}" "${LOCAL_DNS_IP}"; then
    log "check: create would adopt the switch already there (no restart)"
    return 0
  elif list_contains "${effective_list}" "${CLUSTER_DNS_IP}"; then
    intended_list_for "${effective_list}"
    intended=${intended_list}
    refuse_long_list "${intended}"
    log "check: create would switch ${effective_list} -> ${intended}" \
      "in ${source_path} (${source_kind}) and restart kubelet"
    return 0
  fi
  refuse "check: create would refuse: kubelet's cluster DNS ${effective_list:-none}" \
    "does not hold clusterDnsIp ${CLUSTER_DNS_IP}"
}

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

