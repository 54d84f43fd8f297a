#!/bin/bash
#
# Supervisor of one systemd test node (test/support/systemdNode.ts), run by
# the test process in the host's namespaces with a pipe as stdin. It:
# - makes the node's own cgroups (systemd-nspawn --keep-unit puts the
#   container below the caller's cgroup, so two nodes must not share one),
#   reported as "cgroup PATH" lines;
# - starts node-ns.sh in fresh mount and network namespaces, which becomes
#   systemd-nspawn, and reports its pid ("nspawn PID") and the container's
#   pid 1 ("leader PID");
# - optionally forwards a loopback address:port of the host to the node's sshd
#   (socat in the host's network namespace, each connection entering the
#   node's network namespace), reported as "forwarding";
# - when stdin ends (stop(), or the test process died): powers the node off
#   (SIGTERM to nspawn), SIGKILLs what is left after a bounded wait, removes
#   the cgroups and DIR, and prints "stopped";
# - when the start fails: cleans up the same way, but prints "failed" and waits
#   for stdin to end before it removes DIR, so that its logs can be read.
#
# Usage: launcher.sh DIR ROOTFS NAME LOCAL_DNS_IP FORWARD_ADDRESS FORWARD_PORT
# (empty LOCAL_DNS_IP / FORWARD_ADDRESS: none). stdout is the protocol, stderr
# the log; nspawn's console goes to DIR/console.log.

set -euo pipefail

readonly DIR="$1" ROOTFS="$2" NAME="$3" LOCAL_DNS_IP="$4"
readonly FORWARD_ADDRESS="$5" FORWARD_PORT="$6"
readonly HERE="${BASH_SOURCE[0]%/*}"
readonly LEADER_TIMEOUT_S=60
readonly POWEROFF_TIMEOUT_S=20
readonly KILL_TIMEOUT_S=10

nspawn_pid=""
leader_pid=""
socat_pid=""
stdin_closed=0
cgroups=()

#######################################
# Whether a process exists and is not a zombie.
# Arguments:
#   Pid.
#######################################
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ ${stat%% *} != Z ]]
}

#######################################
# Waits until a process is gone, at most a number of seconds.
# Arguments:
#   Pid, seconds.
# Returns:
#   0 if it is gone.
#######################################
# shellcheck disable=SC2317 # called by shutdown(), the EXIT trap.
wait_gone() {
  local pid="$1" tenths=$(($2 * 10)) i
  for ((i = 0; i < tenths; i++)); do
    alive "${pid}" || return 0
    sleep 0.1
  done
  ! alive "${pid}"
}

#######################################
# Creates this node's cgroup in every hierarchy systemd uses (cgroup2 and the
# v1 name=systemd one), below the launcher's own cgroup there.
# Globals:
#   cgroups (set)
#######################################
make_cgroups() {
  local own_v2="" own_named="" line
  while IFS= read -r line; do
    case ${line} in
      0::*) own_v2="${line#0::}" ;;
      *:name=systemd:*) own_named="${line#*:name=systemd:}" ;;
    esac
  done </proc/self/cgroup
  local _source mountpoint type options _rest
  while read -r _source mountpoint type options _rest; do
    if [[ ${type} == cgroup2 && -n ${own_v2} ]]; then
      cgroups+=("${mountpoint}${own_v2%/}/nodelocaldns-test-${NAME}")
    elif [[ ${type} == cgroup && ,${options}, == *,name=systemd,* ]]; then
      cgroups+=("${mountpoint}${own_named%/}/nodelocaldns-test-${NAME}")
    fi
  done </proc/self/mounts
  local cgroup
  for cgroup in "${cgroups[@]}"; do
    mkdir -- "${cgroup}"
    echo "cgroup ${cgroup}"
  done
}

#######################################
# Removes this node's cgroups, deepest first, retrying while the kernel still
# tears down the last processes.
#######################################
# shellcheck disable=SC2317 # called by shutdown(), the EXIT trap.
remove_cgroups() {
  local cgroup i
  for cgroup in "${cgroups[@]}"; do
    for ((i = 0; i < 50; i++)); do
      [[ -d ${cgroup} ]] || break
      find "${cgroup}" -depth -type d -exec rmdir -- {} + 2>/dev/null || :
      [[ -d ${cgroup} ]] || break
      sleep 0.1
    done
    if [[ -d ${cgroup} ]]; then
      echo "launcher: cannot remove cgroup ${cgroup}" >&2
    fi
  done
}

