#!/bin/bash
#
# Ends whatever is left of a suite run in a network namespace of its own (netns.ts,
# runSuiteInOwnNetns), once the test process closes this script's stdin: after the run, or when
# the test process died first. SIGKILL, by pid:
# - to the run's process group (unshare, node's test runner, the suite's process and what that
#   spawned without a group of its own);
# - to every process still in the run's network namespace: the Pulumi CLI puts each provider
#   plugin in a process group of its own, and a plugin orphaned by a killed CLI waits minutes for
#   its engine health check. Only the run's processes can be in that namespace: it was made for
#   the run, and nothing else enters it.
#
# The namespace is held open on fd 3 from the start, so its id cannot pass to another namespace
# while this script runs. When it cannot be told apart from this script's own (unshare failed),
# only the process group is killed.
#
# Usage: netns-sweeper.sh PID (unshare's pid, the run's process group id)

set -uo pipefail

readonly PID="$1"
readonly WAIT_TENTHS=100
readonly PASSES=5

own="$(readlink /proc/self/ns/net)"
run=""
for ((i = 0; i < WAIT_TENTHS; i++)); do
  ns="$(readlink "/proc/${PID}/ns/net" 2>/dev/null)" || break
  if [[ ${ns} != "${own}" ]] && { exec 3<"/proc/${PID}/ns/net"; } 2>/dev/null; then
    # What fd 3 holds: the namespace unshare made, even had PID moved on meanwhile.
    run="$(readlink /proc/self/fd/3)"
    [[ ${run} == "${own}" ]] && run=""
    break
  fi
  sleep 0.1
done

while IFS= read -r _; do :; done

kill -KILL -- "-${PID}" 2>/dev/null
[[ -n ${run} ]] || exit 0
for ((pass = 0; pass < PASSES; pass++)); do
  found=0
  for dir in /proc/[0-9]*; do
    if [[ $(readlink "${dir}/ns/net" 2>/dev/null) == "${run}" ]]; then
      kill -KILL "${dir#/proc/}" 2>/dev/null
      found=1
    fi
  done
  ((found)) || exit 0
  sleep 0.1
done
