#!/usr/bin/env bash
#
# One node-cache upgrade on one simulated node, with DNS queries running through the cache the
# whole time (bench/cacheUpgrade.ts runs it and reads its last line).
#
# It must run in network and mount namespaces of its own (the caller uses
# `unshare --net --mount --propagation private --kill-child`): it puts the cache address and the
# upstream address on this namespace's interfaces, mounts a private /etc/resolv.conf that names
# the upstream, and lets node-cache add its iptables rules here. Nothing leaves the namespace.
#
# The node: real node-cache processes (NODE_CACHE, built from kubernetes/dns) with the Corefile
# this project renders; as kube-dns, another node-cache process that answers the cluster zone from
# a template. The upgrade replaces the "old" cache process with a "new" one as the DaemonSet
# update would, by STRATEGY:
#   teardown  today's upstream manifest: maxUnavailable, no -skipteardown. The old process gets
#             SIGTERM and removes its rules and interface; only then is the new one started.
#   surge     maxSurge with -skipteardown: the new process starts beside the old one (both bind
#             the address with SO_REUSEPORT); once it answers, the old one gets SIGTERM and
#             leaves the rules and the interface in place.
#   surge-teardown  maxSurge without -skipteardown: as surge, but the old process tears down.
#   reload    no new process: a changed Corefile (the ConfigMap as kubelet updates it), which
#             node-cache finds at its next file sync (10 s) and loads in place (-reloadwithsignal).
#
# The kernel here has no dummy link driver, so the `nodelocaldns` interface is a bridge made
# before each process starts (node-cache takes an existing link of that name and adds its address;
# its teardown deletes the link). A real node-cache would create a dummy link at the same moment.
#
# Usage: upgrade.sh STRATEGY WORK_DIR NODE_CACHE NODE QUERY_LOOP COREFILE LOCAL_IP UPSTREAM_IP
#                   HEALTH_PORT NODE_CACHE_ARG...
# NODE_CACHE_ARG...: the container args the DaemonSet renders, with @DIR@ where a path is (each
# process gets a directory of its own), without -skipteardown (added here by strategy). COREFILE: the rendered Corefile (the ConfigMap's
# Corefile.base). Prints progress on stderr and, last on stdout, one JSON line: the query loop's
# summary, and how long the change took to be in effect: from the new process's start to
# CoreDNS's start banner (printed once its servers listen), or from the Corefile's change to
# CoreDNS's "Reloading complete".

set -o errexit -o nounset -o pipefail

readonly STRATEGY="$1" WORK_DIR="$2" NODE_CACHE="$3" NODE="$4" QUERY_LOOP="$5" COREFILE="$6"
readonly LOCAL_IP="$7" UPSTREAM_IP="$8" HEALTH_PORT="$9"
shift 9
readonly NODE_CACHE_ARGS=("$@")
readonly INTERFACE="nodelocaldns"
# Seconds of queries before the upgrade starts and after it ended.
readonly SETTLE_SECONDS=1
readonly AFTER_SECONDS=3
# Every wait in tenths of a second.
readonly READY_WAIT_TENTHS=100
readonly EXIT_WAIT_TENTHS=150
readonly RELOAD_WAIT_TENTHS=300

log() {
  echo "[upgrade.sh ${STRATEGY}] $*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# The processes this run started, killed on exit whatever happens.
declare -a started_pids=()
stop_all() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill -KILL "${pid}" 2>/dev/null || true
  done
}
trap stop_all EXIT

#######################################
# Starts one node-cache process with kube-dns-upstream's environment variable, as its pod has;
# its pid goes into the named variable.
# Arguments:
#   Name (its directory under WORK_DIR), variable name, node-cache args with @DIR@ for that
#   directory...
#######################################
start_node_cache() {
  local name="$1"
  local -n pid_out="$2"
  shift 2
  local dir="${WORK_DIR}/${name}"
  mkdir -p "${dir}"
  KUBE_DNS_UPSTREAM_SERVICE_HOST="${UPSTREAM_IP}" "${NODE_CACHE}" "${@//@DIR@/${dir}}" \
    >"${dir}/log" 2>&1 &
  pid_out=$!
  started_pids+=("${pid_out}")
}

