#!/bin/bash
#
# Last-resort cleanup of one control plane (test/e2e/support/controlPlane.ts) for when the test
# process dies without stopping it (SIGKILL, crash). The test process keeps this script's stdin
# open and writes one line per component it starts: "pid <pid>". When stdin reaches EOF without
# a "done" line first (the test process is gone), the script stops every listed process that is
# still running with DIR in its command line (so a reused pid is never hit): SIGTERM to its
# process group, SIGKILL after a bounded wait; then it removes DIR. A "done" line (the orderly
# stop() has cleaned up already) makes it exit at once.
#
# Usage: reaper.sh DIR

set -uo pipefail

readonly DIR="$1"
readonly TERM_WAIT_TENTHS=50

pids=()
while IFS= read -r line; do
  case "${line}" in
    done) exit 0 ;;
    "pid "*) pids+=("${line#pid }") ;;
  esac
done

ours() {
  [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "${DIR}"
}

live=()
for pid in "${pids[@]}"; do
  if [[ ${pid} =~ ^[0-9]+$ ]] && ours "${pid}"; then
    live+=("${pid}")
    kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null
  fi
done
for ((i = 0; i < TERM_WAIT_TENTHS && ${#live[@]} > 0; i++)); do
  left=()
  for pid in "${live[@]}"; do
    if ours "${pid}"; then left+=("${pid}"); fi
  done
  live=("${left[@]}")
  ((${#live[@]} > 0)) && sleep 0.1
done
for pid in "${live[@]}"; do
  kill -KILL -- "-${pid}" 2>/dev/null || kill -KILL "${pid}" 2>/dev/null
done
if [[ "$(basename -- "${DIR}")" == e2e-controlplane-* ]]; then
  rm -rf -- "${DIR}"
fi
