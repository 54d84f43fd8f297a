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
# ------------------------------------------------------------------------------------------------

# Kubelet's own files are a few KiB; anything much larger is not one of them.
readonly MAX_FILE_BYTES=1048576
readonly TEMP_MARKER=.nodelocaldns-tmp.

# The temporary file being written, removed on exit if it is still there.
temp_file=

# Reads the exact bytes of file $1 into the variable named $2. bash cannot hold NUL bytes, so a
# file that has any is refused (read stops at the first NUL; the length then differs). (Its
# locals have names no caller uses: printf -v would set a local of the same name instead.)
read_file_exact() {
  local read_path=$1
  local read_into=$2
  local read_size
  local read_bytes=
  if [[ -L ${read_path} || ! -f ${read_path} ]]; then
    refuse "${read_path}: not a regular file"
  fi
  read_size=$(stat -c %s -- "${read_path}")
  if ((read_size > MAX_FILE_BYTES)); then
    refuse "${read_path}: ${read_size} bytes, too large for a kubelet file"
  fi
  IFS= read -r -d '' read_bytes <"${read_path}" || true
  if ((${#read_bytes} != read_size)); then
    refuse "${read_path}: holds NUL bytes, cannot rewrite it byte for byte"
  fi
  printf -v "${read_into}" '%s' "${read_bytes}"
}

# Flushes files or directories to disk. coreutils before 8.24 ignore the arguments and flush
# everything, which is slower but just as safe.
flush_to_disk() {
  sync -- "$@" 2>/dev/null || sync
}

# Writes content $2 to path $1 atomically. $3 is the file whose owner, mode and labels the new
# file gets (default: $1 itself when it exists); $4 the mode of a new file without one.
write_file_atomic() {
  local path=$1
  local content=$2
  local reference=${3:-$1}
  local new_mode=${4:-0644}
  local directory=${path%/*}
  local name=${path##*/}
  remove_stale_temp_files "${directory:-/}"
  temp_file=$(mktemp "${directory:-/}/.${name}${TEMP_MARKER}XXXXXX")
  printf '%s' "${content}" >"${temp_file}"
  if [[ -f ${reference} && ! -L ${reference} ]]; then
    # Mode, owner, ACLs, xattrs and SELinux label; failing to copy labels is not an error.
    cp --attributes-only --preserve=all -- "${reference}" "${temp_file}"
  else
    chmod "${new_mode}" -- "${temp_file}"
  fi
  flush_to_disk "${temp_file}"
  mv -fT -- "${temp_file}" "${path}"
  temp_file=
  flush_to_disk "${directory:-/}"
}

# Removes a file and flushes its directory.
remove_file_durably() {
  local path=$1
  rm -f -- "${path}"
  flush_to_disk "${path%/*}"
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