#######################################
# Waits until the cache's health endpoint answers 200 (bash's /dev/tcp, no curl needed).
# Arguments:
#   What (for the message).
#######################################
wait_ready() {
  local what="$1"
  local tenths
  for ((tenths = 0; tenths < READY_WAIT_TENTHS; tenths++)); do
    if { exec 3<>"/dev/tcp/${LOCAL_IP}/${HEALTH_PORT}"; } 2>/dev/null; then
      printf 'GET /health HTTP/1.0\r\n\r\n' >&3
      local status_line=""
      read -r -t 1 status_line <&3 || true
      exec 3<&-
      if [[ ${status_line} == *" 200 "* ]]; then
        return 0
      fi
    fi
    sleep 0.1
  done
  die "${what} did not answer on ${LOCAL_IP}:${HEALTH_PORT}"
}

#######################################
# Waits until the named process's log has a line matching PATTERN; prints the milliseconds since
# START (an EPOCHREALTIME).
# Arguments:
#   Name, pattern (grep -E), start, bound in tenths of a second.
#######################################
wait_for_log() {
  local name="$1" pattern="$2" start="$3" bound_tenths="$4"
  local hundredths
  for ((hundredths = 0; hundredths < bound_tenths * 10; hundredths++)); do
    if grep -qE "${pattern}" "${WORK_DIR}/${name}/log" 2>/dev/null; then
      local now="${EPOCHREALTIME}"
      echo $(((${now/./} - ${start/./}) / 1000))
      return 0
    fi
    sleep 0.01
  done
  die "${name}: no log line matching ${pattern} within $((bound_tenths / 10)) s"
}

#######################################
# SIGTERM, then waits until the process has exited (it tears down first, unless -skipteardown).
# Arguments:
#   Pid, what (for the message).
#######################################
stop_gracefully() {
  local pid="$1" what="$2"
  local tenths
  kill -TERM "${pid}"
  for ((tenths = 0; tenths < EXIT_WAIT_TENTHS; tenths++)); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      wait "${pid}" 2>/dev/null || true
      return 0
    fi
    sleep 0.1
  done
  die "${what} did not exit within $((EXIT_WAIT_TENTHS / 10)) s of SIGTERM"
}

# What node-cache's own dummy link would be (see the header).
make_interface() {
  if ! ip link show "${INTERFACE}" >/dev/null 2>&1; then
    ip link add "${INTERFACE}" type bridge
    ip link set "${INTERFACE}" up
  fi
}

main() {
  case "${STRATEGY}" in
    teardown | surge | surge-teardown | reload) ;;
    *) die "unknown strategy ${STRATEGY}" ;;
  esac
  [[ $(readlink /proc/self/ns/net) != "$(readlink /proc/1/ns/net)" ]] ||
    die "not in a network namespace of its own"

  ip link set lo up
  ip addr add "${UPSTREAM_IP}/32" dev lo
  # node-cache's "." zone forwards to the servers in /etc/resolv.conf: here, the upstream only.
  echo "nameserver ${UPSTREAM_IP}" >"${WORK_DIR}/resolv.conf"
  mount --bind "${WORK_DIR}/resolv.conf" /etc/resolv.conf

  # kube-dns: answers every name in cluster.local with one address (TTL 1 s, so that the cache
  # keeps asking it).
  mkdir -p "${WORK_DIR}/kube-dns"
  cat >"${WORK_DIR}/kube-dns/Corefile.base" <<EOF
