# shellcheck shell=bash
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
