# shellcheck shell=bash
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