cluster.local:53 {
    bind ${UPSTREAM_IP}
    template IN A cluster.local {
        answer "{{ .Name }} 1 IN A 10.0.0.1"
    }
}
EOF
  local kube_dns_pid
  start_node_cache kube-dns kube_dns_pid -localip "${UPSTREAM_IP}" -setupinterface=false \
    -setupiptables=false -metrics-listen-address 127.0.0.1:9399 \
    -basecorefile "${WORK_DIR}/kube-dns/Corefile.base" -conf "@DIR@/Corefile"

  # The ConfigMap's volume: node-cache watches the Corefile's directory.
  mkdir -p "${WORK_DIR}/config-volume"
  cp "${COREFILE}" "${WORK_DIR}/config-volume/Corefile.base"
  local old_flags=("${NODE_CACHE_ARGS[@]}" -basecorefile "${WORK_DIR}/config-volume/Corefile.base")
  if [[ ${STRATEGY} == surge || ${STRATEGY} == reload ]]; then
    old_flags+=(-skipteardown)
  fi
  make_interface
  local old_pid
  start_node_cache old old_pid "${old_flags[@]}"
  wait_ready "the old cache"

  local loop_pid
  "${NODE}" --import tsx "${QUERY_LOOP}" "${LOCAL_IP}" >"${WORK_DIR}/queries.json" 2>"${WORK_DIR}/queries.log" &
  loop_pid=$!
  started_pids+=("${loop_pid}")
  sleep "${SETTLE_SECONDS}"

  local new_pid new_start start_ms
  log "upgrade starts"
  case "${STRATEGY}" in
    teardown)
      stop_gracefully "${old_pid}" "the old cache"
      make_interface
      new_start="${EPOCHREALTIME}"
      start_node_cache new new_pid "${old_flags[@]}"
      start_ms=$(wait_for_log new "^CoreDNS-" "${new_start}" "${READY_WAIT_TENTHS}")
      wait_ready "the new cache"
      ;;
    surge | surge-teardown)
      new_start="${EPOCHREALTIME}"
      start_node_cache new new_pid "${old_flags[@]}"
      # Both listen on the same address and ports, so the health check cannot tell them apart;
      # the new process's log can.
      start_ms=$(wait_for_log new "^CoreDNS-" "${new_start}" "${READY_WAIT_TENTHS}")
      stop_gracefully "${old_pid}" "the old cache"
      ;;
    reload)
      # As kubelet updates a ConfigMap volume: the new content replaces the file at once. The
      # change: a longer success TTL in the cluster zone's cache.
      new_pid="${old_pid}"
      sed 's/^\( *success [0-9]*\) [0-9]*$/\1 31/' "${WORK_DIR}/config-volume/Corefile.base" \
        >"${WORK_DIR}/config-volume/.Corefile.base.new"
      if cmp -s "${WORK_DIR}/config-volume/Corefile.base" \
        "${WORK_DIR}/config-volume/.Corefile.base.new"; then
        die "the Corefile change changed nothing"
      fi
      new_start="${EPOCHREALTIME}"
      mv "${WORK_DIR}/config-volume/.Corefile.base.new" "${WORK_DIR}/config-volume/Corefile.base"
      start_ms=$(wait_for_log old "Reloading complete" "${new_start}" "${RELOAD_WAIT_TENTHS}")
      ;;
  esac
  log "upgrade done"
  sleep "${AFTER_SECONDS}"
  kill -0 "${new_pid}" 2>/dev/null || die "the new cache exited: $(tail -n 5 "${WORK_DIR}/new/log")"
  kill -0 "${kube_dns_pid}" 2>/dev/null || die "kube-dns exited"

  kill -TERM "${loop_pid}"
  wait "${loop_pid}" || die "the query loop failed: $(tail -n 5 "${WORK_DIR}/queries.log")"
  printf '{"queries":%s,"newStartMs":%s}\n' "$(tail -n 1 "${WORK_DIR}/queries.json")" \
    "${start_ms}"
}

main "$@"