#######################################
# Finds the container's pid 1: the child of nspawn that is pid 1 of its own
# pid namespace. Prints it.
#######################################
find_leader() {
  local i child children
  for ((i = 0; i < LEADER_TIMEOUT_S * 20; i++)); do
    alive "${nspawn_pid}" || break
    children=()
    read -r -a children 2>/dev/null <"/proc/${nspawn_pid}/task/${nspawn_pid}/children" || :
    for child in "${children[@]}"; do
      if grep -Eq '^NSpid:.*[[:space:]]1$' "/proc/${child}/status" 2>/dev/null; then
        echo "${child}"
        return 0
      fi
    done
    sleep 0.05
  done
  echo "launcher: no container pid 1 (see ${DIR}/console.log)" >&2
  return 1
}

#######################################
# Forwards FORWARD_ADDRESS:FORWARD_PORT (host) to 127.0.0.1:22 in the node.
# Arguments:
#   Leader pid.
#######################################
start_forwarder() {
  local leader="$1" i
  # One connection: a socat in the node's network namespace, to its sshd.
  printf '#!/bin/bash\nexec nsenter -t %s -n -- socat STDIO TCP4:127.0.0.1:22\n' \
    "${leader}" >"${DIR}/ssh-forward.sh"
  chmod 0700 "${DIR}/ssh-forward.sh"
  setsid socat \
    "TCP4-LISTEN:${FORWARD_PORT},bind=${FORWARD_ADDRESS},reuseaddr,fork" \
    "EXEC:${DIR}/ssh-forward.sh" </dev/null 2>>"${DIR}/socat.log" &
  socat_pid=$!
  for ((i = 0; i < 200; i++)); do
    if ss -Hltn "src ${FORWARD_ADDRESS}:${FORWARD_PORT}" 2>/dev/null | grep -q .; then
      return 0
    fi
    alive "${socat_pid}" || break
    sleep 0.05
  done
  echo "launcher: socat does not listen on ${FORWARD_ADDRESS}:${FORWARD_PORT}:" >&2
  cat "${DIR}/socat.log" >&2
  return 1
}

#######################################
# Powers the node off, kills what is left, removes the cgroups. Runs once, on
# exit (stdin closed, or a failed start).
#######################################
# shellcheck disable=SC2317 # called by the EXIT trap.
shutdown() {
  trap - EXIT
  set +e
  if [[ -n ${nspawn_pid} ]] && alive "${nspawn_pid}"; then
    # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: halt.
    kill -TERM "${nspawn_pid}" 2>/dev/null
    if ! wait_gone "${nspawn_pid}" "${POWEROFF_TIMEOUT_S}"; then
      echo "launcher: no orderly poweroff in ${POWEROFF_TIMEOUT_S} s, SIGKILL" >&2
      [[ -n ${leader_pid} ]] && kill -KILL "${leader_pid}" 2>/dev/null
      kill -KILL "${nspawn_pid}" 2>/dev/null
      wait_gone "${nspawn_pid}" "${KILL_TIMEOUT_S}"
    fi
  fi
  if [[ -n ${socat_pid} ]]; then
    kill -KILL -- "-${socat_pid}" 2>/dev/null || kill -KILL "${socat_pid}" 2>/dev/null
    wait_gone "${socat_pid}" "${KILL_TIMEOUT_S}"
  fi
  remove_cgroups
  if ((!stdin_closed)); then
    # A failed start: the test process reads the logs in DIR first, then closes stdin.
    echo failed
    while read -r _; do :; done
  fi
  # The host dir too, for when the test process is gone (its mount points are plain empty
  # directories here: the mounts only ever existed in the node's mount namespace).
  if [[ ${DIR##*/} == systemdnode-* ]]; then
    rm -rf -- "${DIR}"
  fi
  echo stopped
}

main() {
  trap shutdown EXIT
  make_cgroups
  unshare --mount --net --propagation private -- \
    bash "${HERE}/node-ns.sh" "${DIR}" "${ROOTFS}" "${NAME}" "${LOCAL_DNS_IP}" \
    "${cgroups[@]}" </dev/null >>"${DIR}/console.log" 2>&1 &
  nspawn_pid=$!
  echo "nspawn ${nspawn_pid}"
  leader_pid="$(find_leader)"
  echo "leader ${leader_pid}"
  if [[ -n ${FORWARD_ADDRESS} ]]; then
    start_forwarder "${leader_pid}"
    echo "forwarding ${socat_pid}"
  fi
  # Until the test process closes stdin (stop(), or the test process is gone).
  while read -r _; do :; done
  stdin_closed=1
}

# One compound command: bash has read all of it before running, so an edit of this file
# while it runs cannot change what it does.
{
  main "$@"
  exit
}
